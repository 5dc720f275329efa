"""Which ops of the loss have kinks: the test behind `Trace.smooth` and `NonSmoothWarning`.

Böttcher & Wheeler's (2022) trace from loss values takes second differences. On a loss with
kinks in the parameters (ReLU, max-pooling, clamp, ...), a kink crossed within [−h, h] with
slope jump Δ adds Δ(h − s)/h² to them, whose expectation does not vanish as h → 0: the estimate
is the curvature at the scale h, not autograd's (almost-everywhere) tr H (METHODS.md). Here we
record the aten ops the loss runs on values that depend on the parameters, and report those
that have kinks where their inputs are.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..engine.batch import forward
from .protocols import LossEvaluator
from .records import Trace

__all__ = ["NonSmoothWarning", "nonsmooth_ops", "warn_nonsmooth"]


class NonSmoothWarning(UserWarning):
    """`trace("projection")` on a loss with kinks (ReLU, max-pooling, clamp, ...).

    There the second differences measure the curvature at the step's scale, kinks included,
    which does not converge to autograd's tr H (the almost-everywhere Hessian) as h → 0
    (Böttcher & Wheeler 2022). `trace("hutchinson")` gives the latter.
    """


# Ops whose output has a kink or a jump wherever their input is: always reported when run on
# values that depend on the parameters (max-type reductions and pooling, rounding, ranking).
_ALWAYS_KINKED = frozenset({
    "max", "min", "amax", "amin", "argmax", "argmin", "sort", "topk", "kthvalue", "median",
    "nanmedian", "mode", "cummax", "cummin", "floor", "ceil", "round", "trunc", "frac",
    "multi_margin_loss", "multilabel_margin_loss", "multilabel_margin_loss_forward",
})
# ... and families of them (pooling by max, fake quantization: piecewise constant).
_KINKED_PREFIXES = ("max_pool", "adaptive_max_pool", "fractional_max_pool", "mkldnn_max_pool",
                    "quantized_max_pool", "fake_quantize")
# Elementwise ops with kinks at 0.
_KINK_AT_ZERO = frozenset({"relu", "leaky_relu", "_prelu_kernel", "prelu", "rrelu",
                           "rrelu_with_noise", "abs", "absolute", "sign", "sgn", "heaviside"})
# Ops comparing two operands: a kink (or a jump) where they are equal.
_BINARY_KINKED = frozenset({"maximum", "minimum", "fmax", "fmin", "gt", "ge", "lt", "le",
                            "greater", "greater_equal", "less", "less_equal"})
_NONSMOOTH_MODULES = (
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "Hardtanh", "Hardswish", "Hardsigmoid",
    "Hardshrink", "Softshrink", "Threshold", "SELU", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "FractionalMaxPool2d",
    "FractionalMaxPool3d",
)


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _kinks(name: str, overload: str, args: Sequence[Any],
           kwargs: Mapping[str, Any]) -> list[tuple[Any, Any]] | None:
    """Where the aten op `name.overload` is not continuously differentiable in its input.

    Returns None for an op with kinks wherever it runs (pooling, max-reductions, rounding),
    a list of (value, breakpoint) pairs (the op has a kink where value = breakpoint), or []
    for an op that is C¹ (smooth enough for second differences: their error stays O(h)).
    """
    x = args[0] if args else None
    if name in _ALWAYS_KINKED and not (name in ("max", "min") and overload == "other"):
        return None
    if name.startswith(_KINKED_PREFIXES):
        return None
    if name in _KINK_AT_ZERO:
        if name == "leaky_relu" and _arg(args, kwargs, 1, "negative_slope", 0.01) == 1:
            return []
        return [(x, 0.0)]
    if name in _BINARY_KINKED or name in ("max", "min"):
        return [(x, _arg(args, kwargs, 1, "other", 0.0))]
    if name == "elu":  # slopes α·scale·input_scale (left) and scale (right) at 0
        alpha = _arg(args, kwargs, 1, "alpha", 1.0)
        input_scale = _arg(args, kwargs, 3, "input_scale", 1.0)
        return [] if float(alpha) * float(input_scale) == 1.0 else [(x, 0.0)]  # SELU: kink
    if name == "hardtanh":
        return [(x, _arg(args, kwargs, 1, "min_val", -1.0)),
                (x, _arg(args, kwargs, 2, "max_val", 1.0))]
    if name in ("hardswish", "hardsigmoid"):
        return [(x, -3.0), (x, 3.0)]
    if name in ("hardshrink", "softshrink"):
        lambd = float(_arg(args, kwargs, 1, "lambd", 0.5))
        return [(x, -lambd), (x, lambd)]
    if name == "threshold":
        return [(x, _arg(args, kwargs, 1, "threshold", 0.0))]
    if name in ("clamp", "clip"):
        bounds = (_arg(args, kwargs, 1, "min", None), _arg(args, kwargs, 2, "max", None))
        return [(x, b) for b in bounds if b is not None]
    if name in ("clamp_min", "clamp_max"):
        return [(x, _arg(args, kwargs, 1, name[-3:], 0.0))]
    return []


def _reaches(value: Any, breakpoint: Any) -> bool:
    """Whether the values lie on a breakpoint or on both sides of it (else, near θ, the op
    acts as one smooth piece: a clamp that never clamps, a ReLU that is always on)."""
    if not isinstance(value, Tensor) or not (value.is_floating_point() or value.is_complex()):
        return False
    if isinstance(breakpoint, Tensor):
        breakpoint = breakpoint.to(value.device)
    d = torch.as_tensor(value - breakpoint).real
    d = d[~torch.isnan(d)]
    return bool((d == 0).any()) or bool((d < 0).any() and (d > 0).any())


def _module_kinks(model: torch.nn.Module) -> tuple[str, ...]:
    """The fallback when the ops cannot be recorded: non-smooth module types in the model."""
    found = set()
    for mod in model.modules():
        cls = type(mod)
        is_kinked = any(
            c.__module__.startswith("torch.nn") and c.__name__ in _NONSMOOTH_MODULES
            for c in cls.__mro__
        )
        alpha = getattr(mod, "alpha", 1.0)
        if is_kinked or (cls.__name__ == "ELU" and float(alpha) != 1.0):
            found.add(f"nn.{cls.__name__}")
    return tuple(sorted(found))



def nonsmooth_ops(ev: LossEvaluator, names: Sequence[str]) -> tuple[str, ...]:
    """The ops with kinks or jumps through which the loss depends on the parameters `names`.

    Runs the model and the loss once on the first batch of `ev` at θ₀ (eval mode, on the
    evaluator's private copy) under a `TorchDispatchMode` that records every aten op, so
    functional calls (``F.relu``, ``x.clamp(...)``, ``torch.maximum``) count as much as
    modules. Values are followed from the parameters: ops that see only the inputs (a clamp
    of the data) do not count, nor do elementwise ops whose inputs all lie strictly on one
    side of their kinks. Returns aten names, sorted (in-place variants under their plain
    name). If the forward cannot run under the recorder, falls back to the non-smooth module
    types in the model (``"nn.ReLU"``, ...).

    Smooth means C¹ here: a jump in the second derivative only (ELU with α = 1, the Huber
    loss) biases second differences by O(h), which vanishes with h. Over-reported: kinks that
    cancel in the whole, as in a hand-written stable softmax ``x - x.max()`` or softsign's
    ``abs``.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.weak import WeakIdKeyDictionary

    space = ev.space
    tainted: Any = WeakIdKeyDictionary()
    for n in names:
        tainted[space.theta0[n]] = True
    found: set[str] = set()

    class _Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            leaves = tree_flatten((args, kwargs))[0]
            depends = any(isinstance(t, Tensor) and t in tainted for t in leaves)
            if depends:  # before running it: in-place ops overwrite their input
                name = str(getattr(getattr(func, "_overloadpacket", func), "__name__", func))
                if name.endswith("_") and not name.endswith("__"):
                    name = name[:-1]
                kinks = _kinks(name, getattr(func, "_overloadname", "default"), args, kwargs)
                try:
                    hit = kinks is None or any(_reaches(v, b) for v, b in kinks)
                except Exception:  # values we cannot compare (sparse, quantized...): a kink
                    hit = True
                if hit:
                    found.add(name)
            out = func(*args, **kwargs)
            if depends:
                for t in tree_flatten(out)[0]:
                    if isinstance(t, Tensor):
                        tainted[t] = True
            return out

    batch = ev.batches[0]
    with ev.plain() as module:
        try:
            with torch.no_grad(), _Recorder():
                out = forward(module, batch, (dict(space.theta0), dict(space.buffers0)))
                ev.loss_fn(out, batch.y)
        except Exception:  # an op or a model the recorder cannot run: look at the modules
            return _module_kinks(module)
    return tuple(sorted(found))


def warn_nonsmooth(trace: Trace, stacklevel: int = 2) -> None:
    """Warn (`NonSmoothWarning`) that a projection `trace` of a loss with kinks is the curvature
    at its steps' scale, with both steps' estimates, and that Hutchinson's gives tr H."""
    (m_h, s_h), (m_4, s_4) = trace.at_steps.values()
    warnings.warn(
        f"trace('projection'): the loss has kinks ({', '.join(trace.nonsmooth_ops)}), so its "
        f"second differences measure the curvature at the step's scale, kinks "
        f"included, not autograd's tr H, and do not converge to it as h → 0 "
        f"(Böttcher & Wheeler 2022). Here {m_h:.4g} ± {s_h:.2g} at h = {trace.h:.3g} and "
        f"{m_4:.4g} ± {s_4:.2g} at h/4; trace('hutchinson') estimates tr H of the "
        "almost-everywhere Hessian",
        NonSmoothWarning,
        stacklevel=stacklevel + 1,
    )
