"""Curvature of the loss: Hessian-vector products, extreme eigenpairs, trace and spectrum."""

from .hessian import (
    CURVATURE_METRICS,
    Density,
    Eigen,
    Hessian,
    HessianOperator,
    NonSmoothWarning,
    Trace,
)

__all__ = [
    "CURVATURE_METRICS",
    "Density",
    "Eigen",
    "Hessian",
    "HessianOperator",
    "NonSmoothWarning",
    "Trace",
]
