"""Where an expert's weights come from, and finding them offline. Nothing is ever downloaded.

A weight file is looked for, in order: the representation's `weights` parameter (a path), a file shipped
inside an installed package (found without importing it), the vre-fast cache (~/.cache/vre-fast or
$VRE_FAST_CACHE), torch hub's checkpoint cache ($TORCH_HOME/hub/checkpoints: where torchvision keeps what
it downloaded), the HuggingFace hub cache (HF_HUB_CACHE / ~/.cache/huggingface/hub).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = ["PretrainedCfg", "cache_dir", "file_sha256", "resolve_weights"]


@dataclass(frozen=True)
class PretrainedCfg:
    # weight source
    tag: str  # "arch.variant", e.g. "edges_hed.bsds500"
    filename: str | None = None  # None: random initialisation (test variants of the real architecture)
    sha256: str | None = None  # the file's SHA-256, or its leading hex digits (torch hub names carry 8)
    package_file: tuple[str, str] | None = None  # (installed package, path inside it)
    hf_repo: str | None = None  # "org/name" in the HuggingFace hub cache
    how_to_get: str = ""  # shown when the file is missing
    # input
    input_size: tuple[int, int] | None = None  # (height, width) the network runs at; None: the frame's
    multiple_of: int = 1  # round the frame size to this when input_size is None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    # metadata
    license: str = ""
    source: str = ""

    @property
    def has_weights(self) -> bool:
        return self.filename is not None


def cache_dir() -> Path:
    return Path(os.environ.get("VRE_FAST_CACHE", Path.home() / ".cache" / "vre-fast"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.exists() else None


def _torch_hub_file(filename: str) -> Path:
    root = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"))
    return root / "hub" / "checkpoints" / filename


def _hf_cache_file(repo: str, filename: str) -> Path | None:
    root = Path(os.environ.get("HF_HUB_CACHE", Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
                               / "hub"))
    snapshots = root / f"models--{repo.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob(f"*/{filename}")) if snapshots.is_dir() else []
    return found[-1] if found else None


def resolve_weights(cfg: PretrainedCfg, explicit: str | None, key: str) -> Path:
    """The weight file of `cfg`, checked against its hash; a clear error says where to put it."""
    assert cfg.filename is not None
    candidates: list[Path | None] = []
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ConfigError(f"{key}.weights: {path} does not exist")
        candidates.append(path)
    if cfg.package_file:
        candidates.append(_package_file(*cfg.package_file))
    candidates += [cache_dir() / cfg.filename, _torch_hub_file(cfg.filename)]
    if cfg.hf_repo:
        candidates.append(_hf_cache_file(cfg.hf_repo, cfg.filename))
    path = next((c for c in candidates if c is not None and c.exists()), None)
    if path is None:
        raise ConfigError(f"{key}: weights '{cfg.filename}' for {cfg.tag} not found. Put the file at "
                          f"{cache_dir() / cfg.filename} or pass parameters.weights: PATH"
                          + (f" ({cfg.how_to_get})" if cfg.how_to_get else ""))
    if cfg.sha256 and not explicit and not file_sha256(path).startswith(cfg.sha256):
        raise ConfigError(f"{key}: {path} does not match the expected SHA-256 of {cfg.tag} ({cfg.sha256[:12]}...): "
                          f"a different or corrupt file")
    return path
