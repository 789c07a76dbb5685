"""Runs inside a MediaPipe virtual environment (see selfie_vs_mediapipe.py): MediaPipe's own pipeline."""

import sys

import mediapipe as mp
import numpy as np

frames = np.load(sys.argv[1])
with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
    masks = [segmenter.process(f).segmentation_mask for f in frames]
np.save(sys.argv[2], np.stack(masks))
