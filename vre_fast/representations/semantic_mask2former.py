"""Mask2Former semantic segmentation (transformers' Mask2FormerForUniversalSegmentation), as in VRE's
Dronescapes2 graph.

The network gives per-query class scores and mask logits; their product summed over queries is the
per-class probability map (transformers' semantic post-processing), at a quarter of the input size.
That map is upsampled bilinearly and its argmax stored as a uint8 class map (or, with `probabilities: true`,
the map divided by its sum over the classes, (H, W, C) float16; VRE's `disk_data_argmax: false` stores the map
unnormalised); class names come from the checkpoint's config (`id2label`), so semantic_mapper and
binary_mask can name classes. Weights: see _transformers (HuggingFace-format folder, offline).

`r50_mapillary` is VRE's model 49189528_1 (Mask2Former R50, Mapillary Vistas; no HuggingFace-format release
exists): VRE's own checkpoint 49189528_1.ckpt, converted on load into transformers' Mask2Former with a ResNet
backbone (models/mask2former_vre), its 65 class names VRE's. It is found where VRE keeps it once VRE has
fetched it (vre_repository/semantic_segmentation/mask2former/weights/, when VRE is installed), in the vre-fast
cache, or at `weights:`. Its SHA-256 is not pinned (it could not be fetched here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import cv2
import numpy as np

from .._pretrained import PretrainedCfg, resolve_weights
from .._registry import register_representation
from ..errors import ConfigError
from ..representation import ComputeBatch
from ._classes import ClassMapExpert
from ._learned import LearnedParams
from ._transformers import IMAGENET_MEAN, IMAGENET_STD, TransformersExpert, hf_cfg, tensor_module

_STAGES = ["stage1", "stage2", "stage3", "stage4"]
_VRE_R50 = PretrainedCfg(
    tag="semantic_mask2former.r50_mapillary", filename="49189528_1.ckpt",
    package_file=("vre_repository", "semantic_segmentation/mask2former/weights/49189528_1.ckpt"),
    how_to_get="VRE's checkpoint of its model 49189528_1 (VRE downloads it into vre_repository/"
               "semantic_segmentation/mask2former/weights/ on first use; or copy it there)",
    multiple_of=32, mean=IMAGENET_MEAN, std=IMAGENET_STD, license="MIT (the Mask2Former model zoo)",
    source="VRE 1.18's Mask2Former R50 Mapillary Vistas semantic checkpoint, converted on load")


@dataclass(frozen=True)
class Mask2FormerParams(LearnedParams):
    variant: str = "swin_large_mapillary"
    probabilities: bool = False  # store the class probabilities, not their argmax


def _m2f_cfg(tag: str, repo: str | None, **kw: Any) -> Any:
    return replace(hf_cfg(tag, repo, 0, **kw), input_size=None, multiple_of=32)  # the frame's size, rounded


@register_representation("semantic_mask2former")
class SemanticMask2Former(ClassMapExpert, TransformersExpert):
    Params = Mask2FormerParams
    postprocess_params = ("probabilities",)
    onnx_tolerance = 1e-4
    default_cfgs = {
        "swin_large_mapillary": _m2f_cfg("semantic_mask2former.swin_large_mapillary",
                                         "facebook/mask2former-swin-large-mapillary-vistas-semantic", license="MIT"),
        "swin_large_coco": _m2f_cfg("semantic_mask2former.swin_large_coco",
                                    "facebook/mask2former-swin-large-coco-panoptic", license="MIT"),
        "r50_mapillary": _VRE_R50,
        "swin_large_random": _m2f_cfg("semantic_mask2former.swin_large_random", None,
                                      source="Swin-L Mask2Former's architecture, randomly initialised (benchmarks)"),
        "test": _m2f_cfg("semantic_mask2former.test", None,
                         source="a tiny random configuration of the same architecture (tests)"),
    }
    random_configs = {
        # Swin-L (192 wide, depths 2-2-18-2, window 12) with Mapillary's 65 classes; the heads' defaults
        "swin_large_random": {"backbone_config": {"embed_dim": 192, "depths": [2, 2, 18, 2],
                                                  "num_heads": [6, 12, 24, 48], "window_size": 12,
                                                  "image_size": 384, "out_features": _STAGES},
                              "num_labels": 65},
        "test": {"backbone_config": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2],
                                     "window_size": 4, "image_size": 64, "out_features": _STAGES},
                 "num_labels": 8, "hidden_dim": 32, "num_queries": 10, "encoder_layers": 1,
                 "decoder_layers": 2, "dim_feedforward": 64, "encoder_feedforward_dim": 64, "mask_feature_size": 32,
                 "feature_size": 32, "num_attention_heads": 2, "common_stride": 4},
    }

    @cached_property
    def classes(self) -> tuple[str, ...] | None:
        """r50_mapillary: VRE's Mapillary Vistas names (its checkpoint has none). The others: from the
        checkpoint's config.json (read once: make_image asks for every frame); None (unknown)
        while the weights are not in place, so a graph that names classes by id still builds and the
        missing weights are reported when they are needed."""
        if self.params.variant == "r50_mapillary":
            from ..models.mask2former_vre import MAPILLARY_VISTAS_CLASSES

            return MAPILLARY_VISTAS_CLASSES
        if not self.pretrained_cfg.has_weights:
            return tuple(f"class{i}" for i in range(self.random_configs[self.params.variant]["num_labels"]))
        try:
            config = self.hf_config()
        except (ConfigError, FileNotFoundError):
            return None
        labels = config["id2label"]
        return tuple(labels[str(i)] if str(i) in labels else labels[i] for i in range(len(labels)))

    def validate(self) -> None:
        super().validate()
        if self.classes is not None and len(self.classes) > 255:
            raise ValueError(f"{len(self.classes)} classes do not fit a uint8 class map")

    def make_config(self, **kwargs: Any) -> Any:
        from transformers import Mask2FormerConfig, SwinConfig

        return Mask2FormerConfig(**{**kwargs, "backbone_config": SwinConfig(**kwargs["backbone_config"])})

    def load_model(self) -> Any:
        """VRE's R50 checkpoint through the converter; the HuggingFace-format variants as the base loads them."""
        if self.params.variant != "r50_mapillary":
            return super().load_model()
        from ..models.mask2former_vre import load_vre_checkpoint

        path = resolve_weights(_VRE_R50, self.params.weights, f"representations.{self.name}.parameters")
        net = load_vre_checkpoint(path)
        if net.config.num_labels != len(self.classes):
            raise ValueError(f"{path}: {net.config.num_labels} classes; {self.params.variant} has Mapillary "
                             f"Vistas' {len(self.classes)}")
        return self.wrap(net).eval()

    def model_class(self) -> Any:
        from transformers import Mask2FormerForUniversalSegmentation

        return Mask2FormerForUniversalSegmentation

    def wrap(self, net: Any) -> Any:
        return tensor_module(net, _class_probabilities)

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        scores = outputs[0]  # (B, C, h/4, w/4)
        h, w = self.input_size(batch.frames.shape[1:3])
        up = np.empty((len(scores), h, w, scores.shape[1]), np.float32)
        for i, p in enumerate(scores):
            up[i] = cv2.resize(np.ascontiguousarray(p.transpose(1, 2, 0)), (w, h),
                               interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        if self.params.probabilities:  # a positive scale per pixel: the argmax stays that of the scores
            total = up.sum(-1, keepdims=True)
            up = np.where(total > 0, up / np.maximum(total, np.finfo(np.float32).tiny), np.float32(1 / up.shape[-1]))
        return self.class_output(up)


def _class_probabilities(out: Any) -> Any:
    """transformers' semantic post-processing: sum over queries of class probability x mask probability."""
    import torch

    classes = out.class_queries_logits.softmax(-1)[..., :-1]  # the last class is "no object"
    return torch.einsum("bqc,bqhw->bchw", classes, out.masks_queries_logits.sigmoid())
