"""The shapes side of a Landscape: directions built or mined to show a shape (Xu et al. 2024).

A mixin of `Landscape` (landscape.py), kept apart because it is another responsibility: it
hands the landscape to `ls_widget.shapes` (constructions, mining, planes of mined directions)
and computes nothing itself. `shapes` takes the landscape as a Protocol and never imports this
module; it is imported when a method is first called, so `import ls_widget` does not load
the classifiers and SciPy's signal processing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..directions.direction import Direction

if TYPE_CHECKING:
    from ..shapes.mine import Mined
    from ..shapes.mine_plane import MinedPlane
    from ..shapes.protocols import LandscapeLike


class ShapesMixin:
    """`construct`, `mine` and `mine_plane`: a mixin of `Landscape`."""

    def construct(
        self: LandscapeLike, kind: str, *, other: nn.Module | None = None, seed: int = 0
    ) -> Direction:
        """A direction built to show the shape `kind` (Xu et al. 2024).

        ``"v-side"``: the gradient ∇L/‖∇L‖, scaled to the norm of a filter-normalized
        direction (the loss's minimum along it is close to the model: look at a small span,
        e.g. 0.01); ``"w-basin"``: towards `other`, a second solution (`lw.directions.towards`:
        the other model at α = 1, so look at a span of 1.5 or more); ``"v-basin"``: a seeded,
        filter-normalized Gaussian. See `ls_widget.shapes.construct`.
        """
        from ..shapes.construct import construct

        return construct(self, kind, other=other, seed=seed)

    def mine(self: LandscapeLike, kind: str, **kw: Any) -> Mined:
        """A direction mined until the curve along it has the shape `kind` (Xu et al. 2024).

        ``land.mine("w-peak")`` or ``land.mine("vvv-basin")``: Adam steps on the
        filter-normalized directions down a shape objective, from the most negative Hessian
        eigenvector, until `lw.shapes.classify` says the shape is there; ``"v-basin"``,
        ``"v-side"`` and ``"w-basin"`` are constructed. Keywords (``span``, ``n``, ``steps``,
        ``budget``, ``seed``, ``lr``, ``margin``, ``progress``, ``start``, ``other``,
        ``cancel``, ``callback``) and the result (`Mined`: direction, curve, shape, reached,
        history) are those of `ls_widget.shapes.mine.mine`. The model never changes.
        """
        from ..shapes.mine import mine

        return mine(self, kind, **kw)

    def mine_plane(self: LandscapeLike, kind: str, **kw: Any) -> MinedPlane:
        """A plane of mined directions that shows a ``"saddle"`` (a v-basin × a mined w-peak)
        or a ``"wine-bottle"`` (a mined w-peak × a direction mined on a ring objective)
        (Xu et al. 2024). Keywords: ``span``, ``n``, ``seed``, ``progress`` and those of
        `mine`; see `ls_widget.shapes.mine_plane.mine_plane`. Returns `MinedPlane` (d1, d2,
        surface, shape)."""
        from ..shapes.mine_plane import mine_plane

        return mine_plane(self, kind, **kw)
