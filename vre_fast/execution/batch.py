"""The batch pipeline: decode -> compute (graph order, batched) -> encode/compress -> atomic write.

Decoding runs in a thread ahead of compute, writes in a small thread pool behind it; both are
connected by bounded queues, so memory stays flat whatever the video's length, and a slow disk
slows compute down instead of piling results up. The executor knows nothing of any particular
representation: it only calls the `Representation` contract.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .._builder import GraphNode
from .._cfg import BINARY_FORMATS, IMAGE_FORMATS
from ..errors import RepresentationError, StoreError, VreError
from ..representation import SAMPLE_FRAMES, ComputeBatch, Representation, sample_batch
from ..sources import VideoSource
from ..store import FrameFiles, RepresentationMetadata
from .node import run_representation
from .oom import free_memory, is_out_of_memory
from .plan import Plan
from .ring import FrameRing, FrameSlot
from .threads import default_kernel_threads, kernel_threads

__all__ = ["BatchExecutor", "NodeRuntime", "NodeStats", "StageStats"]

logger = logging.getLogger("vre_fast")


@dataclass
class NodeStats:
    computed: int = 0
    loaded: int = 0
    failed_frames: set[int] = field(default_factory=set)
    compute_seconds: float = 0.0
    set_up: bool = False
    setup_seconds: float = 0.0  # setup + prepare: loading weights, building or loading an engine
    batch_size: int = 0  # the batch size in use: the config's, halved on each out-of-memory
    oom_halvings: int = 0


@dataclass
class StageStats:
    """Where the time went: seconds each stage was busy, the wall time, how full the queues got.

    Busy times of overlapping stages add up to more than the wall time when the pipeline overlaps well;
    `waited_for_decode` / `waited_for_writes` are the compute thread's idle seconds on either side."""

    decode_busy: float = 0.0
    compute_busy: float = 0.0
    write_busy: float = 0.0  # summed over the writer threads
    waited_for_decode: float = 0.0
    waited_for_writes: float = 0.0
    wall: float = 0.0
    decode_queue_max: int = 0
    write_pending_max: int = 0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass
class NodeRuntime:
    """A graph node bound to this run: where it writes, its output size, its counters."""

    node: GraphNode
    output_size: tuple[int, int]
    files: FrameFiles
    metadata: RepresentationMetadata | None  # None: not stored (a pure dependency)
    stats: NodeStats = field(default_factory=NodeStats)

    @property
    def name(self) -> str:
        return self.node.name

    def __post_init__(self) -> None:
        self.stats.batch_size = self.node.cfg.batch_size

    def load(self, frame: int) -> np.ndarray:
        """A stored output read back for a dependant; one of another size was not written by this graph."""
        stored = self.files.read(frame)
        if stored.shape[:2] != self.output_size:
            raise StoreError(f"{self.files.directory / 'npz'} frame {frame}: the stored array is "
                             f"{'x'.join(map(str, stored.shape))}, but '{self.name}' is {self.output_size[1]}x"
                             f"{self.output_size[0]} in this run; replaced by hand? run `vre-fast metadata rebuild "
                             f"{self.files.directory.parent}`")
        return stored


