"""Operations on directions: Gram–Schmidt against others, rotation within a plane."""

from __future__ import annotations

import math

from .direction import Direction, combine


def orthogonalize(d: Direction, *against: Direction) -> Direction:
    """Gram–Schmidt: `d` minus its projection on the span of `against` (in parameter space).

    The result keeps the part of `d` orthogonal to every direction in `against`; it is not
    rescaled (random directions in high dimension are nearly orthogonal already, so the norm
    barely changes). Buffers move with the same coefficients.
    """
    if not against:
        raise ValueError("orthogonalize(d, *against) needs at least one direction to project out")
    basis: list[Direction] = []
    for a in against:
        for b in basis:
            a = combine([1.0, -a.dot(b) / b.dot(b)], [a, b], **a.provenance)
        if a.norm() == 0.0:
            continue
        basis.append(a)
    out = d
    for b in basis:
        out = combine([1.0, -out.dot(b) / b.dot(b)], [out, b])
    prov = d.provenance
    prov["label"] = f"{d.label} ⊥ " + ", ".join(a.label for a in against)
    prov["orthogonalized"] = True
    return Direction(dict(out), buffers=out.buffers, **prov)


def mix_coefficients(d1: Direction, d2: Direction, t: float) -> tuple[float, float]:
    """(a, b) with mix(d1, d2, t) = a·d1 + b·d2; see `mix`."""
    n1, n2 = d1.norm(), d2.norm()
    if n1 == 0.0 or n2 == 0.0:
        raise ValueError("cannot mix a zero direction; both directions need a nonzero norm")
    c = d1.dot(d2) / (n1 * n2)
    c = max(-1.0, min(1.0, c))
    phi = math.acos(c)
    r = (1.0 - t) * n1 + t * n2
    if phi < 1e-12:  # parallel: the rotation is the identity, only the length changes
        return r / n1, 0.0
    if math.pi - phi < 1e-9:
        raise ValueError(
            "d1 and d2 point in opposite directions, so no plane of rotation is defined; "
            "mix with a direction that is not antiparallel"
        )
    # u1 = d1/n1, u2 = (d2/n2 − c·u1)/sin φ; d(t) = r·(cos(tφ)·u1 + sin(tφ)·u2)
    s = math.sin(phi)
    b = r * math.sin(t * phi) / (s * n2)
    a = r * (math.cos(t * phi) - math.sin(t * phi) * c / s) / n1
    return a, b


def mix(d1: Direction, d2: Direction, t: float) -> Direction:
    """Rotate from `d1` (t = 0) to `d2` (t = 1) within their plane, keeping the scale.

    Precisely: with uᵢ = dᵢ/‖dᵢ‖ and φ the angle between d1 and d2, the result is
    ``r(t) · (cos(tφ)·u1 + sin(tφ)·u⊥)``, where u⊥ is the unit vector of span{d1, d2}
    orthogonal to u1 on d2's side, and ``r(t) = (1 − t)‖d1‖ + t‖d2‖``. So t = 0 gives d1 and
    t = 1 gives d2 exactly; the angle changes linearly in t; the norm interpolates linearly
    between the two norms ("scale kept": constant when the norms are equal, as for two
    filter-normalized directions of the same model up to O(1/√N)). d1 and d2 need not be
    orthogonal; they must not be antiparallel. t outside [0, 1] keeps rotating. Buffer deltas
    move with the same coefficients.
    """
    t = float(t)
    a, b = mix_coefficients(d1, d2, t)
    return combine(
        [a, b],
        [d1, d2],
        kind="mix",
        t=t,
        parts=[d1.provenance, d2.provenance],
        norm=d1.provenance.get("norm") if d1.provenance.get("norm") == d2.provenance.get(
            "norm") else None,
        label=f"mix({d1.label} → {d2.label}, t={t:.2f})",
    )
