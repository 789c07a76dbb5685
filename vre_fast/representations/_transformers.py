"""Shared machinery of the experts built on HuggingFace transformers (Depth-Anything, DPT, Mask2Former).

Weights are a HuggingFace-format folder (config.json beside model.safetensors) from `weights: PATH` or
the offline hub cache, loaded by transformers itself, offline; variants without weights build a random
model from a config given in code. `wrap` turns the transformers model into a tensor -> tensor module
(what the ONNX export and the runners expect).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .._pretrained import PretrainedCfg, resolve_weights
from ..kernels import colormaps
from ..representation import ComputeBatch
from ._learned import LearnedRepresentation

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def hf_cfg(tag: str, repo: str | None, size: int, mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD,
           **kw: Any) -> PretrainedCfg:
    """A PretrainedCfg for a HuggingFace repo (or, with repo None, a random variant)."""
    return PretrainedCfg(tag=tag, filename="model.safetensors" if repo else None, hf_repo=repo,
                         input_size=(size, size), mean=mean, std=std,
                         how_to_get=f"a copy of the HuggingFace repo {repo} in the offline hub cache" if repo else "",
                         **kw)


class TransformersExpert(LearnedRepresentation):
    random_configs: ClassVar[dict[str, dict[str, Any]]] = {}  # variant -> kwargs of `make_config`

    def make_config(self, **kwargs: Any) -> Any:
        """The transformers config of a random variant from its kwargs."""
        raise NotImplementedError

    def model_class(self) -> Any:
        raise NotImplementedError

    def wrap(self, net: Any) -> Any:
        """A torch.nn.Module mapping the pixel tensor to the output tensor(s)."""
        raise NotImplementedError

    def hf_config(self) -> dict[str, Any] | None:
        """The real variant's config.json as a dict (read without loading weights), else None."""
        cfg = self.pretrained_cfg
        if not cfg.has_weights:
            return None
        path = resolve_weights(cfg, self.params.weights, f"representations.{self.name}.parameters")
        config_file = path.parent / "config.json"
        if not config_file.exists():
            raise FileNotFoundError(f"{config_file} is missing: HuggingFace-format weights need their "
                                    f"config.json beside {path.name}")
        return json.loads(config_file.read_text())

    def build_model(self) -> Any:
        return self.wrap(self.model_class()(self.make_config(**self.random_configs[self.params.variant])))

    def load_model(self) -> Any:
        """Real variants through transformers' own loader (it maps the checkpoints' key names onto the
        installed version's modules), offline, from safetensors; random variants as the base does."""
        cfg = self.pretrained_cfg
        if not cfg.has_weights:
            return super().load_model()
        self.hf_config()  # a clear error when config.json is missing
        path = resolve_weights(cfg, self.params.weights, f"representations.{self.name}.parameters")
        net = self.model_class().from_pretrained(path.parent, local_files_only=True, use_safetensors=True)
        return self.wrap(net).eval()



class TransformersDepth(TransformersExpert):
    """Relative inverse depth, stored as float16 at the run's output size."""

    output_kind = "depth"
    onnx_tolerance = 1e-4

    def wrap(self, net: Any) -> Any:
        return tensor_module(net, lambda out: out.predicted_depth)

    def postprocess(self, outputs: tuple[np.ndarray, ...], batch: ComputeBatch) -> np.ndarray:
        return outputs[0]

    def make_image(self, decoded: np.ndarray) -> np.ndarray:
        return colormaps.depth_to_image(decoded)


def tensor_module(net: Any, select: Callable[[Any], Any]) -> Any:
    """`net` (called with pixel_values) as a tensor -> tensor module: `select` picks or computes the output
    from transformers' output object. What the ONNX export and the runners expect."""
    import torch

    class TensorOutput(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return select(self.net(pixel_values=x))

    return TensorOutput()
