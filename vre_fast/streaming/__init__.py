"""Streaming: the same representation graph on live frames, in memory, newest frame first."""

from .graph import StreamGraph, StreamResult
from .protocol import Limits, ProtocolError, encode_frame, read_result
from .runtime import StreamRuntime
from .sinks import open_sink
from .sources import open_source

__all__ = ["Limits", "ProtocolError", "StreamGraph", "StreamResult", "StreamRuntime", "encode_frame", "open_sink",
           "open_source", "read_result"]
