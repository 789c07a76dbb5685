#!/usr/bin/env bash
# The main job on a real clip: RGB, HSV, Canny edges and optical flow for 60 frames, npz + png.
set -euo pipefail
cd "$(dirname "$0")/.."
video=examples/bikes.mp4
[ -f "$video" ] || python examples/get_example_video.py "$video"
vre-fast run "$video" --config configs/procedural.yaml -o examples/out_bikes --frames 0..60 \
    --output-formats npz,png "$@"
vre-fast collage examples/out_bikes -o examples/out_bikes/collage.mp4
echo "outputs in examples/out_bikes/<representation>/{npz,png}/, side by side in examples/out_bikes/collage.mp4;"
echo "run record in examples/out_bikes/.logs/"
