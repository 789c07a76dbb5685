"""Built-in representation types; each module registers its classes on import."""

from . import (
    binary_mask,
    depth_anything,
    depth_dpt,
    depth_marigold,
    edges_canny,
    edges_dexined,
    edges_hed,
    external,
    hsv,
    mask_vote,
    normals_svd,
    optical_flow_classical,
    optical_flow_raft,
    optical_flow_rife,
    rgb,
    safe_landing,
    segmentation_selfie,
    semantic_mapper,
    semantic_mask2former,
    semantic_safeuav,
    semantic_vote,
    threshold,
)

__all__ = ["binary_mask", "depth_anything", "depth_dpt", "depth_marigold", "edges_canny", "edges_dexined",
           "edges_hed", "external", "hsv", "mask_vote", "normals_svd", "optical_flow_classical", "optical_flow_raft",
           "optical_flow_rife",
           "rgb", "safe_landing", "segmentation_selfie", "semantic_mapper", "semantic_mask2former", "semantic_safeuav",
           "semantic_vote", "threshold"]
