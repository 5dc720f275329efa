"""The explorer's direction bank: the labelled directions its axes are built from.

Filter-normalized random directions (by seed), the user's own, "towards other", and the
Hessian's extreme eigenvectors scaled to the bank's norm. The bank is a read-only mapping
label → `lw.Direction`; `put` adds or replaces an entry. It knows nothing of widgets: the
explorer refreshes its dropdowns after each change.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from ..curvature import Eigen
from ..directions import Direction, combine, random
from ..engine.landscape import Landscape
from .panels import fmt


class DirectionBank(Mapping[str, Direction]):
    """Label → `lw.Direction`, in insertion order; Hessian eigenvectors last."""

    def __init__(self, landscape: Landscape, entries: Mapping[str, Direction]) -> None:
        self.landscape = landscape
        self._entries: dict[str, Direction] = dict(entries)
        self._hessian: dict[str, str] = {}  # bank label → rank ("λ1", "λmin", …)

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

    def random_pair(self) -> list[tuple[str, Direction]]:
        """Two random directions of the next unused seeds, labelled "random #<seed>"."""
        seeds = [
            int(d.provenance["seed"]) for d in self._entries.values()
            if d.provenance.get("kind") == "random"
        ]
        nxt = max(seeds, default=-1) + 1
        model = self.landscape.model
        return [(f"random #{s}", random(model, seed=s)) for s in (nxt, nxt + 1)]

    # ----------------------------------------------------------------- Hessian
    @property
    def hessian_labels(self) -> list[str]:
        """Labels of the Hessian eigenvectors in the bank, by descending eigenvalue."""
        return list(self._hessian)

    def hessian_entries(self, eig: Eigen, k: int) -> dict[str, Direction]:
        """Bank label → eigenvector scaled to the bank's norm (see `reference_norm`); its
        provenance adds "rank", "scale" and "scaled_to"."""
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
                rank=rank, scale=scale, scaled_to=ref,
                label=f"hessian {rank}={fmt(float(lam))} {suffix}",
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
