"""User-facing errors: the CLI prints these as one clear message, never as a bare traceback."""

from __future__ import annotations

__all__ = ["VreError", "ConfigError", "GraphError", "VideoError", "StoreError", "RepresentationError"]


class VreError(Exception):
    """Base of every error caused by the user's input (config, video, output directory)."""


class ConfigError(VreError):
    """A config key is unknown, missing or has a bad value; the message names the key path."""


class GraphError(ConfigError):
    """The representation graph is not a DAG or names an unknown node."""


class VideoError(VreError):
    """The video cannot be opened or decoded; the message names the file and the frame."""


class StoreError(VreError):
    """The output directory conflicts with this run or holds unreadable data."""


class RepresentationError(VreError):
    """A representation failed on a frame; carries the names so the run record can say where."""

    def __init__(self, representation: str, frame: int, cause: BaseException):
        self.representation = representation
        self.frame = frame
        self.cause = cause
        super().__init__(f"representation '{representation}' failed on frame {frame}: "
                         f"{type(cause).__name__}: {cause}")
