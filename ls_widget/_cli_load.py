"""What the command line loads: the user's functions, the model and its weights, the data,
the loss and metrics, the device. Every failure becomes a `CliError` naming the value."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import metrics as builtin_metrics
from ._cli_errors import one_line, runtime, usage

SPEC_HELP = "module:function (e.g. mypkg.models:build) or file.py:function"


def resolve(spec: str, option: str) -> Callable[..., Any]:
    """The function that `spec` names: ``module:function`` or ``path/to/file.py:function``
    (an attribute path such as ``module:Class.method`` too). Modules import from the current
    directory first, as ``python -m`` does."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise usage(f"{option} {spec!r}: expected {SPEC_HELP}")
    module = _import(where, option, spec)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise usage(f"{option} {spec!r}: {where} has no {name!r}{_suggest(obj, part)}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise usage(
            f"{option} {spec!r}: {name} is a {type(obj).__name__}, not a function; name a "
            "function"
        )
    return obj


def _import(where: str, option: str, spec: str) -> Any:
    if where.endswith(".py") or os.sep in where or "/" in where:
        return _import_file(Path(where), option, spec)
    cwd = os.getcwd()
    if cwd not in sys.path:  # a console script's sys.path lacks it; `python -m` has it
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and (where == exc.name or where.startswith(exc.name + ".")):
            raise usage(
                f"{option} {spec!r}: no module named {exc.name!r} (from {cwd} or the installed "
                "packages); check the name, or pass a file: path/to/module.py:function"
            ) from exc
        raise runtime(f"{option} {spec!r}: importing {where} failed: {one_line(exc)}") from exc
    except Exception as exc:
        raise runtime(f"{option} {spec!r}: importing {where} failed: {one_line(exc)}") from exc


