"""Reading a dataset back for training: `VREDataset` (a torch Dataset), speculative prefetch, missing-data
policies, normalisation statistics, derived representations, WebDataset shards, `vre-fast info`.

Names are imported on first use (PEP 562): `vre-fast info` and `export-shards` use this package without
torch, which only the Dataset and the prefetcher need.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "VREDataset": ".dataset", "Prefetcher": ".prefetch",
    "MISSING_POLICIES": ".missing", "MissingPolicy": ".missing", "ItemSpec": ".missing",
    "NORMALIZATIONS": ".normalization", "ChannelStatistics": ".statistics",
    "ExportReport": ".shards", "export_shards": ".shards", "sample_key": ".shards",
    "dataset_info": ".info", "format_info": ".info", "open_store": "._stores",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