class _DecodeStage:
    """Decodes the frames of each chunk (plus t+1 where needed) into ring slots in a thread, a bounded
    queue ahead; the consumer releases each slot when done with it."""

    _END = object()

    def __init__(self, source: VideoSource, chunks: list[tuple[list[int], set[int]]], ring: FrameRing,
                 max_queued: int, stats: StageStats):
        self._source, self._chunks, self._ring, self._stats = source, chunks, ring, stats
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vre-decode", daemon=True)

    def __iter__(self) -> Iterator[tuple[list[int], FrameSlot]]:
        self._thread.start()
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self) -> None:
        try:
            for chunk, wanted in self._chunks:
                slot = self._ring.acquire(self._stop)
                if slot is None:
                    return
                start = time.perf_counter()
                try:
                    slot.fill(self._source.read(wanted), self._source.path)
                except BaseException:
                    slot.release()
                    raise
                self._stats.decode_busy += time.perf_counter() - start
                if not self._put((chunk, slot)):
                    slot.release()
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
        self._put(self._END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                self._stats.decode_queue_max = max(self._stats.decode_queue_max, self._queue.qsize())
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        while not self._queue.empty():  # chunks decoded but never computed give their slots back
            item = self._queue.get()
            if isinstance(item, tuple):
                item[1].release()


class _WriteStage:
    """Runs write jobs in a thread pool; `submit` blocks while `max_pending` jobs are in flight."""

    def __init__(self, workers: int, max_pending: int, stats: StageStats):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vre-write")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._errors: list[BaseException] = []
        self._stats, self._pending, self._lock = stats, 0, threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        start = time.perf_counter()
        self._slots.acquire()
        self._stats.waited_for_writes += time.perf_counter() - start
        with self._lock:
            self._pending += 1
            self._stats.write_pending_max = max(self._stats.write_pending_max, self._pending)
        self._pool.submit(self._timed, job).add_done_callback(self._done)

    def _timed(self, job: Callable[[], None]) -> None:
        start = time.perf_counter()
        try:
            job()
        finally:
            with self._lock:
                self._stats.write_busy += time.perf_counter() - start

    def _done(self, future: Future) -> None:
        with self._lock:
            self._pending -= 1
        self._slots.release()
        if future.exception() is not None:
            self._errors.append(future.exception())

    def raise_errors(self) -> None:
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        """Waits for every submitted write: finished work is never dropped, even when stopping."""
        self._pool.shutdown(wait=True)


class BatchExecutor:
    def __init__(self, runtimes: list[NodeRuntime], plan: Plan, source: VideoSource,
                 on_error: Literal["stop", "skip"] = "stop", write_workers: int = 2, prefetch: int = 2,
                 on_chunk: Callable[[int], None] | None = None, kernel_threads: int | None = None):
        self.runtimes, self.plan, self.source = runtimes, plan, source
        self.on_error = on_error
        self._last_frame = source.num_frames - 1
        self.stages = StageStats()
        self._writer = _WriteStage(write_workers, max_pending=4 * write_workers, stats=self.stages)
        self._prefetch = prefetch
        self._sample_batch: ComputeBatch | None = None
        # nodes whose decoded outputs a computing dependant reads in this run, and those that also need them
        # for their pictures: the others skip decoding (widening float16 costs about what a kernel does)
        self._feeds_dependants = {dep for rt in runtimes if plan.compute[rt.name] for dep in rt.node.inputs.values()}
        self._decodes = self._feeds_dependants | {rt.name for rt in runtimes
                                                  if any(f in IMAGE_FORMATS for f in rt.node.cfg.output_formats)}
        self._on_chunk = on_chunk or (lambda n: None)
        self._kernel_threads = kernel_threads or default_kernel_threads()

    def run(self) -> None:
        with kernel_threads(self._kernel_threads):
            self._run()

    def _run(self) -> None:
        chunk_size = max(rt.stats.batch_size for rt in self.runtimes)
        frames = self.plan.frames
        chunks = [frames[i:i + chunk_size] for i in range(0, len(frames), chunk_size)]
        next_frame = any(rt.node.representation.needs_next_frame and self.plan.compute[rt.name]
                         for rt in self.runtimes)
        wanted = [set(c) | ({min(f + 1, self._last_frame) for f in c} if next_frame else set()) for c in chunks]
        # slots: `prefetch` queued, one being filled, one being computed; writes holding views keep theirs
        ring = FrameRing(self._prefetch + 2, max(map(len, wanted), default=1),
                         pinned=any(rt.node.cfg.device.startswith("cuda") for rt in self.runtimes))
        decode = _DecodeStage(self.source, list(zip(chunks, wanted)), ring, self._prefetch, self.stages)
        started = waiting = time.perf_counter()
        try:
            for chunk, slot in decode:
                busy = time.perf_counter()
                self.stages.waited_for_decode += busy - waiting
                try:
                    self._compute_chunk(chunk, slot)
                finally:
                    slot.release()
                self._writer.raise_errors()
                self._on_chunk(len(chunk))
                waiting = time.perf_counter()
                self.stages.compute_busy += waiting - busy
        finally:
            decode.close()
            self._writer.close()
            self.stages.wall = time.perf_counter() - started
            for rt in self.runtimes:
                if rt.stats.set_up:
                    rt.node.representation.teardown()
        self._writer.raise_errors()

    # -- compute ---------------------------------------------------------------------------------------
    def _compute_chunk(self, chunk: list[int], frames: FrameSlot) -> None:
        outputs: dict[str, dict[int, np.ndarray]] = {}
        failed: dict[str, set[int]] = {}
        for rt in self.runtimes:
            outputs[rt.name], failed[rt.name] = {}, set()
            for f in (f for f in chunk if f in self.plan.load[rt.name]):
                try:
                    outputs[rt.name][f] = rt.node.representation.decode(rt.load(f))
                except StoreError as exc:  # a damaged stored file: the frame fails for it and its dependants
                    if self.on_error == "stop":
                        raise
                    self._fail(rt, f, exc, failed)
                    continue
                rt.stats.loaded += 1
            ready = []
            for f in (f for f in chunk if f in self.plan.compute[rt.name]):
                bad = [dep for dep in rt.node.inputs.values() if f in failed[dep]]
                if bad:
                    self._fail(rt, f, RuntimeError(f"dependency '{bad[0]}' failed on this frame"), failed)
                else:
                    ready.append(f)
            self._compute_in_batches(rt, ready, frames, outputs, failed)

    def _compute_in_batches(self, rt: NodeRuntime, indices: list[int], frames: FrameSlot,
                            outputs: dict[str, dict[int, np.ndarray]], failed: dict[str, set[int]]) -> None:
        if indices and not rt.stats.set_up:
            self._set_up(rt)
        i = 0
        while i < len(indices):  # the batch size may shrink on the way (out of memory)
            size = rt.stats.batch_size
            self._compute_batch(rt, indices[i:i + size], frames, outputs, failed)
            i += size

    def _compute_batch(self, rt: NodeRuntime, indices: list[int], frames: FrameSlot,
                       outputs: dict[str, dict[int, np.ndarray]], failed: dict[str, set[int]]) -> None:
        try:
            stored, decoded, seconds = self._run_node(rt, indices, frames, outputs)
        except Exception as exc:
            if len(indices) > 1 and is_out_of_memory(exc):  # halve for good, retry the same frames
                free_memory()
                rt.stats.batch_size = min(rt.stats.batch_size, len(indices) // 2)
                rt.stats.oom_halvings += 1
                logger.warning("representation '%s' ran out of memory on a batch of %d; batch size now %d",
                               rt.name, len(indices), rt.stats.batch_size)
                self._compute_in_batches(rt, indices, frames, outputs, failed)
            elif len(indices) == 1:
                self._fail(rt, indices[0], exc, failed)
            else:  # retry frame by frame so only the failing frame is lost and it can be named
                for f in indices:
                    self._compute_batch(rt, [f], frames, outputs, failed)
            return
        for i, f in enumerate(indices):
            output = None if decoded is None else decoded[i]
            if rt.name in self._feeds_dependants:
                outputs[rt.name][f] = output
            if f in self.plan.write[rt.name]:
                views_frames = frames.holds(stored[i]) or (output is not None and frames.holds(output))
                holder = frames if views_frames else None
                if holder is not None:  # the output is a view of the frames: keep them until it is written
                    holder.retain()
                self._writer.submit(_WriteJob(rt, f, stored[i], output, seconds / len(indices), holder))

    def _run_node(self, rt: NodeRuntime, indices: list[int], frames: FrameSlot,
                  outputs: dict[str, dict[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray | None, float]:
        rep = rt.node.representation
        batch = ComputeBatch(
            indices=indices,
            frames=frames.take(indices),
            next_frames=frames.take([min(f + 1, self._last_frame) for f in indices]) if rep.needs_next_frame else None,
            inputs={role: np.stack([outputs[dep][f] for f in indices]) for role, dep in rt.node.inputs.items()},
            device=rt.node.cfg.device,
        )
        start = time.perf_counter()
        stored, decoded = run_representation(rep, batch, rt.output_size, decode=rt.name in self._decodes)
        seconds = time.perf_counter() - start
        rt.stats.compute_seconds += seconds
        rt.stats.computed += len(indices)
        return stored, decoded, seconds

    def _set_up(self, rt: NodeRuntime) -> None:
        """Setup and prepare, once: a failure there (missing weights, an INT8 model refused) is not a frame's
        failure, so it stops the run whatever `on_error` says."""
        start = time.perf_counter()
        rt.stats.set_up = True  # teardown is due even if prepare fails half-way
        try:
            rep = rt.node.representation
            rep.setup(rt.node.cfg.device)
            if type(rep).prepare is not Representation.prepare:  # decode the sample only for those that use it
                rep.prepare(self._sample())
        except VreError:
            raise
        except Exception as exc:
            raise VreError(f"representation '{rt.name}' could not be set up: {type(exc).__name__}: {exc}") from exc
        rt.stats.setup_seconds = time.perf_counter() - start

    def _sample(self) -> ComputeBatch:
        """The video's first frames for `prepare`, decoded once by a second reader (the decode thread owns
        the first)."""
        if self._sample_batch is None:
            with VideoSource(self.source.path) as source:
                self._sample_batch = sample_batch(source.head(SAMPLE_FRAMES + 1))
        return self._sample_batch

    def _fail(self, rt: NodeRuntime, frame: int, exc: BaseException, failed: dict[str, set[int]]) -> None:
        if self.on_error == "stop":
            raise RepresentationError(rt.name, frame, exc) from exc
        logger.warning("representation '%s' failed on frame %d: %s: %s", rt.name, frame, type(exc).__name__, exc)
        failed[rt.name].add(frame)
        rt.stats.failed_frames.add(frame)
        if rt.metadata is not None:
            rt.metadata.record_failure(frame, f"{type(exc).__name__}: {exc}")


@dataclass
class _WriteJob:
    """Encode to image formats, compress, write atomically, then record: in a writer thread."""

    rt: NodeRuntime
    frame: int
    stored: np.ndarray
    decoded: np.ndarray | None  # None when no picture is written
    seconds: float
    frames: FrameSlot | None  # the slot the output is a view of, released once written

    def __call__(self) -> None:
        try:
            self._write()
        finally:
            if self.frames is not None:
                self.frames.release()

    def _write(self) -> None:
        cfg = self.rt.node.cfg
        images = [fmt for fmt in cfg.output_formats if fmt in IMAGE_FORMATS]
        picture = self.rt.node.representation.make_image(self.decoded[None])[0] if images else None
        binary = tuple(fmt for fmt in cfg.output_formats if fmt in BINARY_FORMATS)
        self.rt.files.write(self.frame, self.stored, binary, {fmt: picture for fmt in images}, cfg.compress,
                            cfg.jpeg_quality)
        assert self.rt.metadata is not None
        self.rt.metadata.record(self.frame, self.seconds, cfg.output_formats)
