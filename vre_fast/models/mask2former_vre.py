"""VRE's Mask2Former checkpoints with a ResNet backbone (its model 49189528_1: R50, Mapillary Vistas) as
transformers' Mask2FormerForUniversalSegmentation.

VRE runs the official Mask2Former code (detectron2 layout) on checkpoints its convert.py made from the model
zoo's pickles: a torch file {"state_dict": detectron2-named tensors, "cfg": the config as JSON}, read here
with torch.load(weights_only=True) (tensors, strings and dicts only: no code runs). Nothing reads the model
zoo's own .pkl files, which need a full unpickler. transformers' Mask2Former has the same pixel decoder
(multi-scale deformable attention) and masked-attention decoder, and takes transformers' ResNet as its
backbone (the stem, bottlenecks with the stride in the 3x3 convolution, frozen batch norm = batch norm in
eval mode, as detectron2's R50 for Mask2Former). The architecture's sizes are read from the tensors' shapes,
the few flags shapes do not show from the checkpoint's config (Mask2Former's defaults when it has none);
what transformers cannot express (grouped or deformable convolutions, dilation, pre-norm decoders of another
layout) is refused. The conversion is checked against VRE's own implementation on a tiny model
(tests/data/make_m2f_r50_tiny.py).
"""

from __future__ import annotations

import json
import pickle  # only for the exception torch.load raises on what it refuses to read
import re
import warnings
from pathlib import Path
from typing import Any

__all__ = ["MAPILLARY_VISTAS_CLASSES", "hf_config_from_vre", "hf_state_from_vre", "load_vre_checkpoint"]

# Mapillary Vistas v1.2's 65 classes in the order of VRE's model 49189528_1 (VRE's mapillary_metadata.json)
MAPILLARY_VISTAS_CLASSES = (
    "Bird", "Ground Animal", "Curb", "Fence", "Guard Rail", "Barrier", "Wall", "Bike Lane", "Crosswalk - Plain",
    "Curb Cut", "Parking", "Pedestrian Area", "Rail Track", "Road", "Service Lane", "Sidewalk", "Bridge", "Building",
    "Tunnel", "Person", "Bicyclist", "Motorcyclist", "Other Rider", "Lane Marking - Crosswalk",
    "Lane Marking - General", "Mountain", "Sand", "Sky", "Snow", "Terrain", "Vegetation", "Water", "Banner", "Bench",
    "Bike Rack", "Billboard", "Catch Basin", "CCTV Camera", "Fire Hydrant", "Junction Box", "Mailbox", "Manhole",
    "Phone Booth", "Pothole", "Street Light", "Pole", "Traffic Sign Frame", "Utility Pole", "Traffic Light",
    "Traffic Sign (Back)", "Traffic Sign (Front)", "Trash Can", "Bicycle", "Boat", "Bus", "Car", "Caravan",
    "Motorcycle", "On Rails", "Other Vehicle", "Trailer", "Truck", "Wheeled Slow", "Car Mount", "Ego Vehicle",
)

