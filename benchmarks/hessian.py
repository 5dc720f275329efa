"""Extreme Hessian eigenvalues: our Lanczos vs ARPACK vs power iteration (PyHessian).

Run: ``.venv/bin/python benchmarks/hessian.py [--repeats 3] [--cap 500]`` (about 3 minutes
on 2 quiet cores). The power-iteration cap is 500 HVPs per eigenvalue (it was 1000) to keep
the run under ~5 minutes with ARPACK added: on both models power iteration's λmin does not
reach 1e-3 within 1000 HVPs either, so the cap only bounds the "≥" in its oracle row.

For the digits MLP (64-128-128-10, the Hessian over all 1,797 digits) and the small CNN with
BatchNorm (trained on all digits, its Hessian over the first 256: a CNN HVP costs ~10× an MLP
one per sample), float32, eval mode, it prints the number of Hessian-vector products (HVPs)
and the seconds each of three methods needs to get λmax and λmin to 1e-3 relative accuracy,
measured side by side in this one run, with the same random starts (seeds 0, 1, ...):

- ours: ``HessianOperator.extremes(1, "both", tol, method="lanczos")``, one Lanczos run with
  full reorthogonalization that gets both ends of the spectrum from the same Krylov space and
  stops when both Ritz pairs' residuals are below tol × the spectral radius;
- ARPACK: ``extremes(1, "both", tol, method="arpack")``, SciPy's ``eigsh`` (implicitly
  restarted Lanczos) for λmax with ``which="LA"``, then again on H − λmax·I with
  ``which="LM"`` for λmin (the previous engine path); its tol is ARPACK's own (relative
  accuracy of the Ritz values), so the two tolerances are not comparable, hence a ladder each;
- power iteration as PyHessian's ``eigenvalues()`` does it: normalized power steps with the
  Rayleigh quotient, stopping when it changes by < 1e-3 relative (PyHessian's ``tol``); λmax on
  H, then λmin on the shifted operator H − λmax·I from a fresh random vector (deflated against
  v_max each step, as PyHessian deflates against found eigenvectors). Also reported: how many
  HVPs power iteration needs to actually reach the accuracy ("oracle" stopping, judged against
  the reference), capped at --cap HVPs per eigenvalue.

For both Lanczos variants, the tolerance is the loosest of the ladder 1e-2, 1e-3, ... at which
every random start reaches the accuracy on both λmax and λmin. Our Lanczos and power iteration
start λmax from the same vector (seed s, drawn as our Lanczos draws it); ARPACK's v0 is the
engine's own draw for the same seed (NumPy's ``default_rng(s)``). At the tolerance our ladder
chose, it also prints the HVPs our Lanczos needs for the top 5 eigenvalues alone
(``which="top", k=5``) and for λmin alone (``which="bottom", k=1``), next to METHODS.md's
"top-5 in 21 HVPs; λmin in 51" (digits MLP).

All methods call the same ``HessianOperator.hvp``; HVPs are counted per call of it (no residual
checks). The reference values come from a tight-tolerance run of our Lanczos (tol = 1e-10, from
a start, seed 1234, that is none of the benchmarked ones); ARPACK's errors against it are an
independent check. Relative accuracy of λmin is judged against max(|λmin_ref|,
1e-3·|λmax_ref|), because λmin of a trained network is small (near 0).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a small shared machine, spinning threads
# that lose their core make each HVP 3 to 20× slower, at random. Set before torch loads;
# an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence

sys.path.insert(0, str(Path(__file__).parent))
from common import cnn, digits, median, mlp, timed, train

import ls_widget as lw

ACC = 1e-3  # the relative accuracy to reach
TOL_LADDER = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
REF_TOL = 1e-10
REF_SEED = 1234  # the reference's start: none of the benchmarked starts 0, 1, ...
METHODS_MD = "top-5 in 21 HVPs; λmin in 51"  # METHODS.md, digits MLP (shifted ARPACK era)
LABELS = {"lanczos": "ours: Lanczos (full reorth)", "arpack": "ARPACK eigsh (shifted λmin)"}


def rel_errors(lmax: float, lmin: float, ref: tuple[float, float]) -> tuple[float, float]:
    rmax, rmin = ref
    return abs(lmax - rmax) / abs(rmax), abs(lmin - rmin) / max(abs(rmin), 1e-3 * abs(rmax))


def extremes(land: lw.Landscape, k: int, which: str, tol: float, seed: int,
             method: str) -> dict:
    op = land.hessian.operator()
    try:
        t, (w, _) = timed(lambda: op.extremes(k, which, tol=tol, seed=seed, method=method))
    except ArpackNoConvergence as e:  # ARPACK gave up: count it as a failure at this tol
        w = np.full(max(1, len(e.eigenvalues)), np.nan)
        t = math.nan
    return {"hvps": op.hvps, "s": t, "w": np.asarray(w, dtype=np.float64),
            "lmax": float(w[0]), "lmin": float(w[-1])}


def start_vector(n: int, seed: int) -> torch.Tensor:
    """The start vector our Lanczos draws for `seed` (float64 normals from a CPU generator)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(n, generator=g, dtype=torch.float64).float()
    return v / v.norm()


