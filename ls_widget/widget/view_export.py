"""Exports of the view drawn in the kernel: PNG, SVG and PDF files of what it shows.

`ViewExports` is a mixin of `LandscapeWidget` (view.py): a PNG of no given size is the
frontend's own picture of the screen (snapshot.py); a size, a vector format, or no frontend
gives matplotlib's drawing of the same surface, styled as the view styles it, with the
cross-sections through the last click (`lw.figures.explorer_figure`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..figures.labels import with_suffix
from ..results.records import Surface
from .snapshot import drawn_png


class _View(Protocol):
    """What the exports read of their `LandscapeWidget`."""

    _snapshots: dict[int, bytes]
    _picked: tuple[float, float] | None
    _worker: Any
    generation: int
    surface_info: dict[str, Any]
    metric: str
    log_scale: bool
    n_levels: int
    colormap: str

    @property
    def surface_record(self) -> Surface | None: ...

    def _drawn(self: _View, path: Path, *, dpi: int, width: int | None = None,
               height: int | None = None) -> Path: ...


class ViewExports:
    """`save_png`, `save_svg` and `save_pdf` of a `LandscapeWidget`."""

    def save_png(self: _View, path: str | Path, *, dpi: int = 150, width: int | None = None,
                 height: int | None = None) -> Path:
        """Write the picture as a PNG: the frontend's own snapshot of the screen when one of
        the current generation arrived, else the same surface rendered with matplotlib (with
        its trajectory, if one is drawn over it). With `width`/`height` (pixels at `dpi`):
        matplotlib's figure of the contour, colorbar and cross-sections at that size."""
        path = Path(path)
        snap = self._snapshots.get(self.generation)
        if snap is not None and width is None and height is None:
            path.write_bytes(snap)
            return path
        return self._drawn(path, dpi=dpi, width=width, height=height)

    def save_svg(self: _View, path: str | Path) -> Path:
        """Write the contour, colorbar and cross-sections as an SVG (matplotlib), the
        directions' provenance as tooltips of the axis labels."""
        return self._drawn(with_suffix(path, ".svg"), dpi=100)

    def save_pdf(self: _View, path: str | Path) -> Path:
        """Write the contour, colorbar and cross-sections as a PDF (matplotlib)."""
        return self._drawn(with_suffix(path, ".pdf"), dpi=100)

    def _drawn(self: _View, path: Path, *, dpi: int, width: int | None = None,
               height: int | None = None) -> Path:
        """The surface shown, drawn by matplotlib as the view styles it, written to `path`."""
        surf = self.surface_record
        if surf is None:
            raise RuntimeError(
                "no surface has been computed yet; wait for it with w.wait() and try again"
            )
        job = self._worker.job  # the request of the surface shown holds its trajectory
        shown = job is not None and job.request.gen == self.surface_info.get("gen")
        drawn = job.request.path if job is not None and shown else None
        picked = self._picked
        inside = picked is not None and surf.x[0] <= picked[0] <= surf.x[-1] and (
            surf.y[0] <= picked[1] <= surf.y[-1])
        return drawn_png(surf, path, dpi=dpi, metric=self.metric, log=self.log_scale,
                         levels=max(2, self.n_levels), cmap=self.colormap, trajectory=drawn,
                         width=width, height=height, cross=picked if inside else None)
