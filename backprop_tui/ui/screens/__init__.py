"""Modal screens: help, preset picker, prompts and the error dialog."""
