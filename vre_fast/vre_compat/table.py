# ruff: noqa: E501  (one line per VRE type, however long: the table stays one glance)
"""VRE 1.18.6 representation types -> vre-fast types: THE table. Adding a mapping is one line in `VRE_TYPES`.

Each line says, for one VRE `type:`, which vre-fast type computes the same thing and how the VRE
`parameters:` map onto its parameters. A VRE parameter is one of:

- `"name"`            renamed to our parameter `name`, value unchanged;
- `Values("name", {vre value: our value})`  renamed, its value translated (a value not in the dict is an
                      error naming it, e.g. a variant vre-fast does not have);
- `Only(value)`       accepted only at this value (what vre-fast always does), then dropped;
- `Unsupported(why)`  a VRE parameter vre-fast has no equivalent for: any value is refused, with `why`;
- `Ignored(why)`      a VRE parameter VRE itself never reads: any value is accepted and dropped.

A VRE parameter the line does not name is an error. `set` fixes our parameters (VRE's behaviour where ours
has a choice), `deps="rgb"` marks VRE types that take the RGB representation as their dependency where
vre-fast reads the decoded frames, and `dtype` says whether VRE's `output_dtype` (float32 unless set) is
carried over (`"vre"`: ours stores floats too) or ours is kept (`"ours"`: ours stores integers).
`resumable` is True only where the array vre-fast stores was checked equal to VRE's (bench/vre_parity.py):
only then does `vre-fast run` add frames to a directory VRE wrote. A type missing here (or mapped to None)
is reported as having no vre-fast equivalent, with the reason given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["VRE_TYPES", "Ignored", "Lacking", "Only", "Unsupported", "Values", "VreType"]


@dataclass(frozen=True)
class Values:
    """A VRE parameter renamed to `ours`, its values translated; a value mapped to `Lacking(why)` is refused. A
    value not in `values` goes to our parameter `other` when given (SafeUAV's `variant` may be a checkpoint path)."""

    ours: str
    values: dict[Any, Any]
    other: str | None = None


@dataclass(frozen=True)
class Lacking:
    """A VRE parameter value (a model variant, ...) vre-fast does not have."""

    why: str


@dataclass(frozen=True)
class Unsupported:
    """A VRE parameter vre-fast has no equivalent for."""

    why: str


@dataclass(frozen=True)
class Ignored:
    """A VRE parameter VRE records but never reads (so no value changes what it computes)."""

    why: str


@dataclass(frozen=True)
class Only:
    """A VRE parameter vre-fast always behaves as at `value` (so it is dropped); any other value is refused."""

    value: Any
    why: str = ""


@dataclass(frozen=True)
class VreType:
    ours: str | None  # None: no vre-fast equivalent (`why` says so)
    params: dict[str, str | Values | Only | Unsupported | Ignored] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    deps: Literal["keep", "rgb"] = "keep"
    dtype: Literal["vre", "ours"] = "vre"
    resumable: bool = False
    why: str = ""  # ours is None: why there is no equivalent; else why it is not resumable, where known


# VRE's disk_data_argmax: false stores per-class scores (float16), vre-fast's probabilities: true per-class
# probabilities (normalised over the classes; the same argmax)
_PROBABILITIES = Values("probabilities", {True: False, False: True})
_NOT_YET = "no vre-fast representation yet"

# VRE type                                        vre-fast type and how VRE's parameters map onto it
VRE_TYPES: dict[str, VreType] = {
    "color/rgb":                                  VreType("rgb", dtype="ours", resumable=True),
    "color/hsv":                                  VreType("hsv", deps="rgb", resumable=True),
    "edges/canny":                                VreType("edges_canny", {"threshold1": "threshold1", "threshold2": "threshold2", "aperture_size": "aperture_size", "l2_gradient": "l2_gradient"}, dtype="ours", why="VRE stores float32 (H, W, 1) in {0, 1}, vre-fast uint8 (H, W)"),
    "edges/dexined":                              VreType("edges_dexined", set={"variant": "biped", "output": "vre"}, dtype="ours", why="VRE stores float32 in [0, 1], vre-fast uint8 (x255)"),
    "depth/dpt":                                  VreType("depth_dpt", set={"variant": "large_384", "output": "vre"}),  # VRE: DPT-Large (vitl16_384), clip(1 / x, 0, 1)
    "depth/marigold":                             VreType("depth_marigold", {"variant": Values("variant", {"marigold-lcm-v1-0": "lcm_v1_0", "marigold-v1-0": "v1_0"}), "denoising_steps": "steps", "seed": "seed", "ensemble_size": "ensemble_size", "processing_resolution": "processing_resolution"}),
    "normals/depth-svd":                          VreType("normals_svd", {"sensor_fov": "sensor_fov", "sensor_size": "sensor_size", "window_size": "window_size", "input_downsample_step": "input_downsample_step", "stride": Only(1, "vre-fast fits a plane at every pixel")}, why="VRE stores (n + 1) / 2, vre-fast the unit normal n"),
    "semantic-segmentation/mask2former":          VreType("semantic_mask2former", {"model_id": Values("variant", {"49189528_0": "swin_large_mapillary", "47429163_0": "swin_large_coco", "49189528_1": "r50_mapillary"}), "disk_data_argmax": _PROBABILITIES}, set={"probabilities": True, "postprocess": "vre"}, dtype="ours"),  # VRE's default: disk_data_argmax false; its post-processing order
    "semantic-segmentation/safeuav":              VreType("semantic_safeuav", {"variant": Values("variant", {v: Lacking(f"VRE fetches {v}.ckpt from its weights repository; vre-fast reads the checkpoint from a file: give its path as the variant, as VRE accepts") for v in ("model_150k", "model_430k", "model_1M", "model_4M")}, other="weights"), "disk_data_argmax": _PROBABILITIES}, dtype="ours"),
    "optical-flow/rife":                          VreType("optical_flow_rife", {"uhd": "uhd", "compute_backward_flow": "compute_backward_flow", "delta": "delta", "flow_delta_frames": Ignored("VRE records it but never reads it")}, set={"variant": "hdv3"}, why="VRE 1.18.6 divides the x flow by the height and the y flow by the width, and keeps half the padding; vre-fast x / width, y / height, unpadded"),
    "optical-flow/raft":                          VreType("optical_flow_raft", {"small": Values("variant", {False: "large", True: "small"}), "iters": "iterations", "inference_height": Unsupported("vre-fast runs RAFT at the frame's size (rounded to 8)"), "inference_width": Unsupported("vre-fast runs RAFT at the frame's size (rounded to 8)"), "seed": Unsupported("vre-fast's RAFT is deterministic"), "delta": "delta", "flow_delta_frames": Ignored("VRE records it but never reads it")}, why="not checked against VRE's (no weights here)"),
    "soft-segmentation/python-halftone":          VreType("halftone", {p: p for p in ("sample", "scale", "percentage", "angles", "antialias", "resolution")}),
    "soft-segmentation/generalized-boundaries":   VreType("generalized_boundaries", {p: p for p in ("use_median_filtering", "adjust_to_rgb", "max_channels")}),
    "soft-segmentation/fastsam":                  VreType(None, why=_NOT_YET),
    "descriptor/sift":                            VreType("sift", {"max_keypoints": "max_keypoints", "num_intervals": "num_intervals", "sigma": "sigma", "process_scale": "process_scale", "assumed_blur": Only(0.5, "OpenCV's SIFT fixes it"), "image_border_width": Only(5, "OpenCV's SIFT fixes it")}, why="VRE stores (N, 128) descriptors and pickled keypoints, vre-fast an (H, W) map of keypoint strength"),
}
