"""backprop-tui: see how backpropagation works, live, in the terminal."""

__version__ = "0.1.0"
