"""The explorer's direction bank: the labelled directions its axes are built from.

Filter-normalized random directions (by seed), the user's own, "towards other", the
Hessian's extreme eigenvectors scaled to the bank's norm, and the shapes panel's constructed
and mined directions (under labels of their own: `unique_label`). The bank is a read-only
mapping label → `lw.Direction`; `put` adds or replaces an entry. It knows nothing of widgets: the
explorer refreshes its dropdowns after each change.

The random directions the bank draws itself, and the Hessian it takes, move the parameters
of its `ParamScope` (scope.py); `rescope` draws them again, same seeds, over another scope.
The user's own directions are kept as given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from ..curvature import Eigen, Hessian
from ..directions import Direction, combine
from ..engine.landscape import Landscape
from .panels import fmt
from .scope import ParamScope, draw, resolve


class DirectionBank(Mapping[str, Direction]):
    """Label → `lw.Direction`, in insertion order; Hessian eigenvectors last.

    Attributes:
        landscape: the `lw.Landscape` explored.
        scope: the parameters its random directions and its Hessian move (default: the
            trainable ones).
    """

    def __init__(
        self, landscape: Landscape, entries: Mapping[str, Direction],
        scope: ParamScope | None = None, seeds: Iterable[int] = (),
    ) -> None:
        self.landscape = landscape
        self.scope = scope if scope is not None else resolve(landscape.model, "trainable")
        self._hessian: dict[str, str] = {}  # bank label → rank ("λ1", "λmin", …)
        self._hessians: dict[tuple[str, ...], Hessian] = {}
        # The random directions of `seeds` first (redrawn by `rescope`), then `entries` as
        # given (checked where they are used: the view names the argument).
        drawn = self.draw(seeds)
        self._entries: dict[str, Direction] = dict(drawn)
        self._drawn: dict[str, int] = {label: int(d.provenance["seed"]) for label, d in drawn}
        for label, d in entries.items():
            self._drawn.pop(label, None)
            self._entries[label] = d

    def __getitem__(self, label: str) -> Direction:
        return self._entries[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"DirectionBank({list(self._entries)})"

    def put(self, label: str, d: Direction) -> None:
        """Add `d` as `label`, or replace the direction of that label."""
        if not isinstance(d, Direction):
            raise TypeError(f"expected an lw.Direction, got {type(d).__name__}")
        self.landscape.space.check_compatible(d)
        self._entries[label] = d
        self._drawn.pop(label, None)  # the user's now: kept as given by `rescope`

    def unique_label(self, base: str) -> str:
        """`base`, or "`base` (2)", "`base` (3)", … : the first not in the bank (a label for
        a direction the explorer adds, e.g. a mined one, that takes no user's entry)."""
        label, k = base, 1
        while label in self._entries:
            k += 1
            label = f"{base} ({k})"
        return label

    # ----------------------------------------------------------------- random directions
    def draw(self, seeds: Iterable[int]) -> list[tuple[str, Direction]]:
        """Random directions of `seeds` over the bank's scope, labelled "random #<seed>" (not
        put in the bank: see `put_drawn`)."""
        model = self.landscape.model
        return [(f"random #{s}", draw(model, s, self.scope)) for s in seeds]

    def put_drawn(self, label: str, d: Direction) -> None:
        """Put a direction of `draw` in the bank: `rescope` draws it again."""
        self.put(label, d)
        self._drawn[label] = int(d.provenance["seed"])

    def random_pair(self) -> list[tuple[str, Direction]]:
        """Two random directions of the next unused seeds (see `draw`)."""
        seeds = [
            int(d.provenance["seed"]) for d in self._entries.values()
            if d.provenance.get("kind") == "random"
        ]
        nxt = max(seeds, default=-1) + 1
        return self.draw((nxt, nxt + 1))

    def rescope(self, scope: ParamScope) -> None:
        """Draw the bank's random directions again, same seeds, over `scope` (which becomes
        the bank's). Everything is drawn before anything changes: an error leaves the bank
        as it was."""
        model = self.landscape.model
        fresh = {label: draw(model, seed, scope) for label, seed in self._drawn.items()}
        self.scope = scope
        self._entries.update(fresh)

    def hessian(self) -> Hessian:
        """H over the bank's scope: `land.hessian` (whose results are cached) when it is
        taken over the same tensors, else `land.hessian_over(names)`, kept per scope."""
        names = list(self.scope.names)
        land = self.landscape
        try:
            default: Hessian | None = land.hessian
        except ValueError:  # no parameter requires grad: the engine refuses a default H,
            default = None  # while "trainable" directions then move every tensor
        if default is not None and default.names == names:
            return default
        key = tuple(names)
        if key not in self._hessians:
            self._hessians[key] = land.hessian_over(names)
        return self._hessians[key]

    # ----------------------------------------------------------------- Hessian
    @property
    def hessian_labels(self) -> list[str]:
        """Labels of the Hessian eigenvectors in the bank, by descending eigenvalue."""
        return list(self._hessian)

    def hessian_entries(
        self, eig: Eigen, k: int, scope: ParamScope | None = None
    ) -> dict[str, Direction]:
        """Bank label → eigenvector scaled to the bank's norm (see `reference_norm`); its
        provenance adds "rank", "scale", "scaled_to" and the `scope` H was taken over (by
        default the bank's), which its label ends with when not every tensor moves."""
        scope = scope if scope is not None else self.scope
        scale, ref = self.reference_norm()
        suffix = "(unit)" if ref == "unit" else "(×‖θ‖)"
        n = len(eig.values)
        top = min(k, n) if eig.which in ("top", "both") else 0
        out: dict[str, Direction] = {}
        for i, (lam, v) in enumerate(zip(eig.values, eig.vectors, strict=True)):
            j = n - 1 - i
            rank = f"λ{i + 1}" if i < top else ("λmin" if j == 0 else f"λmin+{j}")
            prov = v.provenance
            prov.update(
                rank=rank, scale=scale, scaled_to=ref, **scope.provenance(),
                label=scope.label(f"hessian {rank}={fmt(float(lam))} {suffix}"),
            )
            out[f"{rank} = {fmt(float(lam))}"] = combine([scale], [v], **prov)
        return out

    def replace_hessian(self, entries: Mapping[str, Direction]) -> dict[str, str]:
        """Put `hessian_entries` in place of the eigenvectors in the bank. Returns old label →
        the new label of the same rank ("" when that rank is gone)."""
        ranks = {label: str(d.provenance["rank"]) for label, d in entries.items()}
        by_rank = {r: label for label, r in ranks.items()}
        remap = {label: by_rank.get(rank, "") for label, rank in self._hessian.items()}
        for label in self._hessian:
            self._entries.pop(label, None)
        self._entries.update(entries)
        self._hessian = ranks
        return remap

    def reference_norm(self) -> tuple[float, str]:
        """The scale of the eigenvectors in the bank and what it is: the norm of the first
        random direction, else ‖θ‖ over the parameters ("θ"), else 1 ("unit": θ = 0)."""
        for label, d in self._entries.items():
            if d.provenance.get("kind") == "random" and label not in self._hessian:
                norm = d.norm()
                if norm > 0:
                    return norm, label
        theta = self.landscape.space.theta0
        norm = math.sqrt(sum(float(t.double().pow(2).sum()) for t in theta.values()))
        return (norm, "θ") if norm > 0 else (1.0, "unit")
