"""Out-of-memory policy: what to do when computing a batch raised. It recognises an OOM from any backend
(MemoryError, torch's OutOfMemoryError, a backend message) and decides; the executor frees memory and
retries, splits or fails as told."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Fail", "OomPolicy", "RetryHalved", "Split", "is_out_of_memory"]

_MESSAGES = ("out of memory", "failed to allocate memory", "cudaerrormemoryallocation")


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return any(m in str(exc).lower() for m in _MESSAGES)


@dataclass(frozen=True)
class RetryHalved:
    """Free memory, use `batch_size` for good, compute the same frames again."""

    batch_size: int


@dataclass(frozen=True)
class Split:
    """Compute the frames one by one, so only the failing frame is lost and it can be named."""


@dataclass(frozen=True)
class Fail:
    """The frame failed: the error policy decides what that means."""


class OomPolicy:
    def decide(self, exc: BaseException, batch_frames: int) -> RetryHalved | Split | Fail:
        if batch_frames == 1:
            return Fail()
        if is_out_of_memory(exc):
            return RetryHalved(batch_frames // 2)
        return Split()
