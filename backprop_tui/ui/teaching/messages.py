"""Messages of the teaching workers (posted from threads, handled in the UI thread)."""

from __future__ import annotations

from textual.message import Message


class TeachingReady(Message):
    """The inspector's teaching sections for one request (`generation`)."""

    def __init__(self, generation: int, lines: list) -> None:
        super().__init__()
        self.generation = generation
        self.lines = lines


class FlagsReady(Message):
    """The engine's flags for `snapshot`: {node name: [one-line reasons]}; the app marks the graph."""

    def __init__(self, snapshot: object, by_node: dict[str, list[str]]) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.by_node = by_node
