"""How often each shape appears along random directions (Xu et al. 2024's first finding).

Xu et al. 2024 observe that random directions through a trained model almost always show a
v-basin, which is why the rarer shapes must be mined. `survey` measures that on the user's
model: n seeded, filter-normalized Gaussian directions (Li et al. 2018; seeds seed, seed + 1,
...), the curve along each on [−span, span], and its `classify` kind.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from ..directions.gaussian import _seed, random
from ..engine.progress import ProgressBar, check_progress
from .classify import KINDS, CurveShape, classify
from .mine import check_scale
from .protocols import LandscapeLike, loss_name

__all__ = ["Survey", "survey"]


@dataclass(frozen=True)
class Survey:
    """The shapes of curves along random directions.

    Attributes:
        kinds: the kind of each direction's curve, in the order of `seeds`.
        seeds: the directions' seeds (``lw.directions.random(model, seed)``).
        shapes: each curve's full classification.
        span: the curves' half-width.
        points: points per curve.
    """

    kinds: tuple[str, ...]
    seeds: tuple[int, ...]
    shapes: tuple[CurveShape, ...]
    span: float = 1.0
    points: int = 41

    def counts(self) -> dict[str, int]:
        """Directions per kind, every kind of `KINDS` included (0 where none)."""
        return {k: self.kinds.count(k) for k in KINDS}

    def seeds_of(self, kind: str) -> tuple[int, ...]:
        """The seeds of the directions whose curve has `kind` (to draw one again)."""
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not a curve kind; use one of {list(KINDS)}")
        return tuple(s for s, k in zip(self.seeds, self.kinds, strict=True) if k == kind)

    def _rows(self) -> list[tuple[str, int, str, str]]:
        total = len(self.kinds)
        rows = []
        for kind, count in self.counts().items():
            seeds = self.seeds_of(kind)
            shown = ", ".join(map(str, seeds[:5])) + (", ..." if len(seeds) > 5 else "")
            rows.append((kind, count, f"{100 * count / total:.1f} %" if total else "-", shown))
        return rows

    def _title(self) -> str:
        return (f"{len(self.kinds)} random directions (filter-normalized, seeds "
                f"{self.seeds[0] if self.seeds else '-'}..{self.seeds[-1] if self.seeds else '-'}"
                f"), span {self.span:g}, {self.points} points")

    def table(self) -> str:
        """A text table: kind, count, share, the first seeds of each kind."""
        lines = [self._title(), f"{'kind':<10} {'count':>6} {'share':>8}  seeds"]
        lines += [f"{k:<10} {c:>6} {p:>8}  {s}" for k, c, p, s in self._rows()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        head = "<tr><th>kind</th><th>count</th><th>share</th><th>seeds</th></tr>"
        body = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{c}</td><td>{p}</td><td>{html.escape(s)}</td></tr>"
            for k, c, p, s in self._rows()
        )
        return (f"<table><caption>{html.escape(self._title())}</caption>{head}{body}"
                "</table>")

    def plot(self, ax: Any = None) -> Any:
        """A bar plot of the counts per kind (matplotlib); returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3), layout="constrained")
        counts = self.counts()
        ax.bar(list(counts), list(counts.values()), color="tab:blue")
        ax.set_ylabel("directions")
        ax.set_title(f"shapes along {len(self.kinds)} random directions (span {self.span:g})")
        ax.tick_params(axis="x", labelrotation=30)
        return ax


def survey(
    land: LandscapeLike,
    n: int = 100,
    *,
    span: float = 1.0,
    points: int = 41,
    seed: int = 0,
    progress: bool = True,
) -> Survey:
    """Classify the curves along `n` random directions (Xu et al. 2024's first finding).

    Args:
        land: the landscape.
        n: how many directions; seeds `seed`, `seed` + 1, ..., filter-normalized Gaussians
            (``lw.directions.random(land.model, seed)``).
        span: each curve is on [−span, span].
        points: points per curve.
        seed: the first seed.
        progress: show a bar of the directions done (`tqdm.auto`) once the call has run for a
            second.

    Returns:
        `Survey`: the kinds, seeds and shapes; ``counts()``, ``table()``, ``plot()``.
    """
    check_progress(progress)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a positive int (how many directions); e.g. n=100")
    span, points = check_scale(span, points, "points")
    seed = _seed(seed)
    seeds = tuple(range(seed, seed + n))
    shapes = []
    with ProgressBar(progress, total=n, unit="dir", desc="shape survey") as bar:
        for s in seeds:
            curve = land.line(random(land.model, s), span=span, n=points, progress=False)
            shapes.append(classify(curve, metric=loss_name(land)))
            bar.update()
    return Survey(tuple(sh.kind for sh in shapes), seeds, tuple(shapes), span, points)
