"""Curvature over a plane: λmax, λmin and their ratio at each point (Li et al. 2018, Fig. 7),
and the choice of the parameters H is taken over.

Li et al. draw |λmin/λmax| of H at every point of a plane: near 0 the loss is locally convex,
large values mean strong negative curvature. The reference code finds λmin by power iteration
on H − 0.51·λmax·I, which fails when H is clearly positive definite (METHODS.md); here both
ends come from one Lanczos run (`HessianOperator.extremes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from torch import Tensor

from ..directions.direction import Direction
from ..engine.params import select_names
from .operator import HessianOperator
from .protocols import LossEvaluator, ParamSnapshot

__all__ = ["CURVATURE_METRICS", "ParamSelection", "curvature_values", "select_params"]

CURVATURE_METRICS = ("lambda_max", "lambda_min", "ratio", "signed_ratio")
"""The values of a curvature map, in the columns of `curvature_values`: λmax, λmin,
|λmin/λmax| and λmin/λmax."""

ParamSelection = str | Iterable[str] | Callable[[str, Tensor], bool] | Direction | None
"""Which parameters H is taken over: None or ``"trainable"`` (those requiring grad, the
default of `ls_widget.directions.random` too), ``"biasbn"`` (those, without tensors of
dim ≤ 1, as Li et al.), ``"all"``, a list of names or `fnmatch` glob patterns
(``["layer4.*", "fc.*"]``), a predicate ``fn(name, parameter) -> bool``, or a Direction (the
tensors it moves)."""


def select_params(
    space: ParamSnapshot,
    params: ParamSelection = None,
    trainable: Sequence[str] | None = None,
    *,
    named: Mapping[str, Tensor] | None = None,
) -> list[str]:
    """Names of the parameters the Hessian is taken over.

    Globs, predicates, ``"trainable"`` and ``"all"`` are resolved by the same function as the
    directions' ``params=`` (`ls_widget.engine.params.select_names`), so by default H is taken
    over the tensors a default `random` direction selects.

    Args:
        space: the parameter snapshot (the engine's `ParamSpace`).
        params: the selection (see `ParamSelection`).
        trainable: the names of the parameters that require grad in the model, for ``None``,
            ``"trainable"`` and ``"biasbn"`` (default: every parameter).
        named: the model's live parameters, which predicates are called with (default: the
            snapshot θ₀, whose tensors do not require grad).

    Raises:
        ValueError: for unknown names, patterns matching nothing, an unknown string, a
            Direction of another architecture, or an empty selection.
    """
    names: list[str]
    if params is None or (isinstance(params, str) and params in ("trainable", "biasbn")):
        # As `select_names`: a model with nothing trainable (a frozen copy) moves every tensor.
        names = list(trainable or space.names)
        if params == "biasbn":
            names = [n for n in names if space.theta0[n].dim() > 1]
    elif isinstance(params, Direction):
        space.check_compatible(params)
        names = [n for n in space.names if bool(params[n].any())]
    elif isinstance(params, str) and params != "all":
        raise ValueError(
            f"params={params!r}; use None, 'trainable', 'biasbn', 'all', a list of names or "
            "glob patterns, a predicate fn(name, parameter) or a Direction"
        )
    elif callable(params) or isinstance(params, str):
        live = named if named is not None else space.theta0
        names = select_names([(n, live[n]) for n in space.names], params)
    else:
        items = list(params)
        if all(isinstance(n, str) and n in space.theta0 for n in items) and items:
            names = items  # exact names, in the order given
        else:
            names = select_names(list(space.theta0.items()), items)
    if not names:
        raise ValueError(
            "no parameter to take the Hessian over: the selection is empty. Pass params='all' "
            "or params=[names or glob patterns]"
        )
    return names


def curvature_values(
    ev: LossEvaluator, names: Sequence[str], dirs: Sequence[Direction], coeffs: np.ndarray,
    tol: float,
) -> np.ndarray:
    """λmax, λmin, |λmin/λmax| and λmin/λmax (`CURVATURE_METRICS`) at each row of `coeffs`.

    Args:
        ev: the engine's `Evaluator`.
        names: the parameters H is taken over (`select_params`).
        dirs: the plane's directions d₁ … d_k.
        coeffs: (P, k) coefficients: the points θ₀ + Σ cₖ dₖ.
        tol: the Lanczos residual tolerance, relative to the spectral radius.

    Returns:
        A (P, 4) array. Far from the model the loss may diverge: where the Hessian-vector
        products overflow, the eigensolver fails (LinAlgError) or gives non-finite values,
        that point is NaN, as `plane` draws divergent points, rather than an error that ends
        the whole map.
    """
    space = ev.space
    for d in dirs:
        space.check_compatible(d)  # architecture and finite values, before any HVP
    dirs = [d.to(space.device) for d in dirs]
    out = np.full((len(coeffs), 4), np.nan)
    for i, c in enumerate(coeffs):
        op = HessianOperator(ev, names, directions=dirs, coeffs=list(c))
        try:
            with np.errstate(all="ignore"):
                w, _ = op.extremes(1, "both", tol=tol)
        except np.linalg.LinAlgError:  # NaN/inf in the Lanczos tridiagonal: diverged
            continue
        lam_max, lam_min = float(w[0]), float(w[-1])
        if not (math.isfinite(lam_max) and math.isfinite(lam_min)):
            continue
        ratio = lam_min / lam_max if lam_max != 0 else math.nan
        out[i] = (lam_max, lam_min, abs(ratio), ratio)
    return out
