"""A TFLite graph as a torch module, for the small set of ops that real-time segmenters use.

Reads the flatbuffer with the `tflite` package (no TensorFlow), turns float16 weights into float32
constants, and runs the operators in order in NCHW layout: CONV_2D, DEPTHWISE_CONV_2D (TF's SAME
padding, fused activations), ADD, MUL, RELU, HARD_SWISH, LOGISTIC, global AVERAGE_POOL_2D,
RESIZE_BILINEAR, and MediaPipe's Convolution2DTransposeBias. Anything else is refused by name. The
module traces to ONNX (the loop over operators unrolls).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

__all__ = ["TFLiteGraph"]

_ACTIVATIONS = {0: lambda x: x, 1: F.relu, 3: lambda x: F.hardtanh(x, 0.0, 6.0)}  # NONE, RELU, RELU6


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's SAME: the total padding, the odd pixel at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TFLiteGraph(nn.Module):
    def __init__(self, path: Path):
        super().__init__()
        import tflite

        self._tflite = tflite
        model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
        graph = model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.input_index, self.output_index = int(graph.Inputs(0)), int(graph.Outputs(0))
        self.input_shape = tuple(graph.Tensors(self.input_index).ShapeAsNumpy().tolist())  # NHWC
        self._shapes = {i: tuple(graph.Tensors(i).ShapeAsNumpy().tolist()) for i in range(graph.TensorsLength())}
        constants: dict[int, np.ndarray] = {}
        for i in range(graph.TensorsLength()):
            data = model.Buffers(graph.Tensors(i).Buffer()).DataAsNumpy()
            if isinstance(data, np.ndarray) and data.size:
                dtype = {0: np.float32, 1: np.float16, 2: np.int32}[graph.Tensors(i).Type()]
                constants[i] = data.view(dtype).reshape(self._shapes[i])
        self.ops: list[tuple[str, list[int], int, Any]] = []
        for k in range(graph.OperatorsLength()):
            op = graph.Operators(k)
            code = model.OperatorCodes(op.OpcodeIndex())
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
            if name == "CUSTOM":
                name = code.CustomCode().decode()
            ins, out = [int(i) for i in op.InputsAsNumpy()], int(op.OutputsAsNumpy()[0])
            if name == "DEQUANTIZE":
                constants[out] = constants[ins[0]].astype(np.float32)
                continue
            self.ops.append((name, ins, out, self._options(name, op)))
        self._params = nn.ParameterDict()
        self._axes = {i: tuple(int(a) for a in constants[i].ravel()) for name, ins, *_ in self.ops if name == "MEAN"
                      for i in ins[1:2]}
        for name, ins, _out, _opt in self.ops:
            for i in ins[1:]:
                if i in constants and str(i) not in self._params and name != "MEAN":
                    array = self._torch_layout(name, i, constants[i]).copy()  # a writable copy of the buffer
                    self._params[str(i)] = nn.Parameter(torch.from_numpy(array), requires_grad=False)
        unknown = sorted({n for n, *_ in self.ops} - set(_RUNNERS))
        if unknown:
            raise ValueError(f"{path}: unsupported TFLite operator(s) {unknown}")

    def _options(self, name: str, op: Any) -> Any:
        tf = self._tflite
        kinds = {"CONV_2D": tf.Conv2DOptions, "DEPTHWISE_CONV_2D": tf.DepthwiseConv2DOptions,
                 "AVERAGE_POOL_2D": tf.Pool2DOptions, "ADD": tf.AddOptions, "MUL": tf.MulOptions,
                 "RESIZE_BILINEAR": tf.ResizeBilinearOptions, "MEAN": tf.ReducerOptions}
        if name == "Convolution2DTransposeBias":  # raw struct: padding, stride_w, stride_h
            return struct.unpack("<iii", op.CustomOptionsAsNumpy().tobytes()[:12])
        if name not in kinds:
            return None
        table = op.BuiltinOptions()
        options = kinds[name]()
        options.Init(table.Bytes, table.Pos)
        return options

    def _torch_layout(self, op: str, index: int, array: np.ndarray) -> np.ndarray:
        """TFLite weight layouts -> torch's."""
        if array.ndim == 4 and op == "CONV_2D":  # (O, H, W, I) -> (O, I, H, W)
            return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
        if array.ndim == 4 and op == "DEPTHWISE_CONV_2D":  # (1, H, W, C) -> (C, 1, H, W)
            return np.ascontiguousarray(array.transpose(3, 0, 1, 2))
        if array.ndim == 4 and op == "Convolution2DTransposeBias":  # (O, H, W, I) -> (I, O, H, W)
            return np.ascontiguousarray(array.transpose(3, 0, 1, 2))
        if array.ndim == 4:  # a broadcast NHWC constant
            return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
        return np.ascontiguousarray(array)

    def value(self, tensors: dict[int, torch.Tensor], index: int) -> torch.Tensor:
        return tensors[index] if index in tensors else self._params[str(index)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) at the graph's input size -> (B, C, H', W') of the graph's output."""
        tensors: dict[int, torch.Tensor] = {self.input_index: x}
        for name, ins, out, options in self.ops:
            tensors[out] = _RUNNERS[name](self, tensors, ins, out, options)
        return tensors[self.output_index]


def _conv(graph: TFLiteGraph, t: dict, ins: list[int], out: int, o: Any, depthwise: bool = False) -> torch.Tensor:
    x, weight = graph.value(t, ins[0]), graph.value(t, ins[1])
    bias = graph.value(t, ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
    stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
    if o.Padding() == 0:  # SAME
        (_, h, w, _), kh, kw = graph._shapes[ins[0]], weight.shape[2], weight.shape[3]
        top, bottom = _same_padding(h, kh, stride[0], dilation[0])
        left, right = _same_padding(w, kw, stride[1], dilation[1])
        x = F.pad(x, (left, right, top, bottom))
    y = F.conv2d(x, weight, bias, stride, 0, dilation, groups=x.shape[1] if depthwise else 1)
    return _ACTIVATIONS[o.FusedActivationFunction()](y)


def _binary(fn: Any) -> Any:
    def run(graph: TFLiteGraph, t: dict, ins: list[int], out: int, o: Any) -> torch.Tensor:
        y = fn(graph.value(t, ins[0]), graph.value(t, ins[1]))
        return _ACTIVATIONS[o.FusedActivationFunction()](y)

    return run


def _average_pool(graph: TFLiteGraph, t: dict, ins: list[int], out: int, o: Any) -> torch.Tensor:
    _, h, w, _ = graph._shapes[ins[0]]
    if (o.FilterHeight(), o.FilterWidth()) != (h, w):
        raise ValueError("only global AVERAGE_POOL_2D is supported")
    return _ACTIVATIONS[o.FusedActivationFunction()](graph.value(t, ins[0]).mean(dim=(2, 3), keepdim=True))


def _mean(graph: TFLiteGraph, t: dict, ins: list[int], out: int, o: Any) -> torch.Tensor:
    if sorted(graph._axes[ins[1]]) != [1, 2]:
        raise ValueError(f"MEAN over axes {graph._axes[ins[1]]}: only the spatial mean (axes 1, 2) is supported")
    return graph.value(t, ins[0]).mean(dim=(2, 3), keepdim=bool(o.KeepDims()))


def _resize(graph: TFLiteGraph, t: dict, ins: list[int], out: int, o: Any) -> torch.Tensor:
    _, h, w, _ = graph._shapes[out]
    if not o.AlignCorners() and not o.HalfPixelCenters():
        raise ValueError("RESIZE_BILINEAR without half-pixel centres (TF1 legacy) is not supported")
    return F.interpolate(graph.value(t, ins[0]), size=(h, w), mode="bilinear", align_corners=o.AlignCorners())


def _transpose_conv_bias(graph: TFLiteGraph, t: dict, ins: list[int], out: int, o: Any) -> torch.Tensor:
    padding, stride_w, stride_h = o
    weight = graph.value(t, ins[1])
    if padding != 1 or weight.shape[2] != stride_h or weight.shape[3] != stride_w:
        raise ValueError("Convolution2DTransposeBias is supported with SAME padding and kernel == stride")
    return F.conv_transpose2d(graph.value(t, ins[0]), weight, graph.value(t, ins[2]), (stride_h, stride_w))


_RUNNERS: dict[str, Any] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": lambda g, t, i, out, o: _conv(g, t, i, out, o, depthwise=True),
    "ADD": _binary(torch.add),
    "MUL": _binary(torch.mul),
    "RELU": lambda g, t, i, out, o: F.relu(g.value(t, i[0])),
    "HARD_SWISH": lambda g, t, i, out, o: F.hardswish(g.value(t, i[0])),
    "LOGISTIC": lambda g, t, i, out, o: torch.sigmoid(g.value(t, i[0])),
    "AVERAGE_POOL_2D": _average_pool,
    "MEAN": _mean,
    "RESIZE_BILINEAR": _resize,
    "Convolution2DTransposeBias": _transpose_conv_bias,
}
