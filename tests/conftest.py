"""Session fixtures: digits data and small trained models (seconds to build, cached)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from helpers import cnn_bn, mlp, train
from torch import nn

torch.set_num_threads(1)  # tiny ops: one thread is fastest and robust to a busy machine

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each device this machine has: the engine's tests run on the CPU and, where present, on
    a GPU."""
    return torch.device(request.param)


# --------------------------------------------------------------------------------- data
@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's digits (offline): X (1797, 64) in [0, 1], y (1797,) class indices."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    return X, y


@pytest.fixture(scope="session")
def digits_small(digits) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = digits
    return X[:300], y[:300]


@pytest.fixture(scope="session")
def digits_images(digits_small) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = digits_small
    return X.reshape(-1, 1, 8, 8), y


@pytest.fixture(scope="session")
def trained_mlp(digits) -> nn.Module:
    X, y = digits
    return train(mlp(0), X, y, steps=100)


@pytest.fixture(scope="session")
def trained_cnn(digits_images) -> nn.Module:
    X, y = digits_images
    return train(cnn_bn(0), X, y, steps=30, batch=64)