_LEVELS, _POINTS = 3, 4  # the pixel decoder's deformable attention: 3 feature levels, 4 sampling points
_PIXEL = "model.pixel_level_module.decoder."
_DECODER = "model.transformer_module.decoder."
_BACKBONE = "model.pixel_level_module.encoder."
_STEM = "backbone.stem.conv1."
_BLOCK = re.compile(r"backbone\.res(\d)\.(\d+)\.(conv[123]|shortcut)\.(.+)")
# (detectron2 name pattern, transformers name with the pattern's groups \1, \2 ...): all but the backbone's
_RENAMES = [
    (r"sem_seg_head\.pixel_decoder\.input_proj\.(.+)", _PIXEL + "input_projections.\\1"),
    (r"sem_seg_head\.pixel_decoder\.transformer\.level_embed", _PIXEL + "level_embed"),
    (r"sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.self_attn\.(.+)",
     _PIXEL + "encoder.layers.\\1.self_attn.\\2"),
    (r"sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.linear(\d)\.(.+)",
     _PIXEL + "encoder.layers.\\1.fc\\2.\\3"),
    (r"sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.norm1\.(.+)",
     _PIXEL + "encoder.layers.\\1.self_attn_layer_norm.\\2"),
    (r"sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.norm2\.(.+)",
     _PIXEL + "encoder.layers.\\1.final_layer_norm.\\2"),
    (r"sem_seg_head\.pixel_decoder\.mask_features\.(.+)", _PIXEL + "mask_projection.\\1"),
    (r"sem_seg_head\.pixel_decoder\.(adapter|layer)_(\d)\.weight", _PIXEL + "\\1_\\2.0.weight"),
    (r"sem_seg_head\.pixel_decoder\.(adapter|layer)_(\d)\.norm\.(.+)", _PIXEL + "\\1_\\2.1.\\3"),
    (r"sem_seg_head\.predictor\.query_feat\.weight", "model.transformer_module.queries_features.weight"),
    (r"sem_seg_head\.predictor\.query_embed\.weight", "model.transformer_module.queries_embedder.weight"),
    (r"sem_seg_head\.predictor\.level_embed\.weight", "model.transformer_module.level_embed.weight"),
    (r"sem_seg_head\.predictor\.class_embed\.(.+)", "class_predictor.\\1"),
    (r"sem_seg_head\.predictor\.decoder_norm\.(.+)", _DECODER + "layernorm.\\1"),
    (r"sem_seg_head\.predictor\.mask_embed\.layers\.(\d+)\.(.+)", _DECODER + "mask_predictor.mask_embedder.\\1.0.\\2"),
    (r"sem_seg_head\.predictor\.transformer_self_attention_layers\.(\d+)\.self_attn\.out_proj\.(.+)",
     _DECODER + "layers.\\1.self_attn.out_proj.\\2"),
    (r"sem_seg_head\.predictor\.transformer_self_attention_layers\.(\d+)\.norm\.(.+)",
     _DECODER + "layers.\\1.self_attn_layer_norm.\\2"),
    (r"sem_seg_head\.predictor\.transformer_cross_attention_layers\.(\d+)\.multihead_attn\.(.+)",
     _DECODER + "layers.\\1.cross_attn.\\2"),
    (r"sem_seg_head\.predictor\.transformer_cross_attention_layers\.(\d+)\.norm\.(.+)",
     _DECODER + "layers.\\1.cross_attn_layer_norm.\\2"),
    (r"sem_seg_head\.predictor\.transformer_ffn_layers\.(\d+)\.linear(\d)\.(.+)", _DECODER + "layers.\\1.fc\\2.\\3"),
    (r"sem_seg_head\.predictor\.transformer_ffn_layers\.(\d+)\.norm\.(.+)",
     _DECODER + "layers.\\1.final_layer_norm.\\2"),
]
_SPLIT_QKV = re.compile(
    r"sem_seg_head\.predictor\.transformer_self_attention_layers\.(\d+)\.self_attn\.in_proj_(weight|bias)")


def _batch_norm(name: str) -> str:
    """detectron2's conv + norm naming -> transformers' ResNetConvLayer (convolution, normalization)."""
    return name.replace("norm.", "normalization.") if name.startswith("norm.") else f"convolution.{name}"


def _rename(name: str) -> str | None:
    if name.startswith(_STEM):
        return f"{_BACKBONE}embedder.embedder.{_batch_norm(name.removeprefix(_STEM))}"
    block = _BLOCK.fullmatch(name)
    if block:  # resS.B.convN -> stages[S - 2].layers[B].layer[N - 1]
        stage, index, part, rest = block.groups()
        part = "shortcut" if part == "shortcut" else f"layer.{int(part[4:]) - 1}"
        return f"{_BACKBONE}encoder.stages.{int(stage) - 2}.layers.{index}.{part}.{_batch_norm(rest)}"
    for pattern, target in _RENAMES:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(target)
    return None


def _count(state: dict[str, Any], pattern: str) -> int:
    return len({m.group(1) for name in state if (m := re.fullmatch(pattern, name))})


