"""Side virtual environments for the benchmarks that compare with another tool (made once, then reused)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["side_venv"]


def side_venv(path: Path, probe: str, installs: list[list[str]]) -> Path:
    """The venv's python once `import <probe>` works there; otherwise creates it and runs each pip install."""
    python = path / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", f"import {probe}"], capture_output=True).returncode == 0:
        return python
    print(f"installing into {path} (once): {'; '.join(' '.join(i) for i in installs)}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    for args in installs:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True)
    return python
