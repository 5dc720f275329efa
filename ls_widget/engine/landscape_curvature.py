"""The curvature side of a Landscape: H at the model, and |λmin/λmax| maps over a plane.

A mixin of `Landscape` (landscape.py), kept apart because it is another responsibility: it
builds `ls_widget.curvature` objects from the landscape's evaluator and grid, and computes
nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any, Protocol

import numpy as np
from torch import nn

from ..curvature import (
    CURVATURE_METRICS,
    Hessian,
    ParamSelection,
    curvature_values,
    select_params,
)
from ..directions.direction import Direction
from ..results.records import Surface
from .evaluate import Evaluator
from .params import ParamSpace
from .progress import check_progress, track_tiles
from .progressive import collect, progressive
from .sampling import Grid, Tile


class _Host(Protocol):
    """What the mixin uses of its Landscape."""

    model: nn.Module
    space: ParamSpace
    evaluator: Evaluator
    _hessian: Hessian | None

    def check_job(self, points: int, *, max_points: int | None = None, force: bool = False,
                  metrics: int | None = None) -> None: ...

    def surface(self, grid: Grid, dirs: Sequence[Direction],
                values: Mapping[str, np.ndarray], evaluated: np.ndarray | None = None,
                **meta: Any) -> Surface: ...


class CurvatureMixin:
    """`land.hessian`, `hessian_over`, `curvature_stream` and `curvature_map`."""

    _hessian: Hessian | None = None  # `hessian`, built on first use

    def _curvature_params(self: _Host, params: ParamSelection) -> list[str]:
        """The names H is taken over; None, "trainable" and "biasbn" start from those requiring
        grad now; predicates see the model's live parameters."""
        live = dict(self.model.named_parameters())
        trainable = [n for n, p in live.items() if p.requires_grad]
        return select_params(self.space, params, trainable, named=live)

    @property
    def hessian(self: _Host) -> Hessian:
        """Eigenpairs, trace and spectral density of H over the trainable parameters."""
        h = self._hessian
        if h is None:
            h = self._hessian = Hessian(self.evaluator,
                                        CurvatureMixin._curvature_params(self, None))
        return h

    def hessian_over(self: _Host, params: ParamSelection) -> Hessian:
        """H restricted to some parameters: ``"biasbn"`` (no biases/BN, as Li et al.),
        ``"trainable"``, ``"all"``, a list of names or glob patterns, a predicate
        ``fn(name, parameter)``, or a Direction (the tensors it moves)."""
        return Hessian(self.evaluator, CurvatureMixin._curvature_params(self, params))

    def curvature_stream(
        self: _Host,
        d1: Direction,
        d2: Direction,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 11,
        params: ParamSelection = None,
        tol: float = 1e-6,
        max_points: int | None = None,
        force: bool = False,
        progress: bool = False,
    ) -> Iterator[Tile]:
        """Tiles of λmax, λmin, |λmin/λmax| and λmin/λmax over a plane, coarse first.

        ``progress=True`` shows a bar of the points done (see `curvature_map`); it closes when
        the stream ends or is closed. Off by default, as `stream`'s.
        """
        check_progress(progress)
        dirs, grid = [d1, d2], Grid.plane(span, n)
        self.check_job(grid.size, max_points=max_points, force=force,
                       metrics=len(CURVATURE_METRICS))
        names = CurvatureMixin._curvature_params(self, params)
        ev = self.evaluator
        tiles = progressive(
            grid, lambda c: curvature_values(ev, names, dirs, c, tol),
            CURVATURE_METRICS, adaptive=False, tol=0.01, tile_size=1,
        )
        if not progress:
            return tiles
        return track_tiles(tiles, progress, grid, what="curvature map")

    def curvature_map(
        self: _Host,
        d1: Direction,
        d2: Direction,
        *,
        span: float | Sequence = 1.0,
        n: int | Sequence[int] = 11,
        params: ParamSelection = None,
        tol: float = 1e-6,
        max_points: int | None = None,
        force: bool = False,
        progress: bool = True,
    ) -> Surface:
        """|λmin/λmax| of H at each point of a plane (Li et al. 2018, Fig. 7), as a Surface
        with "ratio", "signed_ratio", "lambda_max" and "lambda_min". Near 0: locally convex;
        large: strong negative curvature.

        ``progress=True`` shows a bar (`tqdm.auto`) of the points done (one Lanczos run
        each), with points/s and the time left, once the call has run for a second;
        ``False`` shows nothing. Display only: the values are the same bits either way.
        """
        check_progress(progress)
        tiles = CurvatureMixin.curvature_stream(
            self, d1, d2, span=span, n=n, params=params, tol=tol, max_points=max_points,
            force=force,
        )
        grid = Grid.plane(span, n)
        # closing(): the bar ends here even if collect itself is interrupted between tiles.
        with closing(track_tiles(tiles, progress, grid, what="curvature map")) as tracked:
            vals, _ = collect(tracked, CURVATURE_METRICS, grid.shape)
        return self.surface(grid, (d1, d2), vals, kind="curvature", tol=tol)
