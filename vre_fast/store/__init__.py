"""The output directory: per-frame files, per-representation metadata, run records, its source video."""

from .atomic import atomic_write_bytes
from .clear import clear_representation
from .dataset import DatasetSources, SourceIdentity, representation_dirs, sweep_temporaries
from .frames import FrameFiles
from .metadata import RepresentationMetadata, rebuild_metadata
from .run_record import RunRecord, close_abandoned_runs, held_while_running

__all__ = ["DatasetSources", "FrameFiles", "RepresentationMetadata", "RunRecord", "SourceIdentity",
           "atomic_write_bytes", "clear_representation", "close_abandoned_runs", "held_while_running",
           "rebuild_metadata", "representation_dirs", "sweep_temporaries"]
