"""PHG-MAE-Distil / SafeUAV: the small real-time segmenter of the VRE paper (Dronescapes classes).

A U-Net with a dilated bottleneck (models/safeuav.py), 150k to 4.4M parameters by its variant. Weights:
a checkpoint path (`weights:`), loaded with weights_only=True: either a plain state dict of a 3-channel
RGB model, or a VRE-style training checkpoint ({"state_dict", "hyper_parameters": {"cfg", "statistics"}})
whose multi-task input gets the RGB frame in its "rgb" slot. No weights are published in a package
registry, so the variants without `weights` are randomly initialised (tests, speed benchmarks).
Stored as a uint8 class map, or with `probabilities: true` as the softmax of the logits, (H, W, 8) float16
(VRE's `disk_data_argmax: false` stores the logits themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._pretrained import PretrainedCfg
from .._registry import register_representation
from ..representation import ComputeBatch
from ._classes import ClassMapExpert
from ._learned import LearnedParams, LearnedRepresentation

DRONESCAPES_CLASSES = ("land", "forest", "residential", "road", "little-objects", "water", "sky", "hill")
_FILTERS = {"150k": 6, "430k": 10, "1M": 16, "4M": 32}
_RGB_STATS = (95.498, 103.013, 85.048), (55.569, 58.133, 61.126)  # VRE's statistics of the distillation data


@dataclass(frozen=True)
class SafeUAVParams(LearnedParams):
    variant: str = "430k"
    probabilities: bool = False  # store the class probabilities, not their argmax


@register_representation("semantic_safeuav")
class SemanticSafeUAV(ClassMapExpert, LearnedRepresentation):
    Params = SafeUAVParams
    postprocess_params = ("probabilities",)
    default_cfgs = {name: PretrainedCfg(tag=f"semantic_safeuav.{name}", multiple_of=8, mean=_RGB_STATS[0],
                                        std=_RGB_STATS[1], source=f"{filters} filters; weights from `weights:`")
                    for name, filters in _FILTERS.items()}

    @property
    def classes(self) -> tuple[str, ...]:
        return DRONESCAPES_CLASSES

    def load_model(self) -> Any:
        """The architecture the checkpoint describes (or the variant's), with its weights when given."""
        import torch

        from ..models.safeuav import SafeUAV

        if self.params.weights is None:
            return super().load_model()
        path = Path(self.params.weights).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"representations.{self.name}.parameters.weights: {path} does not exist")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        self._layout = _CheckpointLayout.of(ckpt, _FILTERS[self.params.variant], len(DRONESCAPES_CLASSES))
        model = SafeUAV(self._layout.in_channels, self._layout.out_channels, self._layout.num_filters)
        model.load_state_dict(self._layout.state_dict)
        return _RgbSlot(model, self._layout).eval()

    def build_model(self) -> Any:
        from ..models.safeuav import SafeUAV

        return SafeUAV(3, len(DRONESCAPES_CLASSES), _FILTERS[self.params.variant])

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        logits = np.moveaxis(outputs[0], 1, -1)
        if not self.params.probabilities:  # the argmax of the logits is that of their softmax
            return self.class_output(logits)
        exp = np.exp(logits - logits.max(-1, keepdims=True))
        return exp / exp.sum(-1, keepdims=True)


@dataclass
class _CheckpointLayout:
    in_channels: int
    out_channels: int
    num_filters: int
    rgb_slot: tuple[int, int]  # input channels the RGB frame goes to
    semantic_slot: tuple[int, int]  # output channels holding the class logits
    state_dict: dict[str, Any]

    @classmethod
    def of(cls, ckpt: dict[str, Any], num_filters: int, classes: int) -> _CheckpointLayout:
        if "state_dict" not in ckpt:  # a plain RGB -> classes state dict
            return cls(3, classes, num_filters, (0, 3), (0, classes), ckpt)
        cfg = ckpt["hyper_parameters"]["cfg"]
        shapes = cfg["model"]["hparams"]["data_shape"]
        tasks = cfg["data"]["parameters"]["task_names"]
        starts = np.cumsum([0, *(shapes[t][0] for t in tasks)])
        slot = {t: (int(starts[i]), int(starts[i + 1])) for i, t in enumerate(tasks)}
        params = cfg["model"]["parameters"]
        return cls(params["in_channels"], params["out_channels"], params["num_filters"], slot["rgb"],
                   slot["semantic_output"], ckpt["state_dict"])


def _RgbSlot(model: Any, layout: _CheckpointLayout) -> Any:  # noqa: N802 - a torch.nn.Module factory
    """Puts the RGB input into its slot of a multi-task input (zeros elsewhere); returns the class logits."""
    import torch

    class RgbSlot(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = layout.rgb_slot
            full = torch.cat([x.new_zeros(x.shape[0], a, *x.shape[2:]), x,
                              x.new_zeros(x.shape[0], layout.in_channels - b, *x.shape[2:])], 1)
            s, e = layout.semantic_slot
            return self.model(full)[:, s:e]

    return RgbSlot()
