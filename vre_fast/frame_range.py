"""`--frames A..B`: the one frame-range syntax of the CLI and the API (no heavy imports: the CLI's
argument parser uses it)."""

from __future__ import annotations

__all__ = ["describe_frames", "parse_frame_list", "parse_frames"]


def parse_frames(text: str) -> tuple[int | None, int | None]:
    """'A..B' (B excluded), 'A..', '..B' or a single frame 'N'."""
    try:
        if ".." not in text:
            start = int(text)
            stop = start + 1
        else:
            a, b = text.split("..", 1)
            start, stop = (int(a) if a else None), (int(b) if b else None)
    except ValueError:
        raise ValueError(f"--frames expects A..B (B excluded), A.., ..B or N; got {text!r}") from None
    if (start is not None and start < 0) or (stop is not None and stop <= (start or 0)):
        raise ValueError(f"--frames {text!r} is an empty or negative range")
    return start, stop


def parse_frame_list(tokens: list[str]) -> tuple[int, ...]:
    """`--frames 5 8 22` (VRE's list form); each item a frame N or a closed range A..B (B excluded). The frames
    ascending, each once."""
    frames: set[int] = set()
    for token in tokens:
        start, stop = parse_frames(token)
        if start is None or stop is None:
            raise ValueError(f"--frames {' '.join(tokens)}: an open range ({token!r}) must be the only item; in a "
                             f"list give frames N or closed ranges A..B")
        frames.update(range(start, stop))
    return tuple(sorted(frames))


def describe_frames(frames: tuple[int, ...] | list[int], most: int = 8) -> str:
    """A frame list as a person reads it: '5 8 22', or '0 1 2 ... 998 999 (1000 frames)' when long."""
    if len(frames) <= most:
        return " ".join(map(str, frames))
    return (f"{' '.join(map(str, frames[:most // 2]))} ... {' '.join(map(str, frames[-(most // 2):]))} "
            f"({len(frames)} frames)")
