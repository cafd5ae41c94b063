"""The explorer's own screen: the panels, drawn through an OccludingCompositor, and an
edit's frame drawn in the edit's own turn of the loop."""

from __future__ import annotations

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Tree

from backprop_tui.ui.compositor import OccludingCompositor


class ExplorerScreen(Screen):
    """The app's default screen."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._compositor = OccludingCompositor()

    def paint_now(self) -> None:
        """Draw now what this turn of the loop refreshed, when it needs only a repaint.

        Textual draws a refreshed widget later: the widget's own task wakes to tell the
        screen, the screen's task takes each message, then its update timer fires; on
        simple_nn that is 0.8 ms of loop turns after an edit's handler. This does what the
        timer would (Screen._on_timer_update of the pinned textual), in the handler. A
        refresh that needs a layout, a scroll, new styles or a recompose is left to
        Textual, as is one with a widget's idle work still to do (_idle_work_pending),
        a screen under a modal one, and a batch.
        """
        app = self.app
        if app._batch_count or not self.is_current:
            return
        if self._layout_required or self._scroll_required or self._repaint_required or self._recompose_required:
            return
        visible = self._compositor.visible_widgets
        refreshed = [widget for widget in visible if widget._repaint_required]
        if not refreshed or any(
            widget._layout_required or widget._scroll_required or widget._refresh_styles_required
            or widget._recompose_required or _idle_work_pending(widget)
            for widget in visible
        ):
            return
        for widget in refreshed:
            widget._repaint_required = False  # what Widget._check_refresh does before it tells the screen
            self._dirty_widgets.add(widget)
        self._on_timer_update()


def _idle_work_pending(widget: Widget) -> bool:
    """Work a Textual widget does when its task goes idle, which Textual's own frame would
    wait for: a DataTable measures the columns of cells updated with update_width, a Tree
    builds its lines after its nodes changed."""
    if isinstance(widget, DataTable):
        return widget._require_update_dimensions or bool(widget._updated_cells)
    if isinstance(widget, Tree):
        return widget._tree_lines_cached is None
    return False
