"""Writes tests/data/m2f_r50_tiny.npz: a tiny Mask2Former with a ResNet-50 layout built and run by VRE 1.18.6's
own implementation (vre_repository's MaskFormer, the code behind its model 49189528_1, R50 Mapillary), so that
tests check vre-fast's conversion of VRE's checkpoints into transformers' Mask2Former against VRE itself.

Run it in VRE's side venv (it needs vre_repository): bench/.vre-venv/bin/python tests/data/make_m2f_r50_tiny.py
The architecture is VRE's 49189528_1 configuration (resources/49189528_1_cfg.json) with small widths: ResNet-50's
3-4-6-3 bottleneck blocks 8 to 64 channels wide, 32-wide heads, Mapillary's 65 classes, the pixel decoder's feed-forward
64 wide (VRE hard-codes 1024: patched here to keep the file small). The weights are VRE's random
initialisation with the norm layers' statistics, the class head and the mask scale randomised, rounded to float16 (stored as such; both sides
compute in float32). Stored: every state-dict entry (`state/<name>`), the config as VRE's convert.py records it
(`cfg`, JSON), a 64x96 input image, and VRE's outputs for it: the raw class logits (1, Q, C + 1) and mask logits
(1, Q, 16, 24) of the last decoder layer, the argmax of the semantic scores (64, 96) of its inference path
(its `sem_seg`: what VRE stores with disk_data_argmax false, and its argmax with true) and those scores
(65, 8, 12) at every 8th row and column (`sem_seg_every8`, kept small).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import vre_repository.semantic_segmentation.mask2former as m2f
from vre_repository.semantic_segmentation.mask2former.mask2former_impl import CfgNode, MaskFormer
from vre_repository.semantic_segmentation.mask2former.mask2former_impl.modeling.pixel_decoder.msdeformattn import (
    MSDeformAttnPixelDecoder,
)

OUT = Path(__file__).parent / "m2f_r50_tiny.npz"


def main() -> None:
    resources = Path(m2f.__file__).parent / "mask2former_impl" / "resources"
    cfg = json.loads((resources / "49189528_1_cfg.json").read_text())
    model_cfg = cfg["MODEL"]
    model_cfg["RESNETS"].update(STEM_OUT_CHANNELS=8, RES2_OUT_CHANNELS=8, WIDTH_PER_GROUP=2)
    model_cfg["SEM_SEG_HEAD"].update(NUM_CLASSES=65, CONVS_DIM=32, MASK_DIM=32, TRANSFORMER_ENC_LAYERS=1)
    model_cfg["MASK_FORMER"].update(HIDDEN_DIM=32, NHEADS=2, DIM_FEEDFORWARD=64, DEC_LAYERS=3,
                                    NUM_OBJECT_QUERIES=8)
    pixel_decoder_config = MSDeformAttnPixelDecoder.from_config.__func__

    def small_feedforward(cls, cfg, input_shape):  # noqa: ANN001, ANN202 - VRE hard-codes 1024
        return {**pixel_decoder_config(cls, cfg, input_shape), "transformer_dim_feedforward": 64}

    MSDeformAttnPixelDecoder.from_config = classmethod(small_feedforward)
    torch.manual_seed(0)
    params = MaskFormer.from_config(CfgNode(cfg))
    params["metadata"] = SimpleNamespace(thing_dataset_id_to_contiguous_id=None)
    model = MaskFormer(**{**params, "semantic_on": True, "panoptic_on": False, "instance_on": False}).eval()
    rng = np.random.default_rng(0)
    state = {}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = tensor.numpy().copy()
            if name.endswith("running_var"):
                values = rng.uniform(0.5, 1.5, values.shape)
            elif name.endswith(("running_mean", "norm.bias")):
                values = rng.normal(0, 0.1, values.shape)
            elif name.endswith("norm.weight"):
                values = rng.uniform(0.5, 1.5, values.shape)
            elif name.startswith("sem_seg_head.predictor.class_embed"):  # queries that disagree on the class
                values = rng.normal(0, 1, values.shape)
            elif name == "sem_seg_head.predictor.mask_embed.layers.2.weight":  # sharp masks: classes vary in space
                values = values * 8
            values = values.astype(np.float16)
            tensor.copy_(torch.from_numpy(values.astype(np.float32)))
            state[f"state/{name}"] = values
    yy, xx = np.mgrid[0:64, 0:96]
    image = np.stack([(xx * 2.6) % 256, (yy * 3.9) % 256, ((xx + yy) * 1.7) % 256], -1).astype(np.uint8)
    image[20:44, 30:70] = (200, 40, 90)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)
    with torch.no_grad():
        features = model.backbone(((x - model.pixel_mean) / model.pixel_std)[None])
        raw = model.sem_seg_head(features)
        semantic = model([{"image": x, "height": 64, "width": 96}])[0]["sem_seg"]
    np.savez_compressed(OUT, cfg=np.array(json.dumps(cfg)), image=image, pred_logits=raw["pred_logits"].numpy(),
                        pred_masks=raw["pred_masks"].numpy(), sem_seg_argmax=semantic.argmax(0).numpy().astype(np.uint8),
                        sem_seg_every8=semantic[:, ::8, ::8].numpy(),
                        **state)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {sum(v.size for v in state.values())} parameters)")


if __name__ == "__main__":
    main()
