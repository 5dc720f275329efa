"""Side-by-side comparisons of 2–4 models on one plane layout.

`compare_surfaces({"bs=128": m_a, "bs=8192": m_b}, data)` computes, for every model, the
surface on the plane of its own filter-normalized random directions drawn from the same seeds
(`lw.directions.random(model_i, seed)`), on the same grid. The pictures are then comparable
the way Li et al. (2018) compare small- and large-batch minima: each direction is scaled
filter by filter to its own model's weights. `compare` shows the same panels live in a widget
(`ls_widget.widget.compare`, imported on first use: this module needs no Jupyter package);
both check the models the same way here (`comparison`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch.nn.functional as F
from torch import nn

from . import metrics as _metrics
from .directions import Direction, random
from .engine.landscape import Landscape
from .results import Surface

if TYPE_CHECKING:
    from .widget.compare import Compare

MIN_MODELS, MAX_MODELS = 2, 4
"""How many models a comparison shows side by side."""

_EXAMPLE = "{'bs=128': model_a, 'bs=8192': model_b}"


class Panel(NamedTuple):
    """One model of a comparison: its name, its landscape and its plane's directions."""

    name: str
    landscape: Landscape
    d1: Direction
    d2: Direction


def check_models(models: Any) -> dict[str, nn.Module]:
    """`models` as a dict name → model after checking it: a mapping of 2 to 4 models with
    string names, all of one architecture (the same parameter names and shapes). Errors name
    the offending entry and say what to pass."""
    if not isinstance(models, Mapping):
        raise TypeError(
            f"models must be a dict name → model, e.g. {_EXAMPLE}; got a "
            f"{type(models).__name__}"
        )
    if not MIN_MODELS <= len(models) <= MAX_MODELS:
        raise ValueError(
            f"a comparison shows {MIN_MODELS} to {MAX_MODELS} models side by side; got "
            f"{len(models)} ({list(models)}); pass e.g. {_EXAMPLE}"
        )
    out: dict[str, nn.Module] = {}
    for name, model in models.items():
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"model names must be non-empty strings (panel titles); got {name!r}")
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"models[{name!r}] is a {type(model).__name__}, not a torch.nn.Module; pass the "
                "trained models themselves"
            )
        out[name] = model
    _check_architectures(out)
    return out


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def _check_architectures(models: Mapping[str, nn.Module]) -> None:
    (first, ref), *others = models.items()
    want = _shapes(ref)
    for name, model in others:
        have = _shapes(model)
        missing = [k for k in want if k not in have]
        extra = [k for k in have if k not in want]
        shape = next((k for k in want if k in have and want[k] != have[k]), None)
        if missing or extra:
            what = (f"{first!r} has {missing[:3]} that {name!r} lacks" if missing
                    else f"{name!r} has {extra[:3]} that {first!r} lacks")
        elif shape is not None:
            what = (f"parameter {shape!r} is {want[shape]} in {first!r} and {have[shape]} in "
                    f"{name!r}")
        else:
            continue
        raise ValueError(
            f"models {first!r} and {name!r} have different architectures ({what}); a "
            "comparison draws every model on directions of the same seeds, which needs one "
            "architecture: pass instances of the same model class"
        )