def _import_file(path: Path, option: str, spec: str) -> Any:
    if not path.is_file():
        raise usage(f"{option} {spec!r}: no file {str(path)!r} (relative to {os.getcwd()})")
    full = path.resolve()
    # A name of its own per file, so that two files called models.py do not collide.
    name = f"_ls_widget_cli_{full.stem}_{hashlib.sha1(str(full).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    folder = str(full.parent)
    if folder not in sys.path:  # the file's own imports of its neighbours
        sys.path.insert(0, folder)
    loader_spec = importlib.util.spec_from_file_location(name, full)
    if loader_spec is None or loader_spec.loader is None:
        raise usage(f"{option} {spec!r}: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise runtime(f"{option} {spec!r}: running {str(path)!r} failed: {one_line(exc)}") from exc
    return module


def _suggest(obj: Any, name: str) -> str:
    """A hint from `obj`'s public callables: "; did you mean 'build'?" or "; it has: ..."."""
    have = sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n)))
    close = difflib.get_close_matches(name, have, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; it has: {', '.join(have[:12])}" if have else ""


def call(fn: Callable[..., Any], option: str, spec: str) -> Any:
    """`fn()`, its failure reported as the option's."""
    try:
        return fn()
    except Exception as exc:
        raise runtime(f"{option} {spec!r}: {_name(fn)}() raised {one_line(exc)}") from exc


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def build_model(spec: str, weights: str | None, device: torch.device) -> nn.Module:
    """The model `spec` returns, with the state dict of `weights` loaded, on `device`."""
    model = call(resolve(spec, "--model"), "--model", spec)
    if not isinstance(model, nn.Module):
        raise runtime(
            f"--model {spec!r} returned a {type(model).__name__}, not a torch.nn.Module; "
            "return the model itself"
        )
    if weights is not None:
        load_weights(model, weights)
    try:
        return model.to(device)
    except Exception as exc:
        raise runtime(f"--device {device}: moving the model there failed: {one_line(exc)}") from exc


def load_weights(model: nn.Module, path: str) -> None:
    """Load a ``torch.save``d state dict (or a dict holding one under ``"state_dict"`` or
    ``"model"``) into `model`, naming the first missing, unexpected or misshapen key."""
    if not Path(path).is_file():
        raise usage(f"--weights {path!r}: no such file (relative to {os.getcwd()})")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise runtime(
            f"--weights {path!r} holds more than tensors ({one_line(exc)[:160]}); save the "
            "state dict: torch.save(model.state_dict(), path)"
        ) from exc
    except Exception as exc:
        raise runtime(f"--weights {path!r}: not a torch.save file ({one_line(exc)})") from exc
    state = saved
    if isinstance(saved, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(saved.get(key), Mapping):
                state = saved[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise runtime(
            f"--weights {path!r} holds a {type(saved).__name__} that is not a state dict (or a "
            "dict with one under 'state_dict' or 'model'); save model.state_dict()"
        )
    _check_keys(model, state, path)
    model.load_state_dict(dict(state), strict=True)


def _check_keys(model: nn.Module, state: Mapping[str, Tensor], path: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    fix = "save the state dict of the model that --model builds"
    if unexpected and all(k.startswith("module.") for k in unexpected):
        fix = ("the keys start with 'module.' (saved from DataParallel/DDP): save "
               "model.module.state_dict()")
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise runtime(
            f"--weights {path!r} lacks the key {missing[0]!r}{more} of the model; {fix}"
        )
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise runtime(
            f"--weights {path!r} has the unexpected key {unexpected[0]!r}{more}; {fix}"
        )
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise runtime(
                f"--weights {path!r}: {k!r} has shape {tuple(state[k].shape)}, the model's is "
                f"{tuple(v.shape)}; {fix}"
            )


def loss_function(spec: str | None) -> Callable[..., Any] | None:
    """``None`` (the engine's default), a ``torch.nn.functional`` name (``mse_loss``), or a
    ``module:function``."""
    if spec is None:
        return None
    if ":" in spec:
        return resolve(spec, "--loss")
    fn = getattr(F, spec, None)
    if not spec.endswith(("_loss", "cross_entropy")) or not callable(fn):
        names = [n for n in dir(F) if n.endswith(("_loss", "cross_entropy"))]
        close = difflib.get_close_matches(spec, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise usage(
            f"--loss {spec!r}: not a loss of torch.nn.functional; {hint}pass a name such as "
            f"cross_entropy or mse_loss, or {SPEC_HELP}"
        )
    return fn


def metric_functions(specs: list[str]) -> dict[str, Any]:
    """``--metric`` values: ``accuracy``/``error`` (``lw.metrics``), ``module:function``, or
    ``name=module:function``; by name."""
    out: dict[str, Any] = {}
    for spec in specs:
        name, eq, target = spec.partition("=")
        if not eq:
            name, target = "", spec
        if ":" in target:
            fn = resolve(target, "--metric")
            name = name or target.rpartition(":")[2].rpartition(".")[2]
        elif target in ("accuracy", "error"):
            fn, name = getattr(builtin_metrics, target), name or target
        else:
            raise usage(
                f"--metric {spec!r}: use accuracy, error, {SPEC_HELP}, or name={SPEC_HELP}"
            )
        if name == "loss" or name in out:
            raise usage(f"--metric {spec!r}: the name {name!r} is taken; name it: name=...")
        out[name] = fn
    return out


def parse_device(text: str) -> torch.device:
    """`text` as a device this machine has: ``auto`` (CUDA when present, else the CPU),
    ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise usage(f"--device {text!r}: not a device; use cpu, cuda, cuda:N or auto") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise usage(f"--device {text!r}: this machine has no CUDA device; use --device cpu")
        if device.index is not None and device.index >= count:
            raise usage(
                f"--device {text!r}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise usage(f"--device {text!r}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise usage(f"--device {text!r}: unsupported device type; use cpu, cuda or cuda:N")
    return device


def state_digest(model: nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(_bytes(t))
    return h.hexdigest()


def tensors_digest(tensors: Mapping[str, Tensor]) -> str:
    """SHA-256 of named tensors, in their order."""
    h = hashlib.sha256()
    for name, t in tensors.items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(_bytes(t))
    return h.hexdigest()


def data_digest(data: Any) -> str | None:
    """SHA-256 of data made of tensors and arrays (in tuples, lists and dicts), or None for
    anything else (a Dataset, a DataLoader: reading it would cost a pass over the data)."""
    h = hashlib.sha256()

    def feed(obj: Any, depth: int) -> bool:
        if isinstance(obj, Tensor):
            h.update(f"{obj.dtype}|{tuple(obj.shape)}|".encode())
            h.update(_bytes(obj))
            return True
        if isinstance(obj, np.ndarray) and obj.dtype != object:
            h.update(f"{obj.dtype}|{obj.shape}|".encode())
            h.update(np.ascontiguousarray(obj).reshape(-1).view(np.uint8).data)
            return True
        if depth < 3 and isinstance(obj, Mapping):
            return all(feed(str(k), depth + 1) and feed(v, depth + 1) for k, v in obj.items())
        if depth < 3 and isinstance(obj, (tuple, list)):
            return all(feed(v, depth + 1) for v in obj)
        if isinstance(obj, str):
            h.update(obj.encode())
            return True
        return False

    return h.hexdigest() if feed(data, 0) else None


def _bytes(t: Tensor) -> memoryview:
    """The tensor's bytes, read in place (no copy of a contiguous CPU tensor)."""
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    if flat.dtype == torch.bfloat16:  # numpy has no bfloat16: hash its bit pattern
        flat = flat.view(torch.int16)
    return flat.numpy().view(np.uint8).data

