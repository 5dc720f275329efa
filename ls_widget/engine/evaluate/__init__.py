"""Evaluation of the loss at many points θ₀ + Σₖ cₖ dₖ on a private copy of the model.

Modules, each importing only those listed before it:

- stateful: metrics over all the data (update / compute / reset, e.g. torchmetrics); one
  state per point.
- scoring: the loss and metrics of a batch, argument checks, error messages with their fix.
- flat: the moving tensors of one dtype as one flat vector; moving it to a point.
- speedups: exact speed-ups of the per-point loop.
- first_layer: a Linear/Conv first layer, precomputed at θ₀ and along each direction.
- private_model: the deep copy of the user's model on tensors we own; its probe forward.
- binding: one binding's flat vectors and plan switches; attaching the private copy to them.
- run: running points, one forward per point or vmap over chunks.
- plan: the fixed rules that pick how points run, checked numerically, never timed.
- bound: `BoundEvaluator`, an Evaluator bound to k directions.
- evaluator: `Evaluator`.
"""

from .bound import BoundEvaluator
from .evaluator import DEFAULT_MEMORY_BUDGET, Evaluator
from .scoring import LossFn, Metric

__all__ = ["DEFAULT_MEMORY_BUDGET", "BoundEvaluator", "Evaluator", "LossFn", "Metric"]
