"""The three panels and the header; each renders a Snapshot and posts messages."""
