"""The batch executor: decode -> (host->device) -> compute -> (device->host) -> encode -> write, for the frames a
plan says, in graph order, batched per node.

Decoding runs in a thread ahead of compute, writes in a thread pool behind it; back-pressure policies admit
each chunk and each write, so memory stays flat whatever the video's length. The OOM and error policies
decide what a failing batch means; the scheduler carries it out. It knows nothing of any particular
representation or device: nodes run through `NodeExecution`, the one path a stream uses too.

On a CUDA device copies and kernels are queued on streams ordered by events (streams.py): a node none of whose
dependants reads its outputs is finished (its copy back waited for, encoded, handed to the writers) at the
end of the chunk, after every other node is launched, so the device is not left idle while the host encodes.
On the host the streams are null and the same code runs, the order of writes aside.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RepresentationError, StoreError
from ..representation import SAMPLE_FRAMES, ComputeBatch, sample_batch
from ..sources import FramesSource
from .admission import Admission
from .binding import NodeBinding
from .devices import HOST, Device, can_pin_memory
from .memory import free_memory
from .node import Launched, NodeExecution, NodeResult, OutputUse, placement
from .operators import DecodeOperator, DecodeStage, WriteJob, WriteOperator, WritePool
from .outputs import ChunkOutputs
from .plan import Plan
from .policies import ErrorPolicy, Fail, InFlightFrames, OomPolicy, PinnedBytes, RetryHalved, Stop, WriterQueueDepth
from .residency import Residency
from .ring import FrameRing, FrameSlot
from .streams import Streams, streams_for
from .threads import default_kernel_threads, kernel_threads

__all__ = ["BatchExecutor", "StageStats"]

logger = logging.getLogger("vre_fast")

PINNED_BYTES_LIMIT = 2 << 30  # page-locked frame buffers at most (CUDA runs): pinned memory cannot be swapped


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
    host_to_device_copies: int = 0
    device_to_host_copies: int = 0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


class BatchExecutor:
    def __init__(self, bindings: list[NodeBinding], plan: Plan, source: FramesSource, on_error: str = "stop",
                 write_workers: int = 4, prefetch: int = 2, on_chunk: Callable[[int], None] | None = None,
                 kernel_threads: int | None = None, residency: Residency | None = None,
                 unavailable: dict[str, frozenset[int]] | None = None,
                 streams: Callable[[Device], Streams] | None = None):
        """`residency`: where set-up representations are kept; None: this run's own, released when it ends (a
        worker session passes its own, so its experts stay loaded across runs). `unavailable`: frames of nodes
        that are read back, never computed (another group's outputs), that are not on disk: each fails (for
        it and its dependants, as `on_error` says) instead of being computed. `streams`: a device -> its
        streams (by default `streams_for`: CUDA streams on a CUDA device, null ones on the host)."""
        self.bindings, self.plan, self.source = bindings, plan, source
        self._owns_residency = residency is None
        self.residency = Residency() if residency is None else residency
        self.errors, self.oom = ErrorPolicy(on_error), OomPolicy()
        self.stages = StageStats()
        self._last_frame = source.num_frames - 1
        self._prefetch = prefetch
        self._chunk_size = max(b.stats.batch_size for b in bindings)
        self._decode = DecodeOperator(source)
        self._write = WriteOperator()
        self._write_workers = write_workers
        self._on_chunk = on_chunk or (lambda n: None)
        self._kernel_threads = kernel_threads or default_kernel_threads()
        self._sample_batch: ComputeBatch | None = None
        self._streams = streams or streams_for
        self._unfinished: list[tuple[NodeBinding, list[int], Launched]] = []  # finished at the chunk's end
        self.executions = {b.name: self._execution(b) for b in bindings}
        self._unavailable = unavailable or {}

    def _execution(self, binding: NodeBinding) -> NodeExecution:
        """Decides, once per run, what each node's output is needed for."""
        computing = [b for b in self.bindings if self.plan.compute[b.name] and binding.name in b.node.inputs.values()]
        device = placement(binding.node).name
        # pictures are drawn by the writers, which decode the stored frame themselves (in parallel, off the
        # compute thread) when no dependant needs the decoded batch here: so `drawn` stays False
        use = OutputUse(stored=bool(self.plan.write[binding.name]),
                        dependants_on_its_device=any(placement(b.node).name == device for b in computing),
                        dependants_elsewhere=any(placement(b.node).name != device for b in computing))
        return NodeExecution(binding.node, binding.output_size, use, self._streams)

    def run(self) -> None:
        try:
            with kernel_threads(self._kernel_threads):
                self._run()
        finally:
            for b in self.bindings:
                execution = self.executions[b.name]
                b.stats.copies_to_device = execution.put.stats.calls
                b.stats.copies_to_host = execution.fetch.stats.calls
            self.stages.host_to_device_copies = sum(b.stats.copies_to_device for b in self.bindings)
            self.stages.device_to_host_copies = sum(b.stats.copies_to_host for b in self.bindings)

    def _run(self) -> None:
        frames = self.plan.frames
        chunks = [frames[i:i + self._chunk_size] for i in range(0, len(frames), self._chunk_size)]
        deltas = {b.representation.next_frame_delta for b in self.bindings
                  if b.representation.needs_next_frame and self.plan.compute[b.name]}
        wanted = [set(c).union(*({self._partner(f, d) for f in c} for d in deltas)) for c in chunks]
        rows = max(map(len, wanted), default=1)
        slots = self._prefetch + 2  # `prefetch` queued, one being filled, one being computed
        pinned = any(placement(b.node) is not HOST for b in self.bindings) and can_pin_memory()
        ring = FrameRing(slots, rows, (self.source.height, self.source.width, 3), pinned=pinned)
        admission = Admission([InFlightFrames(slots * rows), PinnedBytes(PINNED_BYTES_LIMIT),
                               WriterQueueDepth(4 * self._write_workers)])
        writes = WritePool(self._write, self._write_workers, admission)
        decode = DecodeStage(self._decode, list(zip(chunks, wanted)), ring, admission, self._prefetch)
        started = waiting = time.perf_counter()
        try:
            for chunk, slot in decode:
                busy = time.perf_counter()
                self.stages.waited_for_decode += busy - waiting
                try:
                    self._step(chunk, slot, writes)
                finally:
                    slot.wait_for_reads()  # here, not in a writer thread that may let go of it last
                    slot.release()
                writes.raise_errors()
                self._on_chunk(len(chunk))
                waiting = time.perf_counter()
                self.stages.compute_busy += waiting - busy
        finally:
            decode.close()
            writes.close()
            self.stages.wall = time.perf_counter() - started
            self.stages.decode_busy = self._decode.stats.busy_seconds
            self.stages.decode_queue_max = self._decode.stats.queue_max
            self.stages.write_busy = self._write.stats.busy_seconds
            self.stages.write_pending_max = self._write.stats.queue_max + 1 if self._write.stats.calls else 0
            self.stages.waited_for_writes = writes.waited_seconds
            if self._owns_residency:
                self.residency.release()
        writes.raise_errors()

    # -- one chunk ----------------------------------------------------------------------------------------
    def _step(self, chunk: list[int], slot: FrameSlot, writes: WritePool) -> None:
        """Every node, in graph order, on the chunk's frames: loaded where the plan says, computed in batches
        where it says so, each computed frame handed to the writers."""
        outputs, failed = ChunkOutputs(), {b.name: set() for b in self.bindings}
        frames = _PlacedFrames(slot)
        self._unfinished = []
        for b in self.bindings:
            for f in (f for f in chunk if f in self.plan.load[b.name]):
                try:
                    outputs.add_host(b.name, f, b.representation.decode(b.load(f)))
                except StoreError as exc:  # a damaged stored file: the frame fails for it and its dependants
                    self._fail(b, f, exc, failed)
                    continue
                b.stats.loaded += 1
            ready = []
            for f in (f for f in chunk if f in self.plan.compute[b.name]):
                bad = [dep for dep in b.node.inputs.values() if f in failed[dep]]
                if f in self._unavailable.get(b.name, ()):
                    self._fail(b, f, StoreError(f"'{b.name}' (another group's output) is not stored for this "
                                                f"frame; it is read from disk, never recomputed here"), failed,
                               counted=False)
                elif bad:
                    self._fail(b, f, RuntimeError(f"dependency '{bad[0]}' failed on this frame"), failed)
                else:
                    ready.append(f)
            self._compute_in_batches(b, ready, frames, outputs, failed, writes)
        while self._unfinished:  # in launch order; a failed batch may add its frames again, one by one
            b, indices, launched = self._unfinished.pop(0)
            try:
                result = launched.finish(outputs)
            except Exception as exc:
                self._recover(b, indices, exc, frames, outputs, failed, writes)
                continue
            self._submit(b, result, frames, writes)

    def _compute_in_batches(self, b: NodeBinding, indices: list[int], frames: _PlacedFrames, outputs: ChunkOutputs,
                            failed: dict[str, set[int]], writes: WritePool) -> None:
        if indices and not b.stats.set_up:
            b.stats.set_up = True
            b.stats.setup_seconds = self.residency.ensure(self.executions[b.name], (str(self.source.path),
                                                          self.source.topic), self._sample)
        i = 0
        while i < len(indices):  # the batch size may shrink on the way (out of memory)
            size = b.stats.batch_size
            self._compute_batch(b, indices[i:i + size], frames, outputs, failed, writes)
            i += size

    def _compute_batch(self, b: NodeBinding, indices: list[int], frames: _PlacedFrames, outputs: ChunkOutputs,
                       failed: dict[str, set[int]], writes: WritePool) -> None:
        execution = self.executions[b.name]
        following = [self._partner(f, b.representation.next_frame_delta) for f in indices]
        try:
            launched = execution.launch(indices, frames.on(execution, indices), frames.on(execution, following),
                                        outputs)
            if not execution.use.dependants:  # nothing in this chunk waits for its outputs
                self._unfinished.append((b, indices, launched))
                return
            result = launched.finish(outputs)
        except Exception as exc:
            self._recover(b, indices, exc, frames, outputs, failed, writes)
            return
        self._submit(b, result, frames, writes)

    def _recover(self, b: NodeBinding, indices: list[int], exc: Exception, frames: _PlacedFrames,
                 outputs: ChunkOutputs, failed: dict[str, set[int]], writes: WritePool) -> None:
        """A batch raised (computing, copying back or encoding): retried smaller, split or failed, as the
        OOM policy decides."""
        decision = self.oom.decide(exc, len(indices))
        if isinstance(decision, RetryHalved):
            free_memory()
            b.stats.batch_size = min(b.stats.batch_size, decision.batch_size)
            b.stats.oom_halvings += 1
            logger.warning("representation '%s' ran out of memory on a batch of %d; batch size now %d",
                           b.name, len(indices), b.stats.batch_size)
            self._compute_in_batches(b, indices, frames, outputs, failed, writes)
        elif isinstance(decision, Fail):
            self._fail(b, indices[0], exc, failed)
        else:
            for f in indices:
                self._compute_batch(b, [f], frames, outputs, failed, writes)

    def _submit(self, b: NodeBinding, result: NodeResult, frames: _PlacedFrames, writes: WritePool) -> None:
        """Hands each frame of a finished batch to write to the writers; a job whose output is a view of the
        frames or of the copy's pinned buffer holds that until written."""
        try:
            b.stats.compute_seconds += result.seconds
            b.stats.computed += len(result.indices)
            for i, f in enumerate(result.indices):
                if f in self.plan.write[b.name]:
                    assert result.stored is not None
                    stored, decoded = result.stored[i], None if result.decoded is None else result.decoded[i]
                    holder = next((h for h in (frames.slot, result.buffer) if h is not None and (
                        h.holds(stored) or (decoded is not None and h.holds(decoded)))), None)
                    if holder is not None:  # the output is a view of it: kept until the frame is written
                        holder.retain()
                    writes.submit(WriteJob(b, f, stored, decoded, result.seconds / len(result.indices), holder))
        finally:
            if result.buffer is not None:
                result.buffer.release()  # the result's own hold; write jobs viewing it hold theirs

    def _partner(self, frame: int, delta: int) -> int:
        """The frame a `needs_next_frame` node pairs `frame` with: frame + delta, clipped to the video (VRE's)."""
        return min(max(frame + delta, 0), self._last_frame)

    def _sample(self) -> ComputeBatch:
        """The video's first frames for `prepare`, decoded once by a second reader (the decode thread owns
        the first)."""
        if self._sample_batch is None:
            with self.source.reopen() as source:
                self._sample_batch = sample_batch(source.head(SAMPLE_FRAMES + 1))
        return self._sample_batch

    def _fail(self, b: NodeBinding, frame: int, exc: BaseException, failed: dict[str, set[int]],
              counted: bool = True) -> None:
        """`counted`: False for another group's frame that is missing (its own run counted its failure)."""
        if isinstance(self.errors.decide(b.name, frame, exc), Stop):
            if isinstance(exc, StoreError):
                raise exc
            raise RepresentationError(b.name, frame, exc) from exc
        logger.warning("representation '%s' failed on frame %d: %s: %s", b.name, frame, type(exc).__name__, exc)
        failed[b.name].add(frame)
        if not counted:
            return
        b.stats.failed_frames.add(frame)
        if b.metadata is not None:
            b.metadata.record_failure(frame, f"{type(exc).__name__}: {exc}")


class _PlacedFrames:
    """A chunk's frames as each node's device sees them, copied to a device once per batch of frames."""

    def __init__(self, slot: FrameSlot):
        self.slot = slot
        self._on_device: dict[tuple[str, tuple[int, ...]], object] = {}

    def on(self, execution: NodeExecution, indices: list[int]) -> Callable[[], object]:
        def place() -> object:
            host = self.slot.take(indices)
            if execution.device is HOST:
                return host
            key = (execution.device.name, tuple(indices))
            if key not in self._on_device:
                placed = execution.put(host)
                self.slot.after(placed.copied)  # the slot is not refilled before the copy has read it
                self._on_device[key] = placed.array
            return self._on_device[key]

        return place
