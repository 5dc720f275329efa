"""Progress bars for long calls made outside the widget (`Landscape.line`, `plane`, the Hessian).

`tqdm.auto` draws them: a widget in Jupyter, a line of text on a terminal, with the rate
(points/s, or Hessian-vector products/s) and the time left from tqdm's own clock. They are
display only: nothing computed depends on them (same inputs, same bits, bar or no bar). A bar
appears only once its call has run for `DELAY_S`, leaves its last line when the call ends
(nothing, if it never appeared), and is closed on every way out: return, exception, or a
stream closed early. ``progress=False`` makes none at all. The widget shows its own progress,
so streams have no bar by default.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from types import TracebackType

from tqdm.auto import tqdm  # type: ignore[import-untyped]

from .sampling import Grid, Tile

__all__ = ["DELAY_S", "ProgressBar", "TqdmBar", "check_progress", "track_tiles"]

DELAY_S = 1.0
"""Seconds a call runs before its bar appears: quick calls print nothing."""


class TqdmBar(tqdm):
    """The class the bars are drawn with: `tqdm.auto`'s, without tqdm's monitor thread.

    tqdm starts that thread with its first bar and keeps it for the life of the process; it
    only redraws bars whose dynamic `miniters` skipped updates for 10 s. Ours are made with
    ``miniters=1`` (every update may redraw, at most every `mininterval`), so they need no
    thread, and no call leaves one behind.
    """

    monitor_interval = 0


def check_progress(progress: object) -> None:
    """Refuse a ``progress=`` that is not a bool (a typo would otherwise pass as truthy)."""
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")


class ProgressBar:
    """A tqdm bar counting the units of one long call, or nothing when `progress` is False.

    A context manager: the bar closes when the block ends, however it ends.

    Args:
        progress: the user's ``progress=``; False makes every method a no-op.
        total: the units of work expected, or a bound on them (see `set_total`); None when
            unknown (the bar then shows the count and the rate only).
        unit: ``"pt"`` for points of a landscape (rate in points/s), ``"hvp"`` for
            Hessian-vector products.
        desc: what is being computed, shown before the bar.

    Attributes:
        count: the units counted so far (also without a bar).
    """

    def __init__(self, progress: bool, *, total: int | None, unit: str, desc: str) -> None:
        check_progress(progress)
        self.count = 0
        self._bar: TqdmBar | None = (
            TqdmBar(total=total, unit=unit, desc=desc, delay=DELAY_S, leave=True, miniters=1,
                    dynamic_ncols=True)
            if progress else None
        )

    def update(self, n: int = 1) -> None:
        """Count `n` more units done."""
        self.count += n
        if self._bar is not None:
            self._bar.update(n)

    def note(self, text: str) -> None:
        """Show `text` after the counts (drawn with the next update)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def set_total(self, total: int) -> None:
        """Change the total once the work turns out shorter than its bound (a converged
        Lanczos run), so that the bar ends full rather than as if interrupted."""
        bar = self._bar
        if bar is None:
            return
        bar.total = total
        # tqdm.notebook draws an ipywidgets progress bar whose maximum is fixed when it is made
        # (only `reset` changes it, and that restarts the clock): set it too.
        container = getattr(bar, "container", None)
        if container is not None:
            container.children[1].max = total
        bar.refresh()

    def close(self) -> None:
        """Close the bar (idempotent); a bar that never appeared leaves nothing."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def track_tiles(
    tiles: Iterator[Tile], progress: bool, grid: Grid, *, what: str | None = None
) -> Generator[Tile, None, None]:
    """`tiles` of `grid` unchanged, counted on a bar of ``grid.size`` points.

    Every point of a tile counts, evaluated or interpolated (adaptive refinement), so the bar
    reaches the grid's size when the grid is complete; once some were interpolated, the
    number evaluated is shown beside it. The bar opens at the first tile asked for and closes
    when the tiles end, raise, or this generator is closed (which closes `tiles` too).

    Args:
        tiles: the stream to count.
        progress: the user's ``progress=``; False: no bar.
        grid: the grid the tiles cover.
        what: the bar's label before the grid's size (default "line" or "plane").
    """
    rows, cols = grid.shape
    label = what or ("line" if rows == 1 else "plane")
    desc = f"{label} {cols}" if rows == 1 else f"{label} {cols}×{rows}"
    with ProgressBar(progress, total=grid.size, unit="pt", desc=desc) as bar:
        evaluated = 0
        try:
            for tile in tiles:
                points = len(tile.rows)
                evaluated += points if tile.exact else 0
                if evaluated < bar.count + points:
                    bar.note(f"{evaluated} evaluated")
                bar.update(points)
                yield tile
        finally:
            if isinstance(tiles, Generator):  # at once, not when collected
                tiles.close()
