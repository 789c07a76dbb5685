"""Native TensorRT engines (FP16), built by `vre-fast export-engines`; needs a GPU and the [trt] extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["TensorRTRunner"]


class TensorRTRunner:
    name = "tensorrt"

    def __init__(self, engine_path: Path, device: str):
        import tensorrt as trt
        import torch

        self._torch = torch
        self.device = torch.device(device)
        logger = trt.Logger(trt.Logger.WARNING)
        with open(engine_path, "rb") as f, trt.Runtime(logger) as runtime:
            self.engine = runtime.deserialize_cuda_engine(f.read())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        torch = self._torch
        inp = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)
        self.context.set_input_shape(self.inputs[0], tuple(inp.shape))
        self.context.set_tensor_address(self.inputs[0], inp.data_ptr())
        outs = []
        for name in self.outputs:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=torch.float32, device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        stream = torch.cuda.current_stream(self.device)
        self.context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return tuple(o.cpu().numpy() for o in outs)

    def close(self) -> None:
        del self.context, self.engine
