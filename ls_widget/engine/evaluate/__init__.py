"""Evaluation of the loss at many points θ₀ + Σₖ cₖ dₖ on a private copy of the model."""

from .evaluator import DEFAULT_MEMORY_BUDGET, BoundEvaluator, Evaluator, LossFn

__all__ = ["DEFAULT_MEMORY_BUDGET", "BoundEvaluator", "Evaluator", "LossFn"]
