"""One node on one batch: compute, check, resize to the output size, encode, decode.

Shared by the batch executor and the streaming graph, so a streamed frame and a stored frame go
through exactly the same steps.
"""

from __future__ import annotations

import numpy as np

from ..representation import ComputeBatch, Representation
from .resize import resize_batch

__all__ = ["run_representation"]


def run_representation(rep: Representation, batch: ComputeBatch, output_size: tuple[int, int],
                       decode: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(stored, decoded) outputs of `rep` for `batch`: what is written to disk and what dependants (and
    pictures) see; decoded is None when the caller says nobody needs it (widening float16 back to float32
    costs about as much as a simple kernel)."""
    raw = rep.compute(batch)
    if not isinstance(raw, np.ndarray) or raw.ndim < 3 or len(raw) != len(batch.indices):
        raise ValueError(f"compute returned {type(raw).__name__} {getattr(raw, 'shape', '')} for a batch of "
                         f"{len(batch.indices)} frames; expected (B, H, W[, C])")
    stored = rep.encode(resize_batch(raw, output_size, rep.interpolation))
    if rep.output_dtype is not None and stored.dtype != rep.output_dtype:
        if np.issubdtype(stored.dtype, np.floating) != np.issubdtype(rep.output_dtype, np.floating):
            raise ValueError(f"output_dtype {rep.output_dtype.name} cannot hold '{rep.name}''s {stored.dtype.name} "
                             f"outputs (a float and an integer dtype); choose one of the same kind")
        stored = stored.astype(rep.output_dtype)
    return stored, rep.decode(stored) if decode else None