def power(
    hvp, v: torch.Tensor, *, shift: float = 0.0, deflate: torch.Tensor | None = None,
    ref: float, scale: float, cap: int, oracle: bool,
) -> dict:
    """Power iteration on H − shift·I from `v`, as PyHessian's `eigenvalues` (tol 1e-3 on the
    Rayleigh quotient's relative change). Records where that criterion stops ("py") and, if
    `oracle`, keeps going until the estimate (Rayleigh quotient + shift) is within ACC·scale of
    `ref`."""
    prev = None
    out: dict = {"py": None, "oracle": None, "v": None}
    t0 = time.perf_counter()
    for it in range(1, cap + 1):
        if deflate is not None:  # PyHessian: orthonormalize against the found eigenvectors
            v = v - (v @ deflate) * deflate
            v /= v.norm()
        hv = hvp(v)
        if shift:
            hv = hv - shift * v
        rq = float(hv.double() @ v.double())
        est = rq + shift
        now = time.perf_counter() - t0
        if out["oracle"] is None and abs(est - ref) <= ACC * scale:
            out["oracle"] = {"hvps": it, "s": now, "value": est}
        if (out["py"] is None and prev is not None
                and abs(rq - prev) / (abs(prev) + 1e-6) < 1e-3):
            out["py"] = {"hvps": it, "s": now, "value": est}
        v = hv / hv.norm()
        prev = rq
        if out["py"] is not None and (out["oracle"] is not None or not oracle):
            break
    if out["py"] is None:  # not converged within the cap: report where it stopped
        out["py"] = {"hvps": cap, "s": time.perf_counter() - t0, "value": est,
                     "capped": True}
    out["v"] = v
    out["last"] = est
    return out


def power_both(land: lw.Landscape, seed: int, ref: tuple[float, float], cap: int,
               oracle: bool) -> dict:
    op = land.hessian.operator()
    smax = abs(ref[0])
    smin = max(abs(ref[1]), 1e-3 * abs(ref[0]))
    top = power(op.hvp, start_vector(op.n, seed), ref=ref[0], scale=smax, cap=cap,
                oracle=oracle)
    shift = top["py"]["value"]  # PyHessian's own λmax estimate
    bottom = power(op.hvp, start_vector(op.n, seed + 1000), shift=shift, deflate=top["v"],
                   ref=ref[1], scale=smin, cap=cap, oracle=oracle)
    res = {
        "py": {
            "hvps": top["py"]["hvps"] + bottom["py"]["hvps"],
            "s": top["py"]["s"] + bottom["py"]["s"],
            "lmax": top["py"]["value"], "lmin": bottom["py"]["value"],
            "capped": bool(top["py"].get("capped") or bottom["py"].get("capped")),
            "n_max": top["py"]["hvps"], "n_min": bottom["py"]["hvps"],
        },
    }
    if oracle:
        ok = top["oracle"] is not None and bottom["oracle"] is not None
        res["oracle"] = {
            "reached": ok,
            "n_max": top["oracle"]["hvps"] if top["oracle"] else None,
            "n_min": bottom["oracle"]["hvps"] if bottom["oracle"] else None,
            "hvps": ((top["oracle"]["hvps"] if top["oracle"] else cap)
                     + (bottom["oracle"]["hvps"] if bottom["oracle"] else cap)),
            "s": ((top["oracle"]["s"] if top["oracle"] else math.nan)
                  + (bottom["oracle"]["s"] if bottom["oracle"] else math.nan)),
            "lmin_last": bottom["last"],
        }
    return res


