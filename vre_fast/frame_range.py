"""`--frames A..B`: the one frame-range syntax of the CLI and the API (no heavy imports: the CLI's
argument parser uses it)."""

from __future__ import annotations

__all__ = ["parse_frames"]


def parse_frames(text: str) -> tuple[int | None, int | None]:
    """'A..B' (B excluded), 'A..', '..B' or a single frame 'N'."""
    try:
        if ".." not in text:
            n = int(text)
            return n, n + 1
        a, b = text.split("..", 1)
        start, stop = (int(a) if a else None), (int(b) if b else None)
    except ValueError:
        raise ValueError(f"--frames expects A..B (B excluded), A.., ..B or N; got {text!r}") from None
    if (start is not None and start < 0) or (start is not None and stop is not None and stop <= start):
        raise ValueError(f"--frames {text!r} is an empty or negative range")
    return start, stop
