"""Built-in representation types; each module registers its classes on import.

The import below is the one list of them: the registry imports this package for its side effect, and
nothing imports names from it, so there is no `__all__` to keep in step.
"""

from . import (  # noqa: F401  (imported to register their types)
    binary_mask,
    depth_anything,
    depth_dpt,
    depth_marigold,
    edges_canny,
    edges_dexined,
    edges_hed,
    external,
    generalized_boundaries,
    halftone,
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
    sift,
    threshold,
)
