"""Out-of-memory policy: recognise an OOM from any backend and give memory back before a retry.

The executor halves a representation's batch size on an OOM and retries the same frames (see
batch.py); this file only says what an OOM looks like and how to free memory.
"""

from __future__ import annotations

import gc
import sys

__all__ = ["free_memory", "is_out_of_memory"]

_MESSAGES = ("out of memory", "failed to allocate memory", "cudaerrormemoryallocation")


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's (CUDA) OutOfMemoryError, or a backend error that says it ran out of memory."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return any(m in str(exc).lower() for m in _MESSAGES)


def free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # only if a learned representation already imported it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
