"""The explorer's "shapes" toggle: the panel and its control, built when first opened.

`ShapesMethods` (a mixin of `Explorer`) imports shapes_control.py, and with it the
classifiers, only on first use, so `explore()` costs nothing more until the panel is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as W

if TYPE_CHECKING:
    from .shapes_control import ShapesControl


class ShapesMethods:
    """The explorer's "shapes" toggle and panel (a mixin of `Explorer`).

    The class using it sets `landscape`, `bank`, `view` and `_controls`, and calls
    `_shapes_row` once while building its layout.
    """

    landscape: Any
    bank: Any
    view: Any
    _controls: Any
    shapes_toggle: W.ToggleButton
    _shapes_box: W.VBox
    _shapes: ShapesControl | None

    def _shapes_row(self) -> list[Any]:
        """The toggle and the (empty until opened) box of the panel."""
        self._shapes = None
        self.shapes_toggle = W.ToggleButton(
            False, description="shapes", icon="line-chart", layout=W.Layout(width="120px"),
            tooltip="the kinds of the surface and its cross-sections, a gallery of shaped "
                    "curves, mining (Xu et al. 2024)",
        )
        self._shapes_box = W.VBox([])
        self.shapes_toggle.observe(self._toggle_shapes, names="value")
        return [self.shapes_toggle, self._shapes_box]

    @property
    def shapes(self) -> ShapesControl:
        """The "shapes" panel's control (labels, gallery, mining: `ShapesControl`), built and
        the panel opened on first use (the toggle shows and hides it)."""
        if self._shapes is None:
            from .shapes_control import ShapesControl  # the classifiers load on first use

            self._shapes = ShapesControl(self.landscape, self.bank, self._controls, self.view)
            self.shapes_toggle.value = True
        return self._shapes

    def _toggle_shapes(self, change: Mapping[str, Any]) -> None:
        # Shown by being a child: a bqplot figure first drawn in a hidden box cannot scale.
        self._shapes_box.children = (self.shapes.panel,) if change["new"] else ()
