"""Deflate for compressed npz on real frames: zlib (np.savez_compressed's, VRE's) against libdeflate (vre-fast's
levels 2-9) and ISA-L (vre-fast's level 1), time and size, on the frames vre-fast stores.

    python bench/deflate_levels.py [--size 960x540] [--frames 6]

Frames: the export benchmark's clip (bench/.cache/clips/bikes-WxH-300.mp4, made by bench/export_formats.py; else
examples/bikes.mp4 resized), every 40th of the first 240; RGB (uint8) and HSV as float16 (vre-fast's storage) and
float32 (VRE's default). Raw deflate streams, as a zip member holds them; CPU ms per frame (one thread) and the
compressed size as a share of the raw bytes. Every stream is inflated again with zlib and checked equal.
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path

import av
import cv2
import deflate
import numpy as np
from _frames import EXAMPLE
from isal import isal_zlib

from vre_fast.kernels.hsv import hsv_numba

CLIPS = Path(__file__).parent / ".cache" / "clips"


def frames(size: tuple[int, int], count: int) -> list[np.ndarray]:
    clip = CLIPS / f"bikes-{size[0]}x{size[1]}-300.mp4"
    with av.open(str(clip if clip.exists() else EXAMPLE)) as container:
        decoded = [f.to_ndarray(format="rgb24") for _, f in zip(range(240), container.decode(video=0))]
    picked = decoded[5::max(1, 240 // count)][:count]
    return [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) if f.shape[1::-1] != size else f for f in picked]


def zlib_like(module: object, level: int):  # noqa: ANN201 - a compressor
    def compress(data: memoryview) -> bytes:
        c = module.compressobj(level, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    return compress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    size = tuple(map(int, args.size.split("x")))
    rgbs = frames(size, args.frames)
    hsv16 = [hsv_numba(f, np.float16) for f in rgbs]
    data = {"rgb uint8": rgbs, "hsv float16": hsv16, "hsv float32": [h.astype(np.float32) for h in hsv16]}
    codecs = {"zlib 6 (VRE, np.savez_compressed)": zlib_like(zlib, 6), "ISA-L 1 (vre-fast level 1)":
              zlib_like(isal_zlib, 1)}
    codecs |= {f"libdeflate {lvl} (vre-fast level {lvl})": (lambda d, lvl=lvl: deflate.deflate_compress(d, lvl))
               for lvl in (4, 6, 9)}
    print(f"{len(rgbs)} frames at {args.size}; CPU ms per frame, one thread; size = compressed / raw\n")
    print("| data | deflate | ms/frame | MB/s | size |")
    print("|---|---|---|---|---|")
    for kind, arrays in data.items():
        for name, compress in codecs.items():
            start, raw, packed = time.process_time(), 0, 0
            outs = [compress(memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))) for a in arrays]
            seconds = (time.process_time() - start) / len(arrays)
            for a, out in zip(arrays, outs):
                assert zlib.decompress(out, -15) == a.tobytes()
                raw, packed = raw + a.nbytes, packed + len(out)
            print(f"| {kind} | {name} | {seconds * 1e3:.1f} | {raw / len(arrays) / seconds / 1e6:.0f} | "
                  f"{packed / raw:.4f} |", flush=True)


if __name__ == "__main__":
    main()
