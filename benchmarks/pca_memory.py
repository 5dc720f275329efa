"""Memory of `lw.directions.pca` on a ResNet-sized trajectory: 200 snapshots of ResNet-20.

Run: ``.venv/bin/python benchmarks/pca_memory.py [--snapshots 200] [--cases ...]`` (a few
minutes on one core: the small-budget case reads every snapshot file several times).

ResNet-20 (benchmarks/common.py, 0.27 M parameters) walks 200 steps (a fixed drift plus
seeded noise, so the snapshots have a few strong directions, as training runs do); a
`lw.Recorder` takes a snapshot at every step. Each case runs in a fresh child process, which
records the trajectory first and then samples its own RSS every 5 ms while it computes the
PCA (k=2) and, separately, the path (`traj.project`). The peaks are printed above that
baseline: the PCA's own memory, beyond the snapshots it was given.

- ``memory``: snapshots held in memory (by the Recorder), default budget (256 MB);
- ``folder``: snapshots in a folder (``Recorder(path=...)``), read one file at a time;
- ``folder-64MB``: the same with ``memory="64MB"``: blocks of snapshots read again per block;
- ``sklearn``: the textbook way, for scale: the T × P float64 matrix of differences and
  ``sklearn.decomposition.PCA(2, svd_solver="full")``; it also prints the largest difference
  of its directions and ratios from ours (same snapshots, in memory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

MB = 10**6


class Peak:
    """Samples this process's RSS in a thread; `.mb` is the peak above the start."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.base = self._proc.memory_info().rss
        self._peak = self.base
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return (self._peak - self.base) / MB


def record(n: int, folder: str | None):
    """ResNet-20 walking `n` steps, recorded at each."""
    import torch
    from common import ResNet20

    import ls_widget as lw

    torch.manual_seed(0)
    model = ResNet20().eval()
    drift = {k: 1e-3 * torch.randn_like(p) for k, p in model.named_parameters()}
    wobble = {k: 1e-3 * torch.randn_like(p) for k, p in model.named_parameters()}
    rec = lw.Recorder(model, path=folder)
    g = torch.Generator().manual_seed(1)
    for t in range(n):
        rec.step(train_loss=2.3 * 0.99**t)
        with torch.no_grad():
            for k, p in model.named_parameters():
                noise = torch.randn(p.shape, generator=g) * 2e-4
                p.add_(drift[k] + wobble[k] * float(torch.tensor(t / 9.0).sin()) + noise)
    return model, rec.trajectory


def child(case: str, n: int) -> dict:
    """Measure one case in this (fresh) process."""
    import numpy as np
    import torch

    import ls_widget as lw
    from ls_widget.engine.memory import parse_memory

    torch.set_num_threads(1)  # two cores shared with other jobs: no oversubscription
    with tempfile.TemporaryDirectory() as tmp:
        model, traj = record(n, tmp if case.startswith("folder") else None)
        params = sum(p.numel() for p in model.parameters())
        snap_mb = sum(t.numel() * t.element_size() for t in traj.state(0).values()) * n / MB
        out: dict = {"case": case, "snapshots": n, "params": params, "snapshots_mb": snap_mb}
        t0 = time.perf_counter()
        if case == "sklearn":
            from sklearn.decomposition import PCA

            names = [s.name for s in traj.specs if len(s.shape) > 1]  # ignore="biasbn"
            with Peak() as peak:
                last = torch.cat([traj.state(-1, copy=False)[k].reshape(-1).double()
                                  for k in names])
                rows = np.stack([
                    (torch.cat([traj.state(i, copy=False)[k].reshape(-1).double()
                                for k in names]) - last).numpy()
                    for i in range(n)
                ])
                ref = PCA(n_components=2, svd_solver="full").fit(rows)
                del rows
            out["pca_mb"], out["pca_s"] = peak.mb, time.perf_counter() - t0
            dirs = lw.directions.pca(traj, k=2)
            flat = [torch.cat([d[k].reshape(-1).double() for k in names]).numpy() for d in dirs]
            out["max_direction_diff"] = max(
                float(np.abs(v - c * np.sign(v @ c)).max())
                for v, c in zip(flat, ref.components_, strict=True))
            out["max_ratio_diff"] = max(
                abs(d.provenance["explained_variance_ratio"] - float(r))
                for d, r in zip(dirs, ref.explained_variance_ratio_, strict=True))
            return out
        memory = "64MB" if case == "folder-64MB" else "256MB"
        with Peak() as peak:
            d1, d2 = lw.directions.pca(traj, k=2, memory=memory)
        out["pca_mb"], out["pca_s"] = peak.mb, time.perf_counter() - t0
        out["budget_mb"] = parse_memory(memory) / MB
        t0 = time.perf_counter()
        with Peak() as peak:
            path = traj.project(d1, d2)
        out["project_mb"], out["project_s"] = peak.mb, time.perf_counter() - t0
        out["labels"] = [d1.label, d2.label]
        out["end"] = [float(path.alpha[-1]), float(path.beta[-1])]
        return out


def main() -> None:
    """Every case in its own child process; a table of the peaks."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snapshots", type=int, default=200)
    ap.add_argument("--cases", default="memory,folder,folder-64MB,sklearn")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.snapshots)))
        return
    rows = []
    for case in args.cases.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--snapshots", str(args.snapshots)],
            capture_output=True, text=True,
        )
        if out.returncode:
            sys.exit(f"case {case!r} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r0 = rows[0]
    print(f"ResNet-20 ({r0['params']:,} parameters), {r0['snapshots']} snapshots "
          f"({r0['snapshots_mb']:.0f} MB as float32); peak RSS above the recorded run")
    print(f"{'case':<13}{'budget MB':>10}{'PCA peak MB':>13}{'PCA s':>7}"
          f"{'path peak MB':>14}{'path s':>8}  notes")
    for r in rows:
        budget = f"{r['budget_mb']:.0f}" if "budget_mb" in r else "-"
        path_mb = f"{r['project_mb']:.0f}" if "project_mb" in r else "-"
        path_s = f"{r['project_s']:.1f}" if "project_s" in r else "-"
        if r["case"] == "sklearn":
            note = (f"vs ours: directions {r['max_direction_diff']:.1e}, "
                    f"ratios {r['max_ratio_diff']:.1e}")
        else:
            note = f"{r['labels'][0]}, {r['labels'][1]}; end at {r['end']}"
        print(f"{r['case']:<13}{budget:>10}{r['pca_mb']:>13.0f}{r['pca_s']:>7.1f}"
              f"{path_mb:>14}{path_s:>8}  {note}")


if __name__ == "__main__":
    main()
