"""Curvature of the loss: Hessian-vector products, extreme eigenpairs, trace and spectrum.

The face of the package; the modules behind it, each one job, import only downwards:

- `records`: the result records `Eigen`, `Trace`, `Density`;
- `protocols`: what curvature needs of the engine (its `Evaluator`), as Protocols;
- `lanczos`: the one Lanczos iteration (full reorthogonalization, torch, on the device);
- `extremes`: extreme eigenpairs by that Lanczos, by ARPACK, or densely;
- `operator`: `HessianOperator`, H as products (double backward) and a `LinearOperator`;
- `estimators`: tr H by Hutchinson (1989) and from loss values (Böttcher & Wheeler 2022);
- `smoothness`: which ops of the loss have kinks (`nonsmooth_ops`, `NonSmoothWarning`);
- `density`: the spectral density by stochastic Lanczos quadrature (Ubaru et al. 2017);
- `maps`: λmax, λmin and |λmin/λmax| over a plane (Li et al. 2018), parameter selection;
- `hessian`: the front door `Hessian` (`land.hessian`).

Curvature takes the engine's evaluator and plain parameter names, never a `Landscape`. (The
Lanczos function itself is `ls_widget.curvature.lanczos.lanczos`; it is not re-exported here,
where its name would hide its module's.)
"""

from .density import slq
from .estimators import hutchinson, projection_trace
from .hessian import Hessian
from .lanczos import LanczosRun
from .maps import CURVATURE_METRICS, ParamSelection, curvature_values, select_params
from .operator import HessianOperator
from .protocols import LossEvaluator
from .records import Density, Eigen, Trace
from .smoothness import NonSmoothWarning, nonsmooth_ops

__all__ = [
    "CURVATURE_METRICS",
    "Density",
    "Eigen",
    "Hessian",
    "HessianOperator",
    "LanczosRun",
    "LossEvaluator",
    "NonSmoothWarning",
    "ParamSelection",
    "Trace",
    "curvature_values",
    "hutchinson",
    "nonsmooth_ops",
    "projection_trace",
    "select_params",
    "slq",
]