def hf_config_from_vre(state: dict[str, Any], cfg: dict[str, Any] | None) -> Any:
    """transformers' Mask2FormerConfig (with a ResNetConfig backbone) for a VRE checkpoint: sizes from the
    tensors, flags from `cfg` (VRE's / detectron2's config, or None: Mask2Former's defaults)."""
    from transformers import Mask2FormerConfig, ResNetConfig

    if "backbone.stem.conv1.weight" not in state:
        raise ValueError("not a Mask2Former checkpoint with a ResNet backbone (no backbone.stem.conv1.weight)")
    model = (cfg or {}).get("MODEL", {})
    resnets, head, former = model.get("RESNETS", {}), model.get("SEM_SEG_HEAD", {}), model.get("MASK_FORMER", {})
    unsupported = {"RESNETS.NUM_GROUPS": resnets.get("NUM_GROUPS", 1) != 1,
                   "RESNETS.DEFORM_ON_PER_STAGE": any(resnets.get("DEFORM_ON_PER_STAGE", [])),
                   "RESNETS.RES5_DILATION": resnets.get("RES5_DILATION", 1) != 1,
                   "RESNETS.STEM_TYPE": resnets.get("STEM_TYPE", "basic") != "basic",
                   "MASK_FORMER.PRE_NORM": former.get("PRE_NORM", False),
                   "SEM_SEG_HEAD.COMMON_STRIDE": head.get("COMMON_STRIDE", 4) != 4}
    if any(unsupported.values()):
        raise ValueError(f"{[k for k, v in unsupported.items() if v]}: not expressible in transformers' Mask2Former")
    hidden = [int(state[f"backbone.res{s}.0.conv3.weight"].shape[0]) for s in range(2, 6)]
    for s, width in zip(range(2, 6), hidden):
        if state[f"backbone.res{s}.0.conv1.weight"].shape[0] * 4 != width:
            raise ValueError(f"res{s}: bottleneck width is not a quarter of the output width (transformers' ResNet)")
    backbone = ResNetConfig(embedding_size=int(state["backbone.stem.conv1.weight"].shape[0]), hidden_sizes=hidden,
                            depths=[_count(state, rf"backbone\.res{s}\.(\d+)\..+") for s in range(2, 6)],
                            layer_type="bottleneck", downsample_in_bottleneck=bool(resnets.get("STRIDE_IN_1X1", False)),
                            out_features=["stage1", "stage2", "stage3", "stage4"])
    encoder = "sem_seg_head.pixel_decoder.transformer.encoder.layers"
    mask_features = state["sem_seg_head.pixel_decoder.mask_features.weight"]
    queries = state["sem_seg_head.predictor.query_feat.weight"]
    return Mask2FormerConfig(
        backbone_config=backbone, num_labels=int(state["sem_seg_head.predictor.class_embed.weight"].shape[0]) - 1,
        feature_size=int(mask_features.shape[1]), mask_feature_size=int(mask_features.shape[0]),
        hidden_dim=int(queries.shape[1]), num_queries=int(queries.shape[0]),
        encoder_layers=_count(state, encoder.replace(".", r"\.") + r"\.(\d+)\..+"),
        encoder_feedforward_dim=int(state[f"{encoder}.0.linear1.weight"].shape[0]),
        decoder_layers=_count(state, r"sem_seg_head\.predictor\.transformer_ffn_layers\.(\d+)\..+") + 1,
        dim_feedforward=int(state["sem_seg_head.predictor.transformer_ffn_layers.0.linear1.weight"].shape[0]),
        num_attention_heads=int(state[f"{encoder}.0.self_attn.attention_weights.weight"].shape[0])
        // (_LEVELS * _POINTS),
        enforce_input_projection=bool(former.get("ENFORCE_INPUT_PROJ", False)))


def hf_state_from_vre(state: dict[str, Any]) -> dict[str, Any]:
    """The detectron2-named tensors under transformers' names (the decoder's fused self-attention projection
    split into q, k, v; training-only entries dropped). A name that maps nowhere is an error."""
    out, unknown = {}, []
    for name, tensor in state.items():
        if name.startswith("criterion."):
            continue
        split = _SPLIT_QKV.fullmatch(name)
        if split:
            for proj, part in zip("qkv", tensor.chunk(3)):
                out[f"{_DECODER}layers.{split.group(1)}.self_attn.{proj}_proj.{split.group(2)}"] = part
            continue
        target = _rename(name)
        if target is None:
            unknown.append(name)
        else:
            out[target] = tensor
    if unknown:
        raise ValueError(f"{len(unknown)} entries of no known Mask2Former-R50 layer, e.g. {unknown[:3]}")
    return out


def load_vre_checkpoint(path: Path) -> Any:
    """A VRE Mask2Former-R50 checkpoint as transformers' Mask2FormerForUniversalSegmentation, in eval mode."""
    import torch
    from transformers import Mask2FormerForUniversalSegmentation

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on pickle protocols, before its refusal below
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path}: holds more than tensors (a Mask2Former model zoo .pkl, say), which is not read: "
                         f"use VRE's converted checkpoint") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a VRE checkpoint (a dict with 'state_dict')")
    state = data.get("state_dict", data)
    cfg = json.loads(data["cfg"]) if isinstance(data.get("cfg"), str) else None
    try:
        config = hf_config_from_vre(state, cfg)
        converted = hf_state_from_vre(state)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    net = Mask2FormerForUniversalSegmentation(config)
    own = net.state_dict()
    # what detectron2 does not store: batch-norm counters (unused in eval) and the loss's class weights
    converted |= {k: v for k, v in own.items() if k.endswith("num_batches_tracked") or k.startswith("criterion.")}
    missing, unexpected = sorted(set(own) - set(converted)), sorted(set(converted) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: not the layout of the architecture its shapes describe ({len(missing)} weights "
                         f"missing, e.g. {missing[:2]}; {len(unexpected)} left over, e.g. {unexpected[:2]})")
    net.load_state_dict(converted, strict=True)
    return net.eval()
