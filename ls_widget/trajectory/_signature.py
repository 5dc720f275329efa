"""What a snapshot holds, read from a model: parameter and floating-buffer names, shapes and
dtypes; checking a state dict against it (errors name the key), and content digests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.params import TensorSpec, floating_params


def stored_dtype(dtype: torch.dtype) -> torch.dtype:
    """Snapshots keep float64 as is and every other floating dtype as float32 (an exact
    upcast of float16/bfloat16, so loading back into the model gives the same bits)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@dataclass(frozen=True)
class Signature:
    """The tensors a snapshot of a model holds.

    Attributes:
        params: the model's parameters, in ``named_parameters()`` order.
        buffers: its floating buffers that a state dict holds (BatchNorm running statistics).
        others: the remaining state-dict keys (integer buffers such as
            ``num_batches_tracked``, aliases of tied weights): accepted, never stored.
    """

    params: tuple[TensorSpec, ...]
    buffers: tuple[TensorSpec, ...]
    others: frozenset[str]

    @classmethod
    def of(cls, model: nn.Module, what: str = "the model") -> Signature:
        """The signature of `model` (its parameters must be floating point and finite)."""
        params = floating_params(model, what)
        keys = set(model.state_dict())
        names = {n for n, _ in params}
        buffers = [(n, b) for n, b in model.named_buffers()
                   if b.is_floating_point() and n in keys and n not in names]
        held = names | {n for n, _ in buffers}
        return cls(
            params=tuple(TensorSpec(n, p.shape, p.dtype, p.device) for n, p in params),
            buffers=tuple(TensorSpec(n, b.shape, b.dtype, b.device) for n, b in buffers),
            others=frozenset(keys - held),
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names."""
        return tuple(s.name for s in self.params)

    @property
    def specs(self) -> tuple[TensorSpec, ...]:
        """Parameters, then floating buffers."""
        return self.params + self.buffers

    def describe(self) -> list[list[Any]]:
        """``[name, shape, stored dtype]`` per tensor, as a folder's index stores it."""
        return [[s.name, list(s.shape), str(stored_dtype(s.dtype)).replace("torch.", "")]
                for s in self.specs]

    def check_described(self, stored: Sequence[Any], where: str) -> None:
        """Raise unless `stored` (from `describe`, read back from JSON) matches this model."""
        mine = {row[0]: row for row in self.describe()}
        theirs = {row[0]: row for row in stored}
        for name, row in mine.items():
            if name not in theirs:
                raise ValueError(
                    f"{where} was recorded from another architecture: it has no {name!r}; "
                    "record this model into a new folder (lw.Recorder(model, path=...))"
                )
            if list(theirs[name]) != row:
                shape, dtype = theirs[name][1:]
                raise ValueError(
                    f"{where} was recorded from another architecture: {name!r} has shape "
                    f"{tuple(shape)} ({dtype}) there and {tuple(row[1])} ({row[2]}) in this "
                    "model; record this model into a new folder"
                )
        extra = [n for n in theirs if n not in mine]
        if extra:
            raise ValueError(
                f"{where} was recorded from another architecture: it has {extra[0]!r}, which "
                "this model does not have; record this model into a new folder"
            )

    def pick(
        self,
        state: Mapping[str, Any],
        what: str,
        *,
        params_only: bool = False,
        copy: bool = True,
    ) -> dict[str, Tensor]:
        """The snapshot's tensors from a state dict: on the CPU, in the stored dtypes.

        Args:
            state: a state dict of a model of this architecture.
            what: how errors name it (e.g. ``"checkpoint 3 ('run/ep3.pt')"``).
            params_only: take the parameters only (buffers are not required).
            copy: copy even when no conversion is needed (never alias the caller's tensors).

        Raises:
            ValueError: a missing or unexpected key, or a shape that differs (named).
            TypeError: not a mapping, or a value that is not a floating tensor (named).
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{what} is a {type(state).__name__}, not a state dict; pass "
                "model.state_dict(), a dict with a 'model' or 'state_dict' key, or a file "
                "written by torch.save of one"
            )
        wanted = self.params if params_only else self.specs
        missing = [s.name for s in wanted if s.name not in state]
        if missing:
            raise ValueError(
                f"{what} has no {missing[0]!r} ({len(missing)} of the model's tensors are "
                f"missing: {missing[:3]}); it is not a state dict of this model's "
                f"architecture{_prefix_hint(state, missing[0])}"
            )
        if not params_only:
            known = {s.name for s in self.specs} | self.others
            unexpected = [k for k in state if k not in known]
            if unexpected:
                raise ValueError(
                    f"{what} has {unexpected[0]!r}, which the model does not have "
                    f"({len(unexpected)} unexpected keys: {unexpected[:3]}); it comes from "
                    "another architecture: pass checkpoints of this model"
                )
        out: dict[str, Tensor] = {}
        for s in wanted:
            t = state[s.name]
            if not isinstance(t, Tensor) or not t.is_floating_point():
                kind = f"a {t.dtype} tensor" if isinstance(t, Tensor) else type(t).__name__
                raise TypeError(
                    f"{what}: {s.name!r} is {kind}, where the model has a floating tensor; "
                    "pass a state dict of this model"
                )
            if tuple(t.shape) != tuple(s.shape):
                raise ValueError(
                    f"{what}: {s.name!r} has shape {tuple(t.shape)} where the model has "
                    f"{tuple(s.shape)}; it comes from another architecture"
                )
            out[s.name] = t.detach().to("cpu", stored_dtype(s.dtype), copy=copy).contiguous()
        return out


def _prefix_hint(state: Mapping[str, Any], missing: str) -> str:
    if f"module.{missing}" in state:
        return (" (it was saved from nn.DataParallel or DistributedDataParallel: strip the "
                "'module.' prefix, {k.removeprefix('module.'): v for k, v in sd.items()})")
    return ""


def digest(state: Mapping[str, Tensor], params: Sequence[TensorSpec]) -> str:
    """A content digest of a snapshot's parameters (stored dtypes, in order)."""
    h = hashlib.blake2b(digest_size=16)
    for s in params:
        t = state[s.name].detach().cpu().contiguous()
        h.update(f"{s.name}:{t.dtype!s}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def fingerprint(params: Sequence[TensorSpec], digests: Sequence[str]) -> str:
    """A trajectory's identity: its parameter layout and its snapshots' digests, in order."""
    h = hashlib.blake2b(digest_size=16)
    for s in params:
        h.update(f"{s.name}:{tuple(s.shape)};".encode())
    for d in digests:
        h.update(d.encode())
    return h.hexdigest()
