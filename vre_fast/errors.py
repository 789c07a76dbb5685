"""User-facing errors: the CLI prints these as one clear message, never as a bare traceback."""

from __future__ import annotations

import errno

__all__ = ["VreError", "ConfigError", "GraphError", "VideoError", "StoreError", "RepresentationError",
           "describe_os_error"]


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


def describe_os_error(exc: OSError) -> str:
    """The one line an OSError (the environment: a full disk, a read-only output) is reported as."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}{what}; finished frames are kept: free some space and run again to resume"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{where}{what}; the output must be writable (reading a dataset needs no write access)"
    return f"{where}{what}"