def med(rs: list[dict], key: str) -> float:
    return median([r[key] for r in rs])


def passes(r: dict) -> bool:
    return all(e <= ACC for e in r["err"])  # False for NaN (ARPACK gave up)


def worst(rs: list[dict], i: int) -> float:
    errs = [r["err"][i] for r in rs]
    return math.inf if any(math.isnan(e) for e in errs) else max(errs)


def ladder(land: lw.Landscape, method: str, ref: tuple[float, float],
           repeats: int) -> tuple[float | None, list[dict]]:
    """The loosest tol of the ladder at which every start 0..repeats-1 reaches ACC (a tol is
    abandoned at its first failing start), and that tol's runs (the tightest's if none)."""
    print(f"  {LABELS[method]}: tolerance ladder (random starts 0..{repeats - 1}; medians, "
          "worst errors):")
    print(f"    {'tol':>8}{'starts':>7}{'HVPs':>7}{'seconds':>9}{'err λmax':>11}{'err λmin':>11}")
    runs: list[dict] = []
    for tol in TOL_LADDER:
        runs = []
        for rep in range(repeats):
            r = extremes(land, 1, "both", tol, rep, method)
            r["err"] = rel_errors(r["lmax"], r["lmin"], ref)
            runs.append(r)
            if not passes(r):
                break
        ok = len(runs) == repeats and all(passes(r) for r in runs)
        print(f"    {tol:>8.0e}{len(runs):>7}{med(runs, 'hvps'):>7.0f}{med(runs, 's'):>9.2f}"
              f"{worst(runs, 0):>11.1e}{worst(runs, 1):>11.1e}{'' if ok else '   > 1e-3'}")
        if ok:
            return tol, runs
    return None, runs


