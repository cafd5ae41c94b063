"""The one exception type the engine lets escape."""


class BackpropError(Exception):
    """A problem the user can fix: the message is one clear line, shown as is."""


class PresetError(BackpropError):
    """A preset file (or expression) that cannot be loaded."""


class EditError(BackpropError):
    """An edit that was refused; nothing changed."""


class ComputeError(BackpropError):
    """Torch refused to compute the graph for the current values (e.g. bce of 1.5)."""
