"""LearnedFlow: an expert that maps a pair of frames to optical flow, t -> t + delta.

Stored like `optical_flow_classical`: float32 (H, W, 2) in fractions of the image width and height, so the
maps do not depend on the resolution the network ran at. VRE's flow parameters:
- `delta` (default 1): the pair is frames t and t + delta, clipped to the video, as VRE clips it (the last
  `delta` frames pair with the last frame, their flow is the network's on two equal frames; a negative delta
  looks back and the first frames pair with frame 0);
- `compute_backward_flow` (default false): also the flow t + delta -> t, the network run on the swapped pair,
  stored after the forward flow: (H, W, 4), forward in channels 0-1, backward in 2-3 (pictures show the
  forward flow). VRE 1.18 declares the parameter but refuses true; both pairs go through one network batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import colormaps
from ..representation import ComputeBatch
from ._learned import LearnedParams, LearnedRepresentation

__all__ = ["FlowParams", "LearnedFlow"]


@dataclass(frozen=True)
class FlowParams(LearnedParams):
    """Every flow expert's parameters; an expert subclasses it to set its default `variant`."""

    delta: int = 1
    compute_backward_flow: bool = False

    def __post_init__(self) -> None:
        if self.delta == 0:
            raise ValueError("delta: must not be 0 (the flow from a frame to itself)")


class LearnedFlow(LearnedRepresentation):
    needs_next_frame = True
    output_kind = "flow"
    storage_dtype = np.float32
    later_parameters = {**LearnedRepresentation.later_parameters, "delta": 1, "compute_backward_flow": False}

    @property
    def next_frame_delta(self) -> int:
        return self.params.delta

    def pixel_flow(self, outputs: tuple[np.ndarray, ...]) -> np.ndarray:
        """The network's outputs -> (B, 2, h, w) flow from the pair's first frame to its second, in pixels of
        the network input."""
        raise NotImplementedError

    def network_input(self, batch: ComputeBatch) -> np.ndarray:
        assert batch.next_frames is not None
        first, second = self.model_input(batch.frames), self.model_input(batch.next_frames)
        pairs = np.concatenate([first, second], axis=1)
        if self.params.compute_backward_flow:  # the swapped pairs after the forward ones, in the same batch
            pairs = np.concatenate([pairs, np.concatenate([second, first], axis=1)], axis=0)
        return pairs

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        flow = self.pixel_flow(outputs)
        h, w = flow.shape[2:]
        flow = (flow.transpose(0, 2, 3, 1) / np.array([w, h], np.float32)).astype(np.float32)
        if self.params.compute_backward_flow:
            forward, backward = np.split(flow, 2, axis=0)
            flow = np.concatenate([forward, backward], axis=-1)
        return flow

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.flow_to_image(decoded[..., :2])
