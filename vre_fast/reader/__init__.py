"""Reading a dataset back for training: `VREDataset` (a torch Dataset), speculative prefetch, missing-data
policies, normalisation statistics, derived representations, WebDataset shards, `vre-fast info`.

Names are imported on first use (PEP 562): `vre-fast info` and `export-shards` use this package without
torch, which only the Dataset and the prefetcher need.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VREDataset": ".dataset", "Prefetcher": ".prefetch",
    "MISSING_POLICIES": ".missing", "MissingPolicy": ".missing", "ItemSpec": ".missing",
    "NORMALIZATIONS": ".normalization", "ChannelStatistics": ".statistics",
    "ExportReport": ".shards", "export_shards": ".shards", "sample_key": ".shards",
    "dataset_info": ".info", "format_info": ".info", "open_store": "._stores",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vre_fast.reader' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
