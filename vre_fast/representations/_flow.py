"""LearnedFlow: an expert that maps frames t and t+1 to optical flow t -> t+1.

Stored like `optical_flow_classical`: float32 (H, W, 2) in fractions of the image width and height, so the
maps do not depend on the resolution the network ran at.
"""

from __future__ import annotations

import numpy as np

from ..kernels import colormaps
from ..representation import ComputeBatch
from ._learned import LearnedRepresentation

__all__ = ["LearnedFlow"]


class LearnedFlow(LearnedRepresentation):
    needs_next_frame = True
    output_kind = "flow"
    storage_dtype = np.float32

    def pixel_flow(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """The network's outputs -> (B, 2, h, w) flow t -> t+1 in pixels of the network input."""
        raise NotImplementedError

    def network_input(self, batch: ComputeBatch) -> np.ndarray:
        assert batch.next_frames is not None
        return np.concatenate([self.model_input(batch.frames), self.model_input(batch.next_frames)], axis=1)

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        flow = self.pixel_flow(outputs)
        h, w = flow.shape[2:]
        return (flow.transpose(0, 2, 3, 1) / np.array([w, h], np.float32)).astype(np.float32)

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.flow_to_image(decoded)
