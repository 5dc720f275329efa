"""Headless ls-widget demo: the loss landscape of a small MLP trained on sklearn's digits.

Trains a 64-128-128-10 MLP for a few seconds (300 full-batch Adam steps), then computes a
filter-normalized random plane (41×41) and a line (51 points) around it, and writes
`demo-plane.png` and `demo-line.png` to the current directory. Runs offline on a CPU in
well under a minute:

    make demo        # or: .venv/bin/python examples/demo.py
"""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import ls_widget as lw


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int = 300) -> None:
    """Full-batch Adam: a fixed number of steps (a few seconds on 2 cores), so runs agree."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()


def main() -> None:
    torch.manual_seed(0)
    digits = load_digits()  # 1,797 8×8 images, bundled with scikit-learn
    X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)

    model = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    train(model, X, y)

    land = lw.Landscape(model, (X, y), metrics={"accuracy": lw.metrics.accuracy})
    centre = land.center()
    print(f"trained model: loss {centre['loss']:.4f}, accuracy {centre['accuracy']:.3f}")

    d1 = lw.directions.random(model, seed=0)  # Gaussian, filter-normalized, biases ignored
    d2 = lw.directions.random(model, seed=1)

    t0 = time.perf_counter()
    surf = land.plane(d1, d2, span=1, n=41)
    t_plane = time.perf_counter() - t0

    t0 = time.perf_counter()
    curve = land.line(d1, span=1, n=51)
    t_line = time.perf_counter() - t0

    plane_png, line_png = Path("demo-plane.png").resolve(), Path("demo-line.png").resolve()
    surf.plot(log=True).savefig(plane_png, dpi=150)
    curve.plot().savefig(line_png, dpi=150)

    n_plane, n_line = surf["loss"].size, curve["loss"].size
    print(f"plane: {n_plane} points in {t_plane:.2f} s ({n_plane / t_plane:,.0f} points/s)")
    print(f"line:  {n_line} points in {t_line:.2f} s ({n_line / t_line:,.0f} points/s)")
    print(f"wrote {plane_png}")
    print(f"wrote {line_png}")


if __name__ == "__main__":
    main()
