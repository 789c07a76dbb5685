"""Batch execution: what to compute (plan), and the staged decode -> compute -> write pipeline."""

from .batch import BatchExecutor, NodeRuntime, NodeStats, StageStats
from .plan import Plan, make_plan

__all__ = ["BatchExecutor", "NodeRuntime", "NodeStats", "Plan", "StageStats", "make_plan"]
