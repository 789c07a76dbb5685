"""What the toolchain is told about a network: an `ExportSpec`, built by the runtime, so `export/` never
reads a representation, a config or a source (the dependency runs runtime -> export only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ExportError", "ExportSpec"]


class ExportError(Exception):
    """An export or engine build failed or was refused (an ONNX export that differs from torch eager, a
    model that does not survive INT8, a graph TensorRT cannot parse). The caller maps it onto its own
    user-facing error type: `export/` knows nothing of the runtime's."""


@dataclass(frozen=True)
class ExportSpec:
    """One network at one input size, as the cache keys and validates it. Built by
    `LearnedRepresentation.export_spec`; the factories are called only when something is (re)built."""

    # identity: what the cache key hashes, and how messages and the cache folder name the network
    name: str  # the graph node's name, for messages
    family: str  # the representation type: the cache folder's prefix
    tag: str  # "arch.variant", for messages
    definition: Mapping[str, Any]  # JSON-able: everything but the weights that shapes the network's function
    weights_sha256: str  # the weight file's hash, or that of the seeded parameters of a random variant
    # input
    input_hw: tuple[int, int]  # (height, width) the network runs at; the batch axis stays dynamic
    sample_input: Callable[[], np.ndarray]  # validation input (B, C, h, w) float32, as the network gets it
    # network
    load_model: Callable[[], Any]  # the torch.nn.Module with its weights, in eval mode
    # validation: how far ONNX Runtime may stray from torch eager, as a fraction of the output scale
    onnx_tolerance: float  # on the largest difference
    int8_tolerance: float  # on the mean difference of an INT8 quantization
    output_range: float | None  # the outputs' known range; None: the largest output on the validation input
    # where builds are kept: <cache_dir>/engines/<family>-<key hash>/
    cache_dir: Path
