"""Typed run configuration: YAML is parsed into these frozen records; raw dicts stop at the loader."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BINARY_FORMATS", "IMAGE_FORMATS", "OUTPUT_DTYPES", "OUTPUT_FORMATS", "RepresentationCfg", "RunCfg",
           "stable_hash"]

BINARY_FORMATS = ("npz", "npy")  # the stored array (read back by dependants, collage, the reader)
IMAGE_FORMATS = ("png", "jpg")  # a picture of it (make_image)
OUTPUT_FORMATS = BINARY_FORMATS + IMAGE_FORMATS
OUTPUT_DTYPES = ("float16", "float32", "uint8", "uint16")


def stable_hash(obj: Any) -> str:
    """Hash of a JSON-able object that does not depend on key order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RepresentationCfg:
    name: str
    type: str
    # graph: a list (filled into the type's inputs in order) or a {input: dependency name} mapping
    dependencies: tuple[str, ...] | dict[str, str] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    # storage
    output_formats: tuple[str, ...] = ("npz",)
    compress: int = 0  # npz deflate level: 0 stored, 1 (fastest) .. 9 (smallest); `true` is 6
    output_dtype: str | None = None  # the stored dtype (OUTPUT_DTYPES); None: the representation's own
    jpeg_quality: int = 75  # of jpg pictures (75: PIL's default, so VRE's)
    output_size: tuple[int, int] | None = None  # (height, width); None: the video's resolution
    # execution
    batch_size: int = 1
    device: str = "cpu"

    def dependency_names(self) -> tuple[str, ...]:
        deps = self.dependencies
        return tuple(deps.values()) if isinstance(deps, dict) else tuple(deps)


@dataclass(frozen=True)
class GroupCfg:
    """`groups: {name: {device: ..., representations: [...]}}`: representations run together on a device,
    concurrently with the other groups (VRE's Strategy 2); checked against the graph by `scale.groups`."""

    name: str
    representations: tuple[str, ...]
    device: str | None = None  # None: each representation's own


@dataclass(frozen=True)
class RunCfg:
    representations: tuple[RepresentationCfg, ...]
    config_hash: str
    source: str = "<dict>"
    plugins: tuple[str, ...] = ()  # plugin files (`plugins:`), as paths from the current directory
    groups: tuple[GroupCfg, ...] = ()  # empty: one group of everything

    def by_name(self) -> dict[str, RepresentationCfg]:
        return {r.name: r for r in self.representations}