def check_seeds(seeds: Any) -> tuple[int, int]:
    """Two different integer seeds, for the x and y directions of every panel."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) != 2:
        raise ValueError(f"seeds must be two ints (x axis, y axis), e.g. (0, 1); got {seeds!r}")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in seeds):
        raise TypeError(f"seeds must be ints, e.g. (0, 1); got {seeds!r}")
    a, b = int(seeds[0]), int(seeds[1])
    if a == b:
        raise ValueError(
            f"seeds={seeds!r} draws the same direction on both axes (a flat line, not a "
            f"plane); give two different seeds, e.g. ({a}, {a + 1})"
        )
    return a, b


def default_metrics(
    loss: Callable[..., Any] | None, metrics: Mapping[str, Callable[..., Any]] | None
) -> Mapping[str, Callable[..., Any]]:
    """`metrics`, or when None: accuracy beside a cross-entropy loss (``loss=None`` on
    (input, target) batches is cross-entropy too), nothing beside another loss."""
    if metrics is not None:
        return metrics
    return {"accuracy": _metrics.accuracy} if loss is None or loss is F.cross_entropy else {}


def comparison(
    models: Any,
    data: Any,
    loss: Callable[..., Any] | None = None,
    *,
    seeds: Any = (0, 1),
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    **landscape_kwargs: Any,
) -> list[Panel]:
    """A `Panel` per model: an `lw.Landscape` of it on `data`, and its directions of `seeds`
    (`lw.directions.random(model, seed)`: filter-normalized to that model)."""
    checked = check_models(models)
    s1, s2 = check_seeds(seeds)
    chosen = default_metrics(loss, metrics)
    panels = []
    for name, model in checked.items():
        land = Landscape(model, data, loss, chosen, **landscape_kwargs)
        panels.append(Panel(name, land, random(model, s1), random(model, s2)))
    return panels


def compare_surfaces(
    models: Any,
    data: Any,
    loss: Callable[..., Any] | None = None,
    *,
    seeds: Any = (0, 1),
    span: Any = 1.0,
    n: int | Sequence[int] = 41,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    max_points: int | None = None,
    force: bool = False,
    progress: bool = True,
    **landscape_kwargs: Any,
) -> dict[str, Surface]:
    """The surface of each model on the plane of its own random directions from `seeds`.

    Every model gets its own filter-normalized directions ``lw.directions.random(model, s)``
    for the same two seeds, and the same grid; each surface is exactly
    ``lw.Landscape(model, data, loss, metrics).plane(d1, d2, span=span, n=n)``. Draw them
    side by side on one colour scale with `lw.figures.compare.plot_compare`, or explore them
    live with `lw.compare`.

    Args:
        models: a dict name → model, 2 to 4 models of one architecture.
        data: anything `lw.Landscape` takes, the same for every model.
        loss: ``loss(output, target)`` → batch mean; None: as `lw.Landscape` (the output's
            own loss, else cross-entropy).
        seeds: the seeds of the x and y directions.
        span: as `Landscape.plane` (s means (−s, s) on both axes).
        n: points per axis (an int or (nx, ny)).
        metrics: more ``name → fn(output, target)``; None: accuracy when the loss is
            cross-entropy (`default_metrics`), ``{}`` for the loss alone.
        max_points: grids of more points are refused with ``lw.JobTooLarge``.
        force: compute grids of any size.
        progress: a progress bar per model (display only).
        **landscape_kwargs: passed to every `lw.Landscape` (batch_size, memory, strategy).

    Returns:
        name → `lw.Surface`, in the order of `models`.
    """
    panels = comparison(models, data, loss, seeds=seeds, metrics=metrics, **landscape_kwargs)
    return {
        p.name: p.landscape.plane(p.d1, p.d2, span=span, n=n, max_points=max_points,
                                  force=force, progress=progress)
        for p in panels
    }


def compare(
    models: Any,
    data: Any,
    loss: Callable[..., Any] | None = None,
    *,
    seeds: Any = (0, 1),
    span: float = 1.0,
    n: int = 41,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    metric: str | None = None,
    log: bool = False,
    colormap: str = "viridis",
    n_levels: int = 12,
    max_points: int | None = None,
    force: bool = False,
    **landscape_kwargs: Any,
) -> Compare:
    """Compare 2–4 models' loss landscapes side by side in a live widget.

    Every model gets its own filter-normalized random directions from the same `seeds`
    (`lw.directions.random(model, seed)`) and the same grid; the panels stream their tiles at
    once, share one colour scale and isolines, move together with one span and points
    slider, show the probe at the same (α, β) on hover, and a click draws the 1D
    cross-sections through that point on every panel. Returns once every panel's first tile
    is computed; any failure before raises here and leaves nothing running. The result's
    ``.surfaces`` (``.compute()`` waits for them) are `compare_surfaces`' bit for bit, and
    ``.figure()`` draws them side by side with one colorbar.

    Args:
        models: a dict name → model (e.g. ``{"bs=128": m_a, "bs=8192": m_b}``), 2 to 4
            models of one architecture, never modified.
        data: anything `lw.Landscape` takes, the same for every model.
        loss: ``loss(output, target)`` → batch mean; None: as `lw.Landscape` (the output's
            own loss, else cross-entropy).
        seeds: the seeds of the x and y directions.
        span: half-width s of the view, (−s, s) on both axes.
        n: points per axis (an int ≥ 2).
        metrics: more ``name → fn(output, target)``; None: accuracy beside a cross-entropy
            loss (``{}``: the loss alone).
        metric: the metric drawn (default: the first, "loss" or "<first set>/loss").
        log: colour scale and isolines on a log scale.
        colormap: viridis, magma, inferno, plasma, cividis or turbo.
        n_levels: number of isolines (≥ 2).
        max_points: grids of more points are refused with ``lw.JobTooLarge``.
        force: compute grids of any size.
        **landscape_kwargs: passed to every `lw.Landscape` (batch_size, memory, strategy).

    Returns:
        a `Compare` widget (display it in a cell).
    """
    try:
        from .widget.compare import Compare
    except ImportError as exc:
        raise ImportError(
            f"lw.compare needs the widget packages ({exc.name or exc}); install them with "
            "pip install 'ls-widget[widget]', or use lw.compare_surfaces without a widget"
        ) from exc
    panels = comparison(models, data, loss, seeds=seeds, metrics=metrics, **landscape_kwargs)
    return Compare(panels, span=span, n=n, metric=metric, log=log, colormap=colormap,
                   n_levels=n_levels, max_points=max_points, force=force)
