"""Drop-in support for the original VRE (video-representations-extractor 1.18.6): its configs load as they are
(mapped onto vre-fast's through the table in `table.py`), and the output directories it wrote are read and
resumed (`outputs.py`)."""

from .translate import looks_like_vre, resolve_interpolations, translate_vre_config, vre_storage

__all__ = ["looks_like_vre", "resolve_interpolations", "translate_vre_config", "vre_storage"]
