"""`--sink out.rrd` / `--sink rerun://HOST:PORT`: the stream's chosen representations as a Rerun recording,
logged as `vre-fast view` logs a dataset (vre_fast/rerun_view.py), one "frame" per streamed frame id."""

from __future__ import annotations

from ..rerun_view import RerunLog
from .graph import StreamGraph, StreamResult

__all__ = ["RerunSink"]


class RerunSink:
    """Writes the .rrd as frames come (readable up to its last chunk if the process dies), or sends them to a
    viewer; a viewer that cannot be reached fails the stream at open or, if lost, at close."""

    def __init__(self, spec: str, graph: StreamGraph):
        self.name = spec
        self._log = RerunLog(spec, [n.representation for n in graph.nodes if n.name in graph.chosen],
                             option="--sink")

    def send(self, result: StreamResult) -> None:
        self._log.log(result.frame_id, result.decoded)

    def close(self) -> None:
        self._log.close()
