"""The execution layer: contracts (operators, reports), operators/ (one per step), policies/ (back-pressure,
OOM, errors), the plan of what to compute, the node execution batch runs and streams share, and the batch
scheduler."""

from .binding import NodeBinding, NodeStats
from .node import NodeExecution, NodeResult, OutputUse, placement
from .plan import Plan, make_plan
from .scheduler import BatchExecutor, StageStats

__all__ = ["BatchExecutor", "NodeBinding", "NodeExecution", "NodeResult", "NodeStats", "OutputUse", "Plan",
           "StageStats", "make_plan", "placement"]