def bench(name: str, model: torch.nn.Module, X, y, args: argparse.Namespace) -> None:
    land = lw.Landscape(model, (X, y))
    n = land.hessian.size
    op = land.hessian.operator()
    v = torch.randn(n)
    op.hvp(v)
    t_hvp = median([timed(lambda: op.hvp(v))[0] for _ in range(5)])
    print(f"\n## {name}: {n:,} parameters, {land.n_samples:,} samples, "
          f"{str(land.space.dtype).replace('torch.', '')}; one HVP ≈ {1e3 * t_hvp:.1f} ms")

    t_ref, ref_eig = timed(lambda: land.hessian.eigen(k=1, which="both", tol=REF_TOL,
                                                      seed=REF_SEED))
    ref = (float(ref_eig.values[0]), float(ref_eig.values[-1]))
    t_top, top_eig = timed(lambda: land.hessian.eigen(k=5, which="top", tol=REF_TOL,
                                                      seed=REF_SEED))
    ref_top = np.asarray(top_eig.values, dtype=np.float64)
    smin = max(abs(ref[1]), 1e-3 * abs(ref[0]))
    print(f"  reference (our Lanczos, tol={REF_TOL:.0e}, seed {REF_SEED}, {ref_eig.hvps} HVPs "
          f"incl. 2 residual checks, {t_ref:.1f} s): λmax = {ref[0]:.6g}, λmin = {ref[1]:.6g}; "
          f"residuals {ref_eig.residuals[0]:.1e}, {ref_eig.residuals[-1]:.1e}")
    print(f"  reference top 5 (which=\"top\", k=5, {top_eig.hvps} HVPs, {t_top:.1f} s): "
          f"{', '.join(format(x, '.6g') for x in ref_top)}; worst residual "
          f"{max(top_eig.residuals):.1e}")
    print(f"  λmin accuracy is relative to max(|λmin|, 1e-3·|λmax|) = {smin:.4g}"
          + ("  (|λmin| < 1e-3·λmax here: absolute 1e-6·λmax)" if smin > abs(ref[1]) else ""))

    # Both Lanczos variants: the loosest tolerance of its ladder that every start passes.
    chosen, runs = {}, {}
    for method in ("lanczos", "arpack"):
        chosen[method], runs[method] = ladder(land, method, ref, args.repeats)

    # Our Lanczos, other requests at the chosen tolerance: top 5 alone, λmin alone.
    tol = chosen["lanczos"] or TOL_LADDER[-1]
    top5 = [extremes(land, 5, "top", tol, rep, "lanczos") for rep in range(args.repeats)]
    bot = [extremes(land, 1, "bottom", tol, rep, "lanczos") for rep in range(args.repeats)]
    err5 = max(float(np.max(np.abs(r["w"] - ref_top) / np.abs(ref_top))) for r in top5)
    errb = max(abs(r["lmin"] - ref[1]) / smin for r in bot)
    print(f"  ours at tol={tol:.0e}, other requests (starts 0..{args.repeats - 1}, median HVPs "
          f"[min–max], worst errors):")
    print(f"    top 5 (which=\"top\", k=5): {med(top5, 'hvps'):.0f} HVPs "
          f"[{min(r['hvps'] for r in top5)}–{max(r['hvps'] for r in top5)}], "
          f"{med(top5, 's'):.2f} s, err ≤ {err5:.1e} over the 5; λmin alone "
          f"(which=\"bottom\", k=1): {med(bot, 'hvps'):.0f} HVPs "
          f"[{min(r['hvps'] for r in bot)}–{max(r['hvps'] for r in bot)}], "
          f"{med(bot, 's'):.2f} s, err {errb:.1e}  (METHODS.md, digits MLP: {METHODS_MD})")

    # Power iteration, PyHessian style, with the same random starts.
    py, orc = [], []
    for rep in range(args.repeats):
        p = power_both(land, rep, ref, args.cap, oracle=rep < args.oracle_repeats)
        p["py"]["err"] = rel_errors(p["py"]["lmax"], p["py"]["lmin"], ref)
        py.append(p["py"])
        if "oracle" in p:
            orc.append(p["oracle"])

    print(f"  side by side ({args.repeats} random starts, medians; power iteration capped at "
          f"{args.cap} HVPs per eigenvalue):")
    print(f"    {'method':<44}{'HVPs':>7}{'seconds':>9}{'worst err λmax':>16}"
          f"{'worst err λmin':>16}  reached 1e-3")
    for method in ("lanczos", "arpack"):
        rs, ok = runs[method], chosen[method] is not None
        tol_txt = f"tol={chosen[method]:.0e}" if ok else f"tol={TOL_LADDER[-1]:.0e} (tightest)"
        print(f"    {LABELS[method] + ', ' + tol_txt:<44}{med(rs, 'hvps'):>7.0f}"
              f"{med(rs, 's'):>9.2f}{worst(rs, 0):>16.1e}{worst(rs, 1):>16.1e}  "
              f"{'yes' if ok else 'NO'}")
    py_ok = all(passes(r) for r in py)
    capped = sum(r["capped"] for r in py)
    print(f"    {'power iteration, PyHessian stop (tol 1e-3)':<44}{med(py, 'hvps'):>7.0f}"
          f"{med(py, 's'):>9.2f}{worst(py, 0):>16.1e}{worst(py, 1):>16.1e}  "
          f"{'yes' if py_ok else 'NO'}"
          + (f"  ({capped} run(s) hit the cap: not converged)" if capped else ""))
    print(f"      λmax in {med(py, 'n_max'):.0f} HVPs, then λmin in {med(py, 'n_min'):.0f} "
          f"(medians); its λmin: {', '.join(format(r['lmin'], '.4g') for r in py)} "
          f"vs {ref[1]:.4g}")
    if orc:
        orc_ok = all(r["reached"] for r in orc)
        label = f"power iteration, oracle stop ({len(orc)} run{'s' if len(orc) > 1 else ''})"
        hv = med(orc, "hvps")
        secs = med(orc, "s") if orc_ok else math.nan
        print(f"    {label:<44}{('≥' if not orc_ok else '') + f'{hv:.0f}':>7}"
              f"{secs:>9.2f}{'':>16}{'':>16}  {'yes' if orc_ok else 'NO (cap)'}")
        n_max = [r["n_max"] for r in orc]
        n_min = [r["n_min"] for r in orc]
        print(f"      λmax within 1e-3 after {n_max} HVPs, λmin after {n_min} HVPs"
              + ("" if orc_ok else f" (None: not within {args.cap}; λmin estimate then "
                 f"{orc[0]['lmin_last']:.4g})"))

    ours = med(runs["lanczos"], "hvps")
    lz_ok = chosen["lanczos"] is not None
    ratio_py = med(py, "hvps") / ours
    fair = med(orc, "hvps") if orc else med(py, "hvps")
    fair_ok = all(r["reached"] for r in orc) if orc else py_ok
    ratio = fair / ours
    print(f"  HVP ratio power/ours-lanczos: PyHessian stop {ratio_py:.2f}×"
          + ("" if py_ok else " (but it stopped short of 1e-3)")
          + (f"; to actually reach 1e-3 {'' if fair_ok else '≥ '}{ratio:.1f}×" if orc else ""))
    ar_ok = chosen["arpack"] is not None
    print(f"  HVP ratio arpack/ours-lanczos: {med(runs['arpack'], 'hvps') / ours:.2f}× "
          f"(seconds {med(runs['arpack'], 's') / med(runs['lanczos'], 's'):.2f}×)"
          + ("" if ar_ok and lz_ok else "  (one of them never reached 1e-3 on the ladder)"))
    print(f"  [{'met' if lz_ok and ratio >= 3 else 'MISSED'}] ours reaches 1e-3 with ≥ 3× "
          f"fewer HVPs than power iteration ({'' if fair_ok else '≥ '}{ratio:.1f}×)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--oracle-repeats", type=int, default=1,
                    help="repeats in which power iteration continues past PyHessian's stop "
                    "until it reaches the accuracy (or the cap)")
    ap.add_argument("--cap", type=int, default=500,
                    help="HVP cap per power iteration (was 1000; lowered to keep the run "
                    "under ~5 min)")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--cnn-samples", type=int, default=256,
                    help="digits the CNN's Hessian is taken over (its HVP costs ~10× the "
                    "MLP's per sample; all 1,797 would take ~15 min)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# ls-widget Hessian benchmark — {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"# target accuracy: {ACC:g} relative, for λmax and λmin; HVPs counted per call of "
          "HessianOperator.hvp (no residual checks, except in the reference)")
    print(f"# methods: ours = extremes(method=\"lanczos\"), ARPACK = extremes(method=\"arpack\"), "
          f"power iteration as PyHessian; {args.repeats} random starts each, power iteration "
          f"capped at {args.cap} HVPs per eigenvalue"
          + (" (default lowered from 1000 to keep the run under ~5 min)" if args.cap == 500
             else "") + f", oracle stop in {args.oracle_repeats} start(s)")
    t0 = time.perf_counter()
    for name in args.models.split(","):
        X, y = digits(image=(name == "cnn"))
        model = train(mlp() if name == "mlp" else cnn(), X, y)
        if name == "mlp":
            bench("digits MLP 64-128-128-10", model, X, y, args)
        else:  # trained on all digits, the Hessian over the first --cnn-samples
            k = args.cnn_samples
            bench("digits CNN with BatchNorm", model, X[:k], y[:k], args)
    print(f"\n# total {time.perf_counter() - t0:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
