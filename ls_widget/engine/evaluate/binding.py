"""One binding's state: its directions laid out in flat vectors, and how its points run.

A `Binding` owns the flat vectors of the tensors its directions move (parameters and floating
buffers), the fixed tensors, and the plan's switches (memory layout, micro-batches,
precomputed first layer, speed-ups, loop or vmap) that plan.py sets. `attach` points the
shared private copy at its vectors; run.py runs points on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from ...directions.direction import Direction
from ..batch import Batch, Batches
from ..params import ParamSpace
from . import fold_bn, microbatch, speedups
from .first_layer import Injection, precompute
from .flat import Flat, build_flats, pad_rows
from .private_model import PrivateModel
from .scoring import Scorer


class Binding:
    """The tensors and the plan of one binding of an Evaluator to k directions.

    Args:
        private: the Evaluator's private copy (shared by its bindings, one at a time).
        scorer: its loss and metrics.
        batches: its evaluation data.
        memory_budget: bytes allowed for the precomputed first layer.
        directions: the k directions.

    Attributes:
        moving: parameters some direction moves (the others stay at θ₀).
        buffer_names: floating buffers some direction moves.
        flats, buf_flats: the moving parameters and buffers, per dtype.
        laid_out: `batches` in this binding's memory format, split into micro-batches of
            `micro` samples where they are larger (microbatch.LaidOut, made in every pass);
            what the loop runs on.
        first_laid_out: the first batch in this memory format, whole.
        splits: `laid_out` splits some batch into micro-batches.
        forwards: modules whose forward the loop replaces while `fast` (speedups.py):
            narrow Linears computed padded to 16 rows, BatchNorms folded into their layer.
        folds: the folded (layer, BatchNorm) pairs (fold_bn.py), refreshed at every move.
        channels_last, micro, injection, fast, folding, mode, vmap_chunk: the plan (see
            plan.py).
    """

    def __init__(
        self,
        private: PrivateModel,
        scorer: Scorer,
        batches: Batches,
        memory_budget: float,
        directions: list[Direction],
    ) -> None:
        self.private = private
        self.scorer = scorer
        self.space: ParamSpace = private.space
        self.batches = batches
        self.n_samples = sum(b.n for b in batches)
        self.memory_budget = memory_budget
        self.directions = directions
        self.k = len(directions)
        space = self.space
        self.moving = [
            n for n in space.names if any(bool(d[n].any()) for d in directions)
        ]
        self.buffer_names = [
            n for n in space.floating_buffer_names
            if any(n in d.buffers and bool(d.buffers[n].any()) for d in directions)
        ]
        self.channels_last = False
        self.micro: int | None = None
        self.flats: list[Flat] = []
        self.buf_flats: list[Flat] = []
        self.static: dict[str, Tensor] = {}
        self.forwards: dict[nn.Module, speedups.Step | None] = {}
        self.folds: list[fold_bn.Fold] = []
        self.folding = True  # BatchNorms folded while `fast`, unless the check says otherwise
        self.laid_out: Iterable[Batch] = ()  # set by `relayout`, as are the two below
        self.first_laid_out: Batch = batches[0]
        self.splits = False
        self.injection: Injection | None = None
        self.mode = "loop"
        self.vmap_chunk = 1
        self.fast = False  # the loop's speed-ups (speedups.py), on once verified
        self.relayout(channels_last=False)

    @property
    def injected(self) -> bool:
        """The precomputed first layer stands in for the real one."""
        return self.injection is not None and self.injection.active

    @property
    def moves(self) -> bool:
        """Some tensor moves (else every point is θ₀)."""
        return bool(self.flats or self.buf_flats)

    @property
    def padded(self) -> dict[nn.Module, speedups.Step | None]:
        """`forwards`, under the name run.py reads it by."""
        return self.forwards

    def relayout(self, channels_last: bool, micro: int | None = None) -> None:
        """(Re)build the flat vectors in this memory format and the batches in micro-batches
        of `micro` samples (None: as they are), and attach the private copy."""
        space = self.space
        self.channels_last = channels_last
        self.micro = micro
        dirs = [dict(d) for d in self.directions]
        pad = {n: speedups.PAD_TO for _, *names in self.private.narrow for n in names if n}
        self.flats = build_flats(space.theta0, dirs, self.moving, channels_last, pad)
        bdirs = [
            {n: d.buffers.get(n, torch.zeros_like(space.buffers0[n])) for n in self.buffer_names}
            for d in self.directions
        ]
        self.buf_flats = build_flats(space.buffers0, bdirs, self.buffer_names, False)
        self.static = {}
        for n in space.names:
            if n not in self.moving:
                base = space.theta0[n]
                if channels_last and base.dim() == 4:
                    base = base.contiguous(memory_format=torch.channels_last)
                self.static[n] = base

        def padded(n: str) -> Tensor:
            for f in self.flats:
                if n in f.slots:
                    return f.padded(n)
            return pad_rows(space.theta0[n], pad[n])

        self.folds = []  # installed again below, into the new `forwards`
        self.forwards = {
            mod: speedups.padded_linear(padded(wn), padded(bn) if bn else None, mod.out_features)
            for mod, wn, bn in self.private.narrow
        }
        laid = microbatch.LaidOut(self.batches, channels_last, micro)
        self.laid_out, self.first_laid_out, self.splits = laid, laid.first, laid.splits
        self.injection = None  # precomputed for the batches as they were laid out
        self.attach()
        self._install_folds()

    def set_folding(self, on: bool) -> None:
        """Fold BatchNorms into their layers in the loop while `fast` (or stop)."""
        self.folding = on
        self._install_folds()

    def _install_folds(self) -> None:
        """`folds` for the current plan, in `forwards`; a precomputed first layer keeps its
        BatchNorm (its stand-in returns what the real layer would)."""
        keep = self.injection.module if self.injection is not None else None
        pairs = self.private.folds if self.folding else []
        self.folds = fold_bn.install(pairs, self.forwards, self.folds, keep)

    def attach(self) -> None:
        """Point the shared private copy at this binding's work vectors (cheap: no copies)."""
        private, space = self.private, self.space
        private.swap_first_layer(None)  # the real first layer back, to receive θ
        for flat in self.flats:
            for n, view in flat.views.items():
                private.set_param(n, view)
        for flat in self.buf_flats:
            for n, view in flat.views.items():
                private.set_buffer(n, view)
        for n in space.names:
            if n not in self.moving:
                private.set_param(n, self.static[n])
        for n in space.buffers0:
            if n not in self.buffer_names:
                private.set_buffer(n, space.buffers0[n])
        if self.injected:
            self.set_injected(True)
        private.active = self

    def prepare_injection(self) -> bool:
        """Precompute the first layer's output at θ₀ and along each direction, if it fits
        the budget (never for streamed data: its inputs alone would not)."""
        first = self.private.first
        if first is None or not microbatch.kept(self.batches):
            return False
        injection = precompute(
            first, self.space.theta0, self.directions, self.flats + self.buf_flats,
            self.laid_out, self.private.module, self.memory_budget, self.n_samples,
            layout=(self.channels_last, self.micro), given=self.batches[0],
        )
        if injection is None:
            return False
        self.injection = injection
        self._install_folds()
        return True

    def drop_injection(self) -> None:
        """Forget the precomputed first layer (the real one runs, and may be folded)."""
        self.set_injected(False)
        self.injection = None
        self._install_folds()

    def set_injected(self, on: bool) -> None:
        """Swap the first layer of the private copy for its precomputed stand-in (or back)."""
        if self.injection is None:
            return
        self.private.swap_first_layer(self.injection.stand_in if on else None)
        self.injection.active = on

    def move(self, c: Sequence[float], new_row: bool = True) -> None:
        """Set the work vectors to the point `c` (see `Flat.move`), and fold there."""
        for f in self.flats:
            f.move(c, new_row)
        for f in self.buf_flats:
            f.move(c, new_row)
        if self.fast:
            for fold in self.folds:
                fold.refresh()

