"""The streaming loop: a reader thread feeds a frame policy; the compute loop takes, computes, sends.

Nothing is written to disk. Per frame: wait (received -> compute starts), compute, send; the summary
(p50/p99) is printed on exit and available as `runtime.stats`. A sink that fails (its reader went away)
ends the run with a VreError, so `vre-fast stream` exits 1 instead of pretending all went well.
"""

from __future__ import annotations

import threading
import time

import av

from ..errors import VreError
from .graph import StreamGraph
from .policies import make_policy
from .sinks import Sink
from .sources import FrameSource, SourceFrame
from .stats import FrameTiming, LatencyStats

__all__ = ["StreamRuntime"]

_SINK_ERRORS = (OSError, av.FFmpegError)


class StreamRuntime:
    def __init__(self, graph: StreamGraph, source: FrameSource, sink: Sink, policy: str = "latest"):
        self.graph, self.source, self.sink = graph, source, sink
        self.policy = make_policy(policy)
        self.stats = LatencyStats()
        self._stop = threading.Event()
        self._reader_error: BaseException | None = None

    def run(self) -> LatencyStats:
        """Processes frames until the source ends or stop(); a failing sink ends the run with VreError naming it
        (after cleanup, with the stats complete)."""
        reader = threading.Thread(target=self._read, name="vre-stream-reader", daemon=True)
        reader.start()
        sink_error: VreError | None = None
        try:
            while not self._stop.is_set():
                item: SourceFrame | None = self.policy.get(timeout=0.1)
                if item is None:
                    if self.policy.closed:
                        break
                    continue
                start = time.perf_counter()
                result = self.graph.push(item.image, item.frame_id)
                result.origin = item
                computed = time.perf_counter()
                try:
                    self.sink.send(result)
                except _SINK_ERRORS as exc:  # a closed pipe, a reset or stalled connection, a failing encoder
                    sink_error = self._sink_failed(exc)
                    break
                self.stats.add(FrameTiming(item.frame_id, item.received_at, start - item.received_at,
                                           computed - start, time.perf_counter() - computed))
        finally:
            self.stop()
            reader.join(timeout=1.0)
            self.stats.dropped = self.policy.dropped
            self.stats.rejected = getattr(self.source, "rejected", 0)
            self.stats.refused = getattr(self.source, "refused", 0)
            try:
                self.sink.close()
            except _SINK_ERRORS as exc:
                if sink_error is None:
                    sink_error = self._sink_failed(exc)
        if self._reader_error is not None:
            raise self._reader_error
        if sink_error is not None:
            raise sink_error
        return self.stats

    def _sink_failed(self, exc: BaseException) -> VreError:
        name = getattr(self.sink, "name", type(self.sink).__name__)
        return VreError(f"sink {name}: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """Safe from a signal handler or another thread."""
        self._stop.set()
        self.policy.close()
        self.source.close()

    def _read(self) -> None:
        try:
            for item in self.source.frames():
                if self._stop.is_set():
                    break
                replaced = self.policy.put(item)
                if replaced is not None and replaced.reply is not None:
                    replaced.reply.settle()  # dropped: its client gets no reply for it
        except BaseException as exc:  # surfaced by run()
            self._reader_error = exc
        finally:
            self.policy.close()
