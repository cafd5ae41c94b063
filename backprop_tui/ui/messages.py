"""What the panels ask of the app. Widgets never touch the session: they post these."""

from __future__ import annotations

from textual.message import Message


class Inspect(Message):
    """Show this node in the inspector; `index` marks one element (the grid's cursor)."""

    def __init__(self, name: str, index: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.name = name
        self.index = index


class InspectAgain(Message):
    """The inspector scrolled to sections it left uncomputed: inspect the same node again."""


class OpenInEditor(Message):
    """Select this leaf in the weight editor and focus its grid."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class SetElement(Message):
    """Set one element of a leaf to a number already parsed by `parse_number`."""

    def __init__(self, name: str, index: tuple[int, ...], value: float) -> None:
        super().__init__()
        self.name = name
        self.index = index
        self.value = value


class Nudge(Message):
    def __init__(self, name: str, index: tuple[int, ...], delta: float) -> None:
        super().__init__()
        self.name = name
        self.index = index
        self.delta = delta


class ToggleRequiresGrad(Message):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class ResetLeaf(Message):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class SessionReady(Message):
    """A preset was loaded and computed in the loader thread."""

    def __init__(self, session: object, generation: int = 0, resumed: bool = False) -> None:
        super().__init__()
        self.session = session
        self.generation = generation  # which open_preset request this answers
        self.resumed = resumed  # a session left behind earlier, with its edits and history


class PresetFailed(Message):
    """A preset could not be loaded; `message` is the engine's one-line reason."""

    def __init__(self, spec: str, message: str) -> None:
        super().__init__()
        self.spec = spec
        self.message = message
