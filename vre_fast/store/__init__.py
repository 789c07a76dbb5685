"""The output directory: per-frame files, per-representation metadata, run records."""

from .atomic import atomic_write_bytes
from .frames import FrameFiles
from .metadata import RepresentationMetadata, rebuild_metadata
from .run_record import RunRecord

__all__ = ["FrameFiles", "RepresentationMetadata", "RunRecord", "atomic_write_bytes", "rebuild_metadata"]
