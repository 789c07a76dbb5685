"""Built-in representation types; each module registers its classes on import."""

from . import (
    binary_mask,
    edges_canny,
    external,
    hsv,
    normals_svd,
    optical_flow_classical,
    rgb,
    safe_landing,
    semantic_mapper,
)

__all__ = ["binary_mask", "edges_canny", "external", "hsv", "normals_svd", "optical_flow_classical", "rgb",
           "safe_landing", "semantic_mapper"]
