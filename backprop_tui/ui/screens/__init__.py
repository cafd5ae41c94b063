"""Screens: the explorer's own (explorer.py), and the modal ones: help, preset picker, prompts, dialogs."""
