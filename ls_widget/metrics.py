"""Metrics for `Landscape(metrics={...})`: batch means weighted by batch size."""

from .engine.metrics import accuracy, error

__all__ = ["accuracy", "error"]
