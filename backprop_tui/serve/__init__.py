"""Serving the explorer to web browsers: the server (textual-serve) and the served-mode file policy."""
