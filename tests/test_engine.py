"""The execution layer's parts in isolation: each policy decides without I/O, each operator does its one step
and reports it, and the runtime (not the representations) moves arrays between host and device."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from vre_fast.execution.admission import Admission
from vre_fast.execution.contracts import Operator, Request, ResourceReport
from vre_fast.execution.devices import HOST
from vre_fast.execution.operators import (
    ComputeOperator,
    DecodeOperator,
    DeviceToHost,
    EncodeOperator,
    HostToDevice,
    WriteJob,
    WriteOperator,
    WritePool,
)
from vre_fast.execution.outputs import ChunkOutputs
from vre_fast.execution.policies import (
    ErrorPolicy,
    Fail,
    InFlightFrames,
    OomPolicy,
    PinnedBytes,
    RetryHalved,
    Skip,
    Split,
    Stop,
    WriterQueueDepth,
    first_veto,
)
from vre_fast.execution.ring import FrameRing
from vre_fast.representation import ComputeBatch, Representation

# -- policies ---------------------------------------------------------------------------------------------


def test_writer_queue_depth_vetoes_a_write_at_its_limit_and_nothing_else():
    policy = WriterQueueDepth(limit=2)
    assert policy.veto(ResourceReport(writes_pending=1), Request(writes=1)) is None
    assert "2 writes pending" in policy.veto(ResourceReport(writes_pending=2), Request(writes=1))
    assert policy.veto(ResourceReport(writes_pending=9), Request(frames=4)) is None  # not a write


def test_in_flight_frames_bounds_decoded_frames_but_lets_one_oversized_chunk_through_alone():
    policy = InFlightFrames(limit=8)
    assert policy.veto(ResourceReport(frames_in_flight=4), Request(frames=4)) is None
    assert "4 frames in flight" in policy.veto(ResourceReport(frames_in_flight=4), Request(frames=5))
    assert policy.veto(ResourceReport(), Request(frames=20)) is None  # progress, whatever the chunk size


def test_pinned_bytes_bounds_page_locked_memory_in_use():
    policy = PinnedBytes(limit=100)
    assert policy.veto(ResourceReport(pinned_bytes_in_use=60), Request(pinned_bytes=40)) is None
    assert "60 pinned bytes" in policy.veto(ResourceReport(pinned_bytes_in_use=60), Request(pinned_bytes=41))
    assert policy.veto(ResourceReport(), Request(pinned_bytes=1000)) is None
    assert policy.veto(ResourceReport(pinned_bytes_in_use=99), Request(frames=3)) is None  # unpinned frames


def test_first_veto_is_the_first_policy_that_objects():
    policies = [InFlightFrames(4), WriterQueueDepth(1)]
    assert first_veto(policies, ResourceReport(writes_pending=1), Request(writes=1)).startswith("1 writes")
    assert first_veto(policies, ResourceReport(), Request(writes=1, frames=2)) is None


def test_oom_policy_halves_on_out_of_memory_splits_other_errors_and_fails_single_frames():
    policy = OomPolicy()
    assert policy.decide(MemoryError(), 8) == RetryHalved(4)
    assert policy.decide(RuntimeError("CUDA error: out of memory"), 5) == RetryHalved(2)
    assert policy.decide(type("OutOfMemoryError", (Exception,), {})("torch"), 2) == RetryHalved(1)
    assert policy.decide(ValueError("bad frame"), 8) == Split()
    assert policy.decide(MemoryError(), 1) == Fail()


def test_error_policy_stops_or_skips_as_configured():
    assert ErrorPolicy("stop").decide("hsv", 3, ValueError()) == Stop()
    assert ErrorPolicy("skip").decide("hsv", 3, ValueError()) == Skip()
    with pytest.raises(ValueError, match="on_error must be"):
        ErrorPolicy("retry")


def test_admission_holds_a_vetoed_action_until_a_release_and_gives_up_when_stopped():
    admission = Admission([WriterQueueDepth(1)])
    assert admission.acquire(Request(writes=1)) is not None
    admitted = threading.Event()
    waiter = threading.Thread(target=lambda: (admission.acquire(Request(writes=1)), admitted.set()))
    waiter.start()
    assert not admitted.wait(0.3)  # vetoed: one write pending already
    admission.release(Request(writes=1))
    assert admitted.wait(5) and admission.report().writes_pending == 1 and admission.vetoes == 1
    waiter.join()
    stop = threading.Event()
    stop.set()
    assert admission.acquire(Request(writes=1), stop) is None


# -- operators --------------------------------------------------------------------------------------------


class _Failing(Operator[int, int]):
    name = "failing"

    def run(self, item: int) -> int:
        raise RuntimeError("no")


def test_an_operator_reports_its_calls_frames_bytes_and_queue_even_when_it_fails():
    put, fetch = HostToDevice(HOST), DeviceToHost(HOST)
    batch = np.zeros((3, 4, 5, 3), np.uint8)
    assert put(batch, queued=2).array is batch and fetch(batch).host is batch  # the host: nothing moves
    assert (put.stats.calls, put.stats.frames, put.stats.bytes, put.stats.queue_max) == (1, 3, 180, 2)
    failing = _Failing()
    with pytest.raises(RuntimeError):
        failing(1, queued=4)
    assert failing.stats.calls == 1 and failing.stats.queue_max == 4 and failing.stats.frames == 0


def test_decode_fills_a_ring_slot_with_the_wanted_frames(video: Path):
    from vre_fast.sources import VideoSource

    with VideoSource(video) as source:
        reference = dict(source.read({2, 3, 5}))
        ring = FrameRing(slots=1, rows=3, frame_shape=(source.height, source.width, 3))
        slot = ring.acquire(threading.Event())
        decode = DecodeOperator(source)
        assert decode(({2, 3, 5}, slot)) is slot
    assert all(np.array_equal(slot.take([f])[0], reference[f]) for f in (2, 3, 5))
    assert decode.stats.frames == 3 and decode.stats.bytes == 3 * reference[2].nbytes


class _Mean(Representation):
    def compute(self, batch: ComputeBatch) -> np.ndarray:
        return batch.frames.mean(-1, dtype=np.float32)


def test_compute_checks_what_a_representation_returns():
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    compute = ComputeOperator(_Mean("m", _Mean.Params(), {}, type_name="mean"))
    assert compute(ComputeBatch([0, 1], frames)).shape == (2, 4, 6) and compute.stats.frames == 2
    with pytest.raises(ValueError, match="for a batch of 3 frames; expected"):
        compute(ComputeBatch([0, 1, 2], frames))


def test_frames_are_handed_over_only_when_a_representation_reads_them():
    placed = []
    batch = ComputeBatch([0], lambda: placed.append(1) or np.zeros((1, 2, 2, 3), np.uint8))
    assert not placed
    assert batch.frames.shape == (1, 2, 2, 3) and batch.frames is batch.frames and placed == [1]


def test_encode_resizes_casts_and_decodes_only_when_asked():
    rep = _Mean("m", _Mean.Params(), {}, type_name="mean")
    raw = np.random.default_rng(0).random((2, 4, 6), dtype=np.float32)
    stored, decoded = EncodeOperator(rep, (8, 12), decode=True)(raw)
    assert stored.shape == (2, 8, 12) and stored.dtype == np.float16 and decoded.dtype == np.float32
    assert np.array_equal(decoded, stored.astype(np.float32))
    assert EncodeOperator(rep, (4, 6), decode=False)(raw)[1] is None
    wrong_kind = _Mean("m", _Mean.Params(), {}, type_name="mean")
    wrong_kind.output_dtype = np.dtype(np.uint8)
    with pytest.raises(ValueError, match="cannot hold"):
        EncodeOperator(wrong_kind, (4, 6), decode=False)(raw)


def test_a_device_output_feeds_dependants_as_it_is_only_when_storage_would_not_change_it():
    class Classes(Representation):
        storage_dtype = np.uint8

        def compute(self, batch: ComputeBatch) -> np.ndarray:
            return batch.frames[..., 0]

    classes = EncodeOperator(Classes("c", Classes.Params(), {}, type_name="classes"), (4, 6), decode=True)
    assert classes.exact_on_device(np.dtype(np.uint8), (4, 6))
    assert not classes.exact_on_device(np.dtype(np.uint8), (2, 3))  # resized on the host first
    assert not classes.exact_on_device(np.dtype(np.int32), (4, 6))  # cast on the host first
    floats = EncodeOperator(_Mean("m", _Mean.Params(), {}, type_name="mean"), (4, 6), decode=True)
    assert not floats.exact_on_device(np.dtype(np.float16), (4, 6))  # float16 is widened on decode


def test_write_stores_the_frame_records_it_and_lets_go_of_the_frames(tmp_path: Path):
    from vre_fast._builder import build_graph
    from vre_fast._config_loader import parse_config
    from vre_fast.execution.binding import NodeBinding
    from vre_fast.store import FrameFiles, RepresentationMetadata

    node = build_graph(parse_config({"output_formats": ["npz", "png"], "representations": {"h": {"type": "hsv"}}}))
    node = node.nodes[0]
    metadata = RepresentationMetadata(tmp_path / "h", "h", node.representation.definition())
    binding = NodeBinding(node, (4, 6), FrameFiles(tmp_path / "h"), metadata)
    metadata.open("run-1")
    binding.files.make_dirs(node.cfg.output_formats)
    ring = FrameRing(slots=1, rows=1, frame_shape=(4, 6, 3))
    slot = ring.acquire(threading.Event())
    slot.retain()  # as the scheduler does for a write holding a view of the frames
    stored = np.full((4, 6, 3), 0.5, np.float16)
    write = WriteOperator()
    write(WriteJob(binding, 7, stored, stored.astype(np.float32), 0.01, slot))
    metadata.close()
    assert binding.files.read(7).tolist() == stored.tolist() and (tmp_path / "h" / "png" / "7.png").exists()
    assert 7 in RepresentationMetadata.read(tmp_path / "h").frames and write.stats.bytes == stored.nbytes
    slot.release()
    assert ring.acquire(threading.Event()) is slot  # the write gave its hold back


def test_the_write_pool_submits_no_more_than_the_writer_queue_admits():
    admission = Admission([WriterQueueDepth(1)])
    started, finish = threading.Event(), threading.Event()

    class Blocking(WriteOperator):
        def run(self, item: object) -> None:
            started.set()
            assert finish.wait(10)

        def frames_of(self, item: object) -> int:
            return 1

        def bytes_of(self, item: object, out: None) -> int:
            return 0

    pool = WritePool(Blocking(), workers=2, admission=admission)
    pool.submit(None)
    assert started.wait(10)
    second = threading.Thread(target=pool.submit, args=(None,))
    second.start()
    second.join(0.3)
    assert second.is_alive() and admission.report().writes_pending == 1  # held back by the policy
    finish.set()
    second.join(10)
    pool.close()
    assert admission.report().writes_pending == 0 and admission.vetoes == 1


# -- placement --------------------------------------------------------------------------------------------


class _FakeDevice:
    """A device whose arrays are wrapped host arrays, so a copy is a visible event."""

    name, kind = "cuda:7", "cuda"

    class Array:
        def __init__(self, host: np.ndarray):
            self.host, self.shape, self.dtype, self.nbytes = host, host.shape, host.dtype, host.nbytes

        def __getitem__(self, key: slice) -> _FakeDevice.Array:
            return _FakeDevice.Array(self.host[key])

        def copy_to_host(self) -> np.ndarray:
            return self.host.copy()

    def put(self, host: np.ndarray) -> Array:
        return self.Array(np.array(host))

    def fetch(self, array: Array) -> np.ndarray:
        return array.copy_to_host()


def test_outputs_on_a_device_feed_a_dependant_there_without_a_copy_and_come_back_once_for_others():
    device = _FakeDevice()
    put, fetch = HostToDevice(device), DeviceToHost(device)
    outputs = ChunkOutputs()
    batch = device.put(np.arange(4 * 2 * 3).reshape(4, 2, 3))
    outputs.add_device("a", [10, 11, 12, 13], batch, device, fetch)
    view = outputs.gather("a", [11, 12], device, put)
    assert isinstance(view, _FakeDevice.Array) and put.stats.calls == 0 and fetch.stats.calls == 0
    assert np.array_equal(view.host, batch.host[1:3])
    on_host = outputs.gather("a", [12, 13], HOST, HostToDevice(HOST))
    assert np.array_equal(on_host, batch.host[2:]) and fetch.stats.calls == 1
    outputs.gather("a", [10, 12], HOST, HostToDevice(HOST))  # cached on the host since
    assert fetch.stats.calls == 1
    again = outputs.gather("a", [13, 10], device, put)  # not consecutive in the device batch: host -> device
    assert put.stats.calls == 1 and np.array_equal(again.host, batch.host[[3, 0]])


def test_a_chain_of_two_cuda_representations_makes_no_host_copy_between_them():
    """Through `vre-fast run`'s engine on a CUDA device (numba's simulator when there is no GPU): counted by
    the runtime's own copy operators."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    check = Path(__file__).with_name("cuda_engine_check.py")
    proc = subprocess.run([sys.executable, str(check)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "'mapped': (2, 0), 'mask': (0, 2)" in proc.stdout and "masks equal the CPU run's" in proc.stdout
    # through the CUDA streams (vre_fast/execution/streams.py): every copy queued there, ordered by events
    assert "streams: {'to_device': 4, 'to_host': 4, 'record': 12, 'wait': 8, 'launching': 6" in proc.stdout
