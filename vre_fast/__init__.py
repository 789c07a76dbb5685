"""vre-fast: video -> graph of per-frame representations, stored resumably or streamed.

The public names are imported on first use (PEP 562), so `vre-fast --help` and tools that need one
corner of the package do not pay for numba, OpenCV and the representation registry up front.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "RepresentationCfg": "._cfg", "RunCfg": "._cfg",
    "load_config": "._config_loader", "parse_config": "._config_loader",
    "list_representations": "._registry", "register_representation": "._registry", "load_plugins": ".plugins",
    "ConfigError": ".errors", "GraphError": ".errors", "RepresentationError": ".errors", "StoreError": ".errors",
    "VideoError": ".errors", "VreError": ".errors",
    "ComputeBatch": ".representation", "Input": ".representation", "Representation": ".representation",
    "RunOptions": ".runner", "run": ".runner",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
