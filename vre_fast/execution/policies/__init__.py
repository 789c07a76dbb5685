"""Policies: pure decisions on reports and failures, no I/O. The scheduler asks, and carries out."""

from .backpressure import BackpressurePolicy, InFlightFrames, PinnedBytes, WriterQueueDepth, first_veto
from .on_error import ErrorPolicy, Skip, Stop
from .oom import Fail, OomPolicy, RetryHalved, Split

__all__ = ["BackpressurePolicy", "ErrorPolicy", "Fail", "InFlightFrames", "OomPolicy", "PinnedBytes", "RetryHalved",
           "Skip", "Split", "Stop", "WriterQueueDepth", "first_veto"]
