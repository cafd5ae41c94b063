"""A compositor whose partial updates render only the widgets they show.

Textual draws a partial update by rendering every widget that overlaps the bounding box
of the dirty regions, each one whole, and then writing the dirty cells. An edit dirties a
row or two in each panel and the header, so that box is the whole screen: some 26
widgets rendered (containers, the footer, the tree's unchanged rows) for the 6 that
changed: simple_nn's frame took 8.4 ms, and 5.2 ms with this compositor.

`OccludingCompositor` renders a widget only where one of the dirty regions shows it (no
widget in front of it covers that region), and only in the rows of those regions. The
terminal shows the same cells: every cell of a dirty region still comes from the
front-most widget there, as in Textual's (tests/ui/test_compositor.py compares the two
on every frame of a session). The bytes differ a little: Textual also writes a cursor
move and an empty piece for a widget beside a dirty region. It overrides the private `Compositor._get_renders` of the textual
pinned in constraints.txt.
"""

from __future__ import annotations

from typing import Iterable

from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.strip import Strip


class OccludingCompositor(Compositor):
    def __init__(self) -> None:
        super().__init__()
        self._updating: list[Region] = []  # the dirty regions of the partial update in progress

    def render_partial_update(self) -> ChopsUpdate | None:
        self._updating = list(self._dirty_regions)
        try:
            return super().render_partial_update()
        finally:
            self._updating = []

    def _get_renders(self, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
        if not self._updating:  # a full update: Textual's own
            yield from super()._get_renders(crop)
            return
        uncovered = self._updating
        for widget, (region, clip) in self.visible_widgets.items():  # front to back
            shown = region.intersection(clip)
            showing = [dirty for dirty in uncovered if dirty.overlaps(shown)]
            if not showing:
                continue  # hidden by the widgets in front, or not dirty where it shows
            rows = Region.from_union(showing)
            # only the rows asked for; the full width, so that the strip is cut where
            # Textual cuts it (every widget's edges are cuts, a dirty region's are not)
            clip = clip.intersection(Region(clip.x, rows.y, clip.width, rows.height))
            x, y, width, height = region.intersection(clip)
            if width and height:
                yield region, clip, widget.render_lines(Region(x - region.x, y - region.y, width, height))
            uncovered = [dirty for dirty in uncovered if not shown.contains_region(dirty)]

