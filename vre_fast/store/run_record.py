"""OUT/.logs/run-<id>.json: who ran what, when, and how it went."""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes

__all__ = ["RunRecord", "new_run_id"]


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunRecord:
    run_id: str
    argv: list[str]
    video: str
    config_hash: str
    config: str
    frames_requested: list[int]  # [start, stop)
    host: str = field(default_factory=socket.gethostname)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    status: str = "running"  # running | completed | failed | interrupted
    error: str | None = None
    representations: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)  # busy seconds per stage, wall, queue depths
    frames_done: int = 0
    frames_failed: int = 0

    def path(self, out_dir: Path) -> Path:
        return out_dir / ".logs" / f"run-{self.run_id}.json"

    def save(self, out_dir: Path) -> None:
        (out_dir / ".logs").mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["started_iso"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started))
        if self.ended is not None:
            data["ended_iso"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.ended))
        atomic_write_bytes(self.path(out_dir), json.dumps(data, indent=1).encode())
