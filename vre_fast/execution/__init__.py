"""Batch execution: what to compute (plan), and the staged decode -> compute -> write pipeline."""

from .batch import BatchExecutor, NodeRuntime, NodeStats
from .plan import Plan, make_plan

__all__ = ["BatchExecutor", "NodeRuntime", "NodeStats", "Plan", "make_plan"]
