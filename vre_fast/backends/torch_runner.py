"""torch eager: the reference every other backend is checked against."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["TorchRunner"]


class TorchRunner:
    name = "torch"

    def __init__(self, model: torch.nn.Module, device: str):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        out = self.model(torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(o.float().cpu().numpy() for o in outs)

    def close(self) -> None:
        del self.model
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
