"""Giving memory back before an out-of-memory retry (the OOM policy decides when)."""

from __future__ import annotations

import gc
import sys

__all__ = ["free_memory"]


def free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # only if a learned representation already imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
