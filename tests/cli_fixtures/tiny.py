"""A tiny classifier on synthetic data for the command line's tests (nothing downloaded).

`TinyNet.forward` logs each call when ``LSW_CLI_FORWARD_LOG`` names a file (one line: the
batch size and two sums of the moving weights, which identify the point evaluated), sleeps
``LSW_CLI_SLOW`` seconds (so a test can stop a job part-way; the values do not change), and
raises KeyboardInterrupt once ``STOP_AFTER`` calls were made (set by in-process tests; with
``STOP_WITH = "sigterm"`` it sends itself SIGTERM instead, as a scheduler ending a job does).
"""

from __future__ import annotations

import os
import signal
import time

import torch
from torch import nn

CALLS = 0
STOP_AFTER: int | None = None
STOP_WITH = "interrupt"
NUMBER = 3  # not a function, for the error tests


class TinyNet(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global CALLS
        CALLS += 1
        if STOP_AFTER is not None and CALLS > STOP_AFTER:
            if STOP_WITH == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                raise KeyboardInterrupt
        log = os.environ.get("LSW_CLI_FORWARD_LOG")
        if log:
            a = float(self.fc2.weight.detach().double().sum())
            b = float(self.fc3.weight.detach().double().sum())
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{x.shape[0]} {a!r} {b!r}\n".encode())
            os.close(fd)
        slow = float(os.environ.get("LSW_CLI_SLOW", "0"))
        if slow:
            time.sleep(slow)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def build() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet()


def build_wide() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet(hidden=32)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """600 samples: more than the engine vectorizes over, so points run one at a time."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(600, 8, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, y


def not_a_model() -> dict[str, int]:
    return {"layers": 3}


def failing_data() -> None:
    raise FileNotFoundError("/datasets/train.npy")
