"""The backend "auto" chooses and the ONNX Runtime providers asked for, per device, without a GPU: which packages
and execution providers are installed is faked, the choice and its log line are what is checked."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import onnxruntime as ort
import pytest

from vre_fast.backends import auto_backend, make_runner
from vre_fast.backends.onnxruntime_runner import providers_for

CPU_ONLY = ["CPUExecutionProvider"]
GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch):
    """installed(tensorrt=bool, providers=[...]): fakes whether tensorrt is importable and ORT's providers."""
    real = importlib.util.find_spec

    def fake(tensorrt: bool, providers: list[str]) -> None:
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: (object() if tensorrt else None) if name == "tensorrt" else real(name, *a))
        monkeypatch.setattr(ort, "get_available_providers", lambda: providers)
    return fake


@pytest.mark.parametrize(("tensorrt", "providers", "device", "chosen", "reasons"), [
    (True, GPU, "cuda:0", "tensorrt", 0),
    (True, CPU_ONLY, "cuda:0", "tensorrt", 1),  # ORT's CPU provider is not a GPU fall-back
    (False, GPU, "cuda:0", "onnxruntime", 1),  # no TensorRT: ORT's TensorRT / CUDA providers
    (False, CPU_ONLY, "cuda", "torch", 2),  # neither: torch eager on the GPU, not ORT on the CPU
    (True, GPU, "cpu", "onnxruntime", 0),  # TensorRT needs a CUDA device
])
def test_auto_backend_order(installed, tensorrt, providers, device, chosen, reasons):
    installed(tensorrt, providers)
    backend, passed_over = auto_backend(device)
    assert (backend, len(passed_over)) == (chosen, reasons), passed_over


def test_falling_back_on_a_gpu_is_one_log_line_naming_why(installed, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch):
    installed(False, CPU_ONLY)
    built = []
    monkeypatch.setattr("vre_fast.backends.torch_runner.TorchRunner", lambda model, device: built.append(device))
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with caplog.at_level(logging.WARNING, logger="vre_fast"):
        make_runner("auto", "cuda:1", lambda: None, lambda: None, lambda: None)
    assert built == ["cuda:1"]
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("backend auto on cuda:1: torch (passed over: tensorrt: not installed (the [trt] extra); "
                           "onnxruntime: no CUDA or TensorRT execution provider")


def test_onnxruntime_providers_for_a_cuda_device(installed, tmp_path, caplog: pytest.LogCaptureFixture):
    installed(False, GPU)
    assert providers_for("cuda:1", tmp_path) == [
        ("TensorrtExecutionProvider", {"device_id": 1, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                       "trt_engine_cache_path": str(tmp_path)}),
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    installed(False, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert providers_for("cuda") == [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    assert providers_for("cpu") == ["CPUExecutionProvider"] and not caplog.records
    installed(False, CPU_ONLY)
    with caplog.at_level(logging.WARNING, logger="vre_fast"):
        assert providers_for("cuda:0") == ["CPUExecutionProvider"]
    assert "no CUDA or TensorRT execution provider" in caplog.records[0].getMessage()


def test_ort_runner_on_cpu_runs_a_real_session(tmp_path):
    """The runner with the provider list as built (CPU here): a one-node model, run for real."""
    import onnx
    from onnx import TensorProto, helper

    from vre_fast.backends.onnxruntime_runner import OrtRunner

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3, 2, 2])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 2, 2)
    runner = OrtRunner(path, "cpu")
    np.testing.assert_array_equal(runner(x)[0], np.maximum(x, 0))
    assert runner.session.get_providers() == ["CPUExecutionProvider"]
