"""Mask2Former semantic segmentation (transformers' Mask2FormerForUniversalSegmentation), as in VRE's
Dronescapes2 graph.

The network gives per-query class scores and mask logits; their product summed over queries is the
per-class probability map, whose argmax is stored as a uint8 class map (or, with `probabilities: true`, the map
divided by its sum over the classes, (H, W, C) float16; VRE's `disk_data_argmax: false` stores the map
unnormalised). `postprocess` picks where the quarter-size masks are upsampled: `transformers` (its semantic
post-processing) takes the product at a quarter of the input size and upsamples the map; `vre` (VRE's
detectron2 code, the default for r50_mapillary) upsamples the mask logits, then takes sigmoid and product at
the input size: near class borders the argmax differs (6% of the pixels of the R50 test fixture). Class names
come from the checkpoint's config (`id2label`), so semantic_mapper and binary_mask can name classes. Weights:
see _transformers (HuggingFace-format folder, offline).

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


_VRE_ORDER_DEFAULT = {"r50_mapillary"}  # the variants whose post-processing is VRE's unless told
_BAND_ELEMENTS = 1 << 22  # mask logits (queries x rows x width) upsampled at once: 16 MB of float32
_CV_CHANNELS = 512  # the most channels cv2.resize takes (CV_CN_MAX)


@dataclass(frozen=True)
class Mask2FormerParams(LearnedParams):
    variant: str = "swin_large_mapillary"
    probabilities: bool = False  # store the class probabilities, not their argmax
    # vre: the mask logits upsampled to the input size, then sigmoid, then the class x mask product (VRE's
    # detectron2 order); transformers: the product at a quarter of the size, then upsampled. None: the
    # variant's default (vre for r50_mapillary, VRE's own model; transformers for the others)
    postprocess: str | None = None  # "vre" or "transformers"

    def __post_init__(self) -> None:
        if self.postprocess is None:
            object.__setattr__(self, "postprocess",
                               "vre" if self.variant in _VRE_ORDER_DEFAULT else "transformers")
        elif self.postprocess not in ("vre", "transformers"):
            raise ValueError(f"postprocess must be 'vre' or 'transformers', got {self.postprocess!r}")


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

    @property
    def later_parameters(self) -> dict[str, Any]:
        """`postprocess` is recorded only when it is not transformers' order, the only one before it existed:
        class maps stored then still match, and r50_mapillary's, now made in VRE's order, are remade."""
        return {**super().later_parameters, "postprocess": "transformers"}

    def wrap(self, net: Any) -> Any:
        return tensor_module(net, _class_probabilities if self.params.postprocess == "transformers" else _queries)

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        h, w = self.input_size(batch.frames.shape[1:3])
        if self.params.postprocess == "vre":
            return self._vre_postprocess(outputs[0], outputs[1], h, w)
        scores = outputs[0]  # (B, C, h/4, w/4)
        up = np.empty((len(scores), h, w, scores.shape[1]), np.float32)
        for i, p in enumerate(scores):
            up[i] = cv2.resize(np.ascontiguousarray(p.transpose(1, 2, 0)), (w, h),
                               interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        if self.params.probabilities:  # a positive scale per pixel: the argmax stays that of the scores
            total = up.sum(-1, keepdims=True)
            up = np.where(total > 0, up / np.maximum(total, np.finfo(np.float32).tiny), np.float32(1 / up.shape[-1]))
        return self.class_output(up)

    def _vre_postprocess(self, classes: np.ndarray, masks: np.ndarray, h: int, w: int) -> np.ndarray:
        """VRE's order (its MaskFormer.forward with semantic_inference): each query's mask logits upsampled
        bilinearly to the input size (as torch's align_corners=False), sigmoid, then summed over the queries
        weighted by the class probabilities. VRE pads the input to a multiple of 32 and crops and resizes back;
        vre-fast resizes it to a multiple of 32, so the input size is that padded size and the crop is empty.
        Done in bands of rows, so the upsampled logits never take more than _BAND_ELEMENTS floats (x ~3 for
        the temporaries); a class map never holds the (h, w, classes) scores of the whole frame either."""
        n, queries, classes_n = classes.shape
        rows0, rows1, row_w = _bilinear_taps(masks.shape[2], h)
        row_w = row_w[:, None, None]
        band = max(1, _BAND_ELEMENTS // (queries * w))
        out = np.empty((n, h, w) + ((classes_n,) if self.params.probabilities else ()),
                       np.float32 if self.params.probabilities else np.uint8)
        for i in range(n):
            m = np.ascontiguousarray(masks[i].transpose(1, 2, 0), np.float32)  # (h/4, w/4, Q): queries last
            c = classes[i].astype(np.float32, copy=False)
            for top in range(0, h, band):
                rows = slice(top, min(top + band, h))
                t = m[rows0[rows]] * (1 - row_w[rows]) + m[rows1[rows]] * row_w[rows]  # (r, w/4, Q)
                u = np.concatenate([_resize_columns(t[..., k:k + _CV_CHANNELS], w)
                                    for k in range(0, queries, _CV_CHANNELS)], -1) \
                    if queries > _CV_CHANNELS else _resize_columns(t, w)  # (r, w, Q)
                with np.errstate(over="ignore"):  # exp(-x) = inf for very negative logits: sigmoid 0
                    np.negative(u, out=u)
                    np.exp(u, out=u)
                u += 1
                np.reciprocal(u, out=u)
                if self.params.probabilities:  # the scores written in place, then normalised (VRE stores them so)
                    scores = np.matmul(u.reshape(-1, queries), c, out=out[i, rows].reshape(-1, classes_n))
                    scores /= np.maximum(scores.sum(-1, keepdims=True), np.finfo(np.float32).tiny)
                else:
                    out[i, rows] = self.class_output((u.reshape(-1, queries) @ c).reshape(-1, w, classes_n))
        return out


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's bilinear resize (align_corners=False) along one axis, in float32 as torch computes it: for each
    output index the two input indices and the weight of the second."""
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n_out)
                     - np.float32(0.5), np.float32(0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), src - i0.astype(np.float32)


def _resize_columns(band: np.ndarray, w: int) -> np.ndarray:
    """(r, w/4, k) -> (r, w, k), bilinear along the rows only: OpenCV's INTER_LINEAR has torch's half-pixel
    centres and clamped borders (equal to float rounding) and is 4x faster than numpy's gathers here."""
    return cv2.resize(band, (w, band.shape[0]), interpolation=cv2.INTER_LINEAR).reshape(band.shape[0], w, -1)


def _class_probabilities(out: Any) -> Any:
    """transformers' semantic post-processing: sum over queries of class probability x mask probability."""
    import torch

    classes = out.class_queries_logits.softmax(-1)[..., :-1]  # the last class is "no object"
    return torch.einsum("bqc,bqhw->bchw", classes, out.masks_queries_logits.sigmoid())


def _queries(out: Any) -> Any:
    """VRE's order needs the product after the upsampling: the class probabilities (B, Q, C) and the mask
    logits (B, Q, h/4, w/4), multiplied in postprocess."""
    return out.class_queries_logits.softmax(-1)[..., :-1], out.masks_queries_logits
