"""A Landscape and its directions as bytes for Dask workers, and back on a worker.

Why bytes: `distributed`'s own serializer takes an ``nn.Module`` apart through its
``__dict__`` and turns the hook registries (``OrderedDict``) into plain dicts, so a model with
a registered hook breaks on the worker as soon as anything registers another ("cannot create
weak reference to 'dict' object"; the engine's probes register hooks). We pickle instead:
`torch.save` with cloudpickle's pickler, so tensors go as storages (and land on the worker's
device through ``map_location``) and classes or functions defined in a notebook travel by
value.

The model travels at the Landscape's θ₀ snapshot, not at its live values (which the user may
have changed since the Landscape was built): every parameter and buffer is pickled as the
snapshot's tensor in its place.
"""

from __future__ import annotations

import io
import pickle
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .engine.landscape import Landscape

PROTOCOL = 4


def _same(tensor: Tensor) -> Tensor:
    """Unpickles a buffer: the snapshot's tensor itself."""
    return tensor


def _snapshot_pickler(replace: dict[int, tuple[Any, ...]]) -> type:
    """A cloudpickle Pickler that writes the objects of `replace` (by id) as the given
    reductions."""
    import cloudpickle  # type: ignore[import-untyped]

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            hit = replace.get(id(obj))
            return hit if hit is not None else super().reducer_override(obj)

    return Pickler


def to_bytes(obj: Any, replace: dict[int, tuple[Any, ...]] | None = None) -> bytes:
    """`obj` pickled by `torch.save` with cloudpickle; objects in `replace` (by id) are
    written as their reductions there."""
    module = types.SimpleNamespace(__name__="ls_widget_cloudpickle",
                                   Pickler=_snapshot_pickler(replace or {}))
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=module, pickle_protocol=PROTOCOL)
    return buf.getvalue()


def from_bytes(data: bytes, device: torch.device) -> Any:
    """What `to_bytes` wrote; tensors saved on a GPU land on `device` if it is one (else on
    the CPU), tensors saved on the CPU stay there."""

    def place(storage: Any, location: str) -> Any:
        if location.startswith("cuda") and device.type == "cuda":
            return storage.cuda(device.index or 0)
        return storage

    return torch.load(io.BytesIO(data), map_location=place, weights_only=False,
                      pickle_module=pickle)


def landscape_bytes(land: Landscape, data: Callable[[], Any] | None) -> bytes:
    """What a worker needs to build `land` again: its model at θ₀, its settings and its data
    (or the function `data` that builds the data on the worker)."""
    space = land.space
    replace: dict[int, tuple[Any, ...]] = {}
    for name, p in land.model.named_parameters():
        if type(p) is nn.Parameter and name in space.theta0:
            replace[id(p)] = (nn.Parameter, (space.theta0[name], p.requires_grad))
    for name, b in land.model.named_buffers():
        if type(b) is Tensor and name in space.buffers0:
            replace[id(b)] = (_same, (space.buffers0[name],))
    settings = dict(land._settings)
    if data is not None:
        settings["data"] = None
    recipe = {"model": land.model, "settings": settings, "data_fn": data}
    return to_bytes(recipe, replace)


def build_landscape(data: bytes, device: torch.device) -> Landscape:
    """The Landscape that `landscape_bytes` describes, on `device`; its data built by the
    data function if one was given (called here, on the worker)."""
    recipe = from_bytes(data, device)
    model: nn.Module = recipe["model"]
    if next(model.parameters()).device != device:
        model.to(device)  # our own unpickled copy (a GPU worker for a CPU client's model)
    settings = dict(recipe["settings"])
    if recipe["data_fn"] is not None:
        settings["data"] = recipe["data_fn"]()
    return Landscape(model, settings.pop("data"), **settings)
