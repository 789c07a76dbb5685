"""Back-pressure: each policy may veto an action (decoding another chunk, submitting another write) given what
the run holds now. Memory stays bounded whatever the video's length, and a slow disk slows compute down
instead of piling results up. An action is never vetoed while nothing of its kind is held, so a request
larger than a limit still makes progress, alone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from ..contracts import Request, ResourceReport

__all__ = ["BackpressurePolicy", "InFlightFrames", "PinnedBytes", "WriterQueueDepth", "first_veto"]


class BackpressurePolicy(ABC):
    @abstractmethod
    def veto(self, now: ResourceReport, request: Request) -> str | None:
        """Why `request` must wait, or None to let it go ahead."""


@dataclass(frozen=True)
class WriterQueueDepth(BackpressurePolicy):
    """At most `limit` write jobs in flight: compute waits for the disk."""

    limit: int

    def veto(self, now: ResourceReport, request: Request) -> str | None:
        if request.writes and now.writes_pending + request.writes > self.limit:
            return f"{now.writes_pending} writes pending (limit {self.limit})"
        return None


@dataclass(frozen=True)
class InFlightFrames(BackpressurePolicy):
    """At most `limit` decoded frames held (queued, computing, or viewed by writes not yet done)."""

    limit: int

    def veto(self, now: ResourceReport, request: Request) -> str | None:
        if request.frames and now.frames_in_flight and now.frames_in_flight + request.frames > self.limit:
            return f"{now.frames_in_flight} frames in flight (limit {self.limit})"
        return None


@dataclass(frozen=True)
class PinnedBytes(BackpressurePolicy):
    """At most `limit` bytes of page-locked frame buffers in use (pinned memory is scarce and not swappable)."""

    limit: int

    def veto(self, now: ResourceReport, request: Request) -> str | None:
        if request.pinned_bytes and now.pinned_bytes_in_use and \
                now.pinned_bytes_in_use + request.pinned_bytes > self.limit:
            return f"{now.pinned_bytes_in_use} pinned bytes in use (limit {self.limit})"
        return None


def first_veto(policies: Iterable[BackpressurePolicy], now: ResourceReport, request: Request) -> str | None:
    return next((reason for p in policies if (reason := p.veto(now, request)) is not None), None)
