"""vre-fast: video -> graph of per-frame representations, stored resumably or streamed."""

__version__ = "0.1.0"

from ._cfg import RepresentationCfg, RunCfg  # noqa: E402
from ._config_loader import load_config, parse_config  # noqa: E402
from ._registry import list_representations, register_representation  # noqa: E402
from .errors import ConfigError, GraphError, RepresentationError, StoreError, VideoError, VreError  # noqa: E402
from .representation import ComputeBatch, Input, Representation  # noqa: E402
from .runner import RunOptions, run  # noqa: E402

__all__ = ["ComputeBatch", "ConfigError", "GraphError", "Input", "Representation", "RepresentationCfg",
           "RepresentationError", "RunCfg", "RunOptions", "StoreError", "VideoError", "VreError",
           "list_representations", "load_config", "parse_config", "register_representation", "run"]
