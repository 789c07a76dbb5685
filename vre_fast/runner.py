"""`vre-fast run`: one video, one graph, one output directory; resumable and safe to run in parallel."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from ._builder import GraphNode, RepresentationGraph, build_graph
from ._cfg import RunCfg
from .backends import require_cuda
from .errors import ConfigError, StoreError, VideoError
from .execution import BatchExecutor, NodeBinding, Plan, StageStats, make_plan
from .execution.residency import Residency
from .frame_range import describe_frames, parse_frames
from .sources import FramesSource, open_input
from .store import (
    DatasetSources,
    FrameFiles,
    RepresentationMetadata,
    RunRecord,
    SourceIdentity,
    clear_representation,
    close_abandoned_runs,
    held_while_running,
    sweep_temporaries,
)
from .store.run_record import new_run_id

__all__ = ["RunOptions", "RunResult", "RunSession", "parse_frames", "run"]

logger = logging.getLogger("vre_fast")


@dataclass(frozen=True)
class RunOptions:
    """How `run` works (not what it computes: that is the config)."""

    frames: tuple[int | None, int | None] = (None, None)  # [start, stop); None: the video's ends
    frame_list: tuple[int, ...] | None = None  # explicit frames (`--frames 5 8 22`), instead of `frames`
    representations: tuple[str, ...] | None = None  # the ones to store (their dependencies are computed as needed,
    # or read back where stored, and not written); None: every stored one of the config
    exists: Literal["skip", "overwrite", "raise"] = "skip"  # what to do with frames the output already holds
    fps: float | None = None  # the frame rate of a folder of frames (None: 1, VRE's default); a video has its own
    on_error: Literal["stop", "skip"] = "stop"
    write_workers: int = 4  # direct writes spend most of their time waiting on the disk: 4 keep it busy
    prefetch_chunks: int = 2
    progress: bool = False  # a progress bar on stderr (`vre-fast run` shows one unless --no-progress)
    allow_other_source: bool = False  # add frames of a video other than the one the dataset was made from
    # "kill": atomic renames, safe against a killed process; "power": also fsync each file and its
    # directory before the frame is recorded, safe against power loss (bench/durability.py: the writers busy
    # 1.45x as long, the run 1.07x at 960x540 on this project's machine)
    durability: Literal["kill", "power"] = "kill"
    # "direct": files of 1 MiB and more are written with O_DIRECT, past the page cache, where the file system
    # takes it (bench/write_io.py: ~8x less kernel time per byte on this project's machine); "buffered": all
    # through the page cache. Either way a file is complete before its rename.
    write_io: Literal["direct", "buffered"] = "direct"
    kernel_threads: int | None = None  # threads of a parallel kernel; None: all cores but one (decode and writers)
    topic: str | None = None  # a ROS bag input's image topic; None: its only one (an error for a video)
    read_only: tuple[str, ...] = ()  # nodes read back from disk, never computed (another group's outputs)
    # a video's decoder: "pyav", or "torchcodec" (on the first CUDA device the graph computes on: NVDEC; else
    # FFmpeg on the CPU)
    decoder: str = "pyav"

    def __post_init__(self) -> None:
        if self.on_error not in ("stop", "skip"):
            raise ValueError(f"on_error must be 'stop' or 'skip', got {self.on_error!r}")
        if self.durability not in ("kill", "power"):
            raise ValueError(f"durability must be 'kill' or 'power', got {self.durability!r}")
        if self.write_io not in ("direct", "buffered"):
            raise ValueError(f"write_io must be 'direct' or 'buffered', got {self.write_io!r}")
        if self.exists not in ("skip", "overwrite", "raise"):
            raise ValueError(f"exists must be 'skip', 'overwrite' or 'raise', got {self.exists!r}")
        if self.frame_list is not None and (self.frames != (None, None) or not self.frame_list
                                            or min(self.frame_list) < 0):
            raise ValueError(f"frame_list must be a non-empty list of frames >= 0, given without frames; got "
                             f"{self.frame_list!r} and {self.frames!r}")
        if self.write_workers < 1 or self.prefetch_chunks < 1:
            raise ValueError(f"write_workers and prefetch_chunks must be >= 1, got {self.write_workers} and "
                             f"{self.prefetch_chunks}")
    argv: tuple[str, ...] = ()


@dataclass
class RunResult:
    """What `run` did. `run` prints nothing (it is a library function); `vre-fast run` prints `report()`."""

    run_id: str | None  # None: nothing to compute
    computed_frames: int
    record: RunRecord | None
    bindings: list[NodeBinding] = field(default_factory=list)
    frames: tuple[int, int] = (0, 0)  # the [start, stop) requested (the span of `frame_list` when one was given)
    out_dir: Path = Path()
    frame_list: tuple[int, ...] | None = None  # the frames requested, when a list was
    source: SourceIdentity | None = None  # what the frames were read from
    stages: StageStats | None = None  # which stage bounded the run; None when nothing was computed
    already_done: dict[str, int] = field(default_factory=dict)  # node -> requested frames already on disk

    @property
    def nothing_to_compute(self) -> bool:
        """Every requested frame of every stored representation was already in the output directory."""
        return self.run_id is None

    def report(self) -> str:
        """The lines `vre-fast run` prints on stderr: the stage line and the summary table, or why nothing ran."""
        if self.nothing_to_compute:
            stored = sum(b.metadata is not None for b in self.bindings)
            frames = describe_frames(self.frame_list) if self.frame_list is not None else "{}..{}".format(*self.frames)
            return (f"Nothing to compute: frames {frames} of all {stored} stored representations are "
                    f"already in {self.out_dir}.")
        return f"{_stage_line(self.stages)}\n{summary_table(summary_rows(self.bindings, self.already_done))}"


class RunSession:
    """Runs one after another in one process that share what is costly to make again: the graph built from a
    config (its representations set up once and kept loaded: `execution.Residency`), each input's open decoder
    and its identity (a fingerprint decodes frames spread over the video). A worker (`vre_fast.scale`) keeps
    one for all its units; `run` without one makes a session for the one run and closes it."""

    MAX_OPEN_SOURCES = 4  # inputs kept open; a worker of a many-video run goes through thousands of videos

    def __init__(self) -> None:
        self.residency = Residency()
        self._graphs: dict[tuple, RepresentationGraph] = {}
        self._sources: dict[tuple, FramesSource] = {}  # the most recently used last
        self._identities: dict[tuple, SourceIdentity] = {}  # kept after their input is closed: small, and costly

    def graph(self, cfg: RunCfg) -> RepresentationGraph:
        """The graph of `cfg`, built once (the devices are part of the key: a worker moves nodes to its own)."""
        key = (cfg.config_hash, cfg.source, tuple((r.name, r.device) for r in cfg.representations))
        if key not in self._graphs:
            self._graphs[key] = build_graph(cfg)
        return self._graphs[key]

    def source(self, video: str | Path, topic: str | None, fps: float | None, decoder: str = "pyav",
               device: str = "cpu") -> tuple[FramesSource, SourceIdentity]:
        """The open input and its identity, opened on first use; past MAX_OPEN_SOURCES inputs the least recently
        used is closed (each holds a file and a decoder: a worker that kept every video of a long manifest open
        would run out of file descriptors), its identity kept."""
        key = (str(video), topic, fps, decoder, device)
        if key in self._sources:
            self._sources[key] = self._sources.pop(key)  # the most recently used
        else:
            source = open_input(video, topic, fps, decoder, device)
            try:
                if key not in self._identities:
                    self._identities[key] = _identify(source)
            except BaseException:
                source.close()
                raise
            self._sources[key] = source
            while len(self._sources) > self.MAX_OPEN_SOURCES:
                self._sources.pop(next(iter(self._sources))).close()
        return self._sources[key], self._identities[key]

    def close(self) -> None:
        """Tears the representations down and closes the inputs."""
        try:
            self.residency.release()
        finally:
            sources, self._sources = list(self._sources.values()), {}
            for source in sources:
                source.close()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(video: str | Path, cfg: RunCfg, out_dir: str | Path, options: RunOptions = RunOptions(),
        session: RunSession | None = None) -> RunResult:
    """Everything up to the decision to compute only reads the output directory, so a finished (or
    read-only) dataset is checked without write access; writing starts once there is work (or, with
    `exists="overwrite"`, once the chosen representations' old frames are to be deleted). `video`: a video
    file or a folder of frames. Prints nothing: the returned RunResult carries what a caller may want to show
    (`report()`). `session`: what to keep between runs (a worker's); None: this run's own, closed at its end."""
    if session is None:
        with RunSession() as own:
            return run(video, cfg, out_dir, options, own)
    graph = session.graph(cfg)  # every config error surfaces before the video is opened
    chosen = chosen_representations(graph, options.representations)
    graph = with_dependencies(graph, chosen)
    out_dir = Path(out_dir)
    for folder in (out_dir, *out_dir.parents):  # the nearest existing one must be a directory
        if folder.exists():
            if not folder.is_dir():
                raise StoreError(f"-o {out_dir}: {'it' if folder == out_dir else folder} is a file; the output must "
                                 f"be a directory (created if missing)")
            break
    cuda_devices = [n.cfg.device for n in graph.nodes if n.cfg.device.startswith("cuda")]
    source, identity = session.source(video, options.topic, options.fps, options.decoder,
                                      cuda_devices[0] if options.decoder == "torchcodec" and cuda_devices else "cpu")
    requested = requested_frames(source, options)
    start, stop = requested[0], requested[-1] + 1
    sources = DatasetSources(out_dir)
    sources.check(identity, options.allow_other_source)
    dependencies_done = _dependencies_done(graph, chosen, out_dir)
    if options.exists == "overwrite":
        overwrite_outputs(out_dir, graph, chosen)
    bindings = bind_nodes(graph, chosen, out_dir, (source.height, source.width), options.durability,
                          options.write_io)
    stored = [b for b in bindings if b.metadata is not None]
    for name, state in _vre_written(out_dir, stored, identity, options.allow_other_source).items():
        next(b for b in stored if b.name == name).metadata.adopt(state)
    for b in stored:
        b.metadata.peek()
    if options.exists == "raise":
        refuse_existing(stored)
    run_id = new_run_id()
    if out_dir.is_dir():
        sweep_temporaries(out_dir)
        close_abandoned_runs(out_dir, found_by=run_id)
    plan = make_plan(graph, requested, {**dependencies_done, **_done(stored)}, outputs=chosen)
    frame_list = tuple(requested) if options.frame_list is not None else None
    if not plan.frames:
        return _nothing_to_compute(start, stop, out_dir, bindings, frame_list, identity)
    if options.on_error == "stop":
        _refuse_read_only(plan, options.read_only, source)
    require_cuda([b.name for b in bindings if plan.compute[b.name] and b.node.cfg.device != "cpu"])
    sources.record(identity, options.allow_other_source)
    opened: list[RepresentationMetadata] = []
    try:
        for b in stored:
            b.metadata.open(run_id)
            opened.append(b.metadata)
            b.files.make_dirs(b.node.cfg.output_formats)
        # concurrent runs may have finished frames meanwhile
        plan = make_plan(graph, requested, {**dependencies_done, **_done(stored)}, outputs=chosen)
        if not plan.frames:
            return _nothing_to_compute(start, stop, out_dir, bindings, frame_list, identity)
        record = RunRecord(run_id=run_id, argv=list(options.argv), video=str(source.path),
                           config_hash=cfg.config_hash, config=cfg.source, frames_requested=[start, stop],
                           frame_list=None if frame_list is None else list(frame_list), source=asdict(identity))
        with held_while_running(record, out_dir):
            record.save(out_dir)
            stages = _execute(bindings, plan, source, options, record, out_dir, session.residency,
                              {name: plan.compute.get(name, frozenset()) for name in options.read_only})
    finally:
        _close_all(opened)
    return RunResult(run_id=run_id, computed_frames=len(plan.frames), record=record, bindings=bindings,
                     frames=(start, stop), out_dir=out_dir, stages=stages, already_done=plan.already_done,
                     frame_list=frame_list, source=identity)


def bind_nodes(graph: RepresentationGraph, chosen: set[str], out_dir: Path, frame_size: tuple[int, int],
               durability: str = "kill", write_io: str = "direct") -> list[NodeBinding]:
    """The run's nodes bound to their folders; the chosen ones with their metadata (not read yet: `peek`)."""
    def metadata(node: GraphNode) -> RepresentationMetadata | None:
        if node.name not in chosen:
            return None
        return RepresentationMetadata(out_dir / node.name, node.name, node.representation.definition())

    return [NodeBinding(node=node, output_size=node.cfg.output_size or frame_size,
                        files=FrameFiles(out_dir / node.name, durable=durability == "power",
                                         direct=write_io == "direct"),
                        metadata=metadata(node))
            for node in graph.nodes]


def _refuse_read_only(plan: Plan, read_only: tuple[str, ...], source: FramesSource) -> None:
    """`read_only` nodes (another group's outputs) are read from disk, never computed: a frame of theirs that
    is not there (it failed, or the files were removed) stops the run by name (on_error "stop"; with "skip" the
    frame fails for its dependants and is recorded, BatchExecutor's `unavailable`)."""
    for name in read_only:
        missing = sorted(plan.compute.get(name, ()))
        if missing:
            raise StoreError(f"{source.path}: '{name}' (another group's output) is not stored for frame "
                             f"{missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                             + "; it is read from disk, never recomputed here: run its group for these frames")


def chosen_representations(graph: RepresentationGraph, names: tuple[str, ...] | None) -> set[str]:
    """The representations a run stores: `names` (`--representations`), each checked, or every stored one."""
    stored = [n.name for n in graph.nodes if n.stored]
    if names is None:
        return set(stored)
    known = [n.name for n in graph.nodes]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"--representations: no {', '.join(map(repr, unknown))} in the config; it defines "
                          f"{', '.join(known)}")
    unstored = [n for n in names if n not in stored]
    if unstored:
        raise ConfigError(f"--representations: '{unstored[0]}' stores nothing (output_formats: []); list "
                          f"representations that are stored: {', '.join(stored)}")
    return set(names)


def with_dependencies(graph: RepresentationGraph, chosen: set[str]) -> RepresentationGraph:
    """The chosen nodes and everything they depend on, in graph order; the other nodes are not part of the run."""
    keep, todo = set(), list(chosen)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo += graph[name].inputs.values()
    return RepresentationGraph(nodes=tuple(n for n in graph.nodes if n.name in keep))


def _dependencies_done(graph: RepresentationGraph, chosen: set[str], out_dir: Path) -> dict[str, set[int]]:
    """Frames that stored dependencies outside `chosen` already hold: they are read back, not recomputed (and
    their definition is checked as a chosen node's is); this run writes nothing of theirs."""
    done = {}
    for node in graph.nodes:
        if node.stored and node.name not in chosen:
            metadata = RepresentationMetadata(out_dir / node.name, node.name, node.representation.definition())
            metadata.peek()
            done[node.name] = metadata.done(node.cfg.output_formats)
    return done


def requested_frames(source: FramesSource, options: RunOptions) -> list[int]:
    """The frames asked for (`frames` or `frame_list`), ascending, checked against the source's length."""
    n = source.num_frames
    if options.frame_list is not None:
        past = sorted(f for f in options.frame_list if f >= n)
        if past:
            raise VideoError(f"{source.path}: --frames {past[0]} is past the end ("
                              f"{f'topic {source.topic}' if source.topic else 'it'} has {n} frames: 0..{n - 1})")
        return sorted(set(options.frame_list))
    start, stop = options.frames
    start, stop = start or 0, n if stop is None else stop
    if stop > n or start >= stop:
        raise VideoError(f"{source.path}: --frames {start}..{stop} is " +
                         ("empty" if start >= stop else "past the end of the video") +
                         f" ({f'topic {source.topic}' if source.topic else 'the video'} has {n} frames: 0..{n})")
    return list(range(start, stop))


def overwrite_outputs(out_dir: Path, graph: RepresentationGraph, chosen: set[str], check_devices: bool = True) -> None:
    """`--exists overwrite`: the chosen representations' frames are deleted before the run (only theirs), once
    everything that could refuse the run has been checked (the config, the video, the dependencies, the device;
    `check_devices=False`: the workers that will compute them check their own)."""
    if check_devices:
        require_cuda([n.name for n in graph.nodes if n.name in chosen and n.cfg.device != "cpu"])
    for name in sorted(chosen):
        removed = clear_representation(out_dir, name)
        if removed:
            logger.warning("--exists overwrite: deleted %s (%d files)", out_dir / name, removed)


def refuse_existing(stored: list[NodeBinding]) -> None:
    """`--exists raise`: a chosen representation that already holds frames (recorded, failed or files) stops
    the run before anything is written."""
    for b in stored:
        frames = set(b.metadata.frames) | set(b.metadata.failed)
        for fmt in b.node.cfg.output_formats:
            frames |= set(b.files.frames_on_disk(fmt))
        if frames:
            raise StoreError(f"--exists raise: {b.files.directory} already holds {len(frames)} frames; --exists skip "
                             f"(the default) computes only the missing ones, --exists overwrite deletes them first")


def _identify(source: FramesSource) -> SourceIdentity:
    return SourceIdentity(path=str(source.path.resolve()), size_bytes=source.size_bytes,
                          height=source.height, width=source.width, num_frames=source.num_frames,
                          fps=str(source.fps), fingerprint=source.fingerprint(), topic=source.topic)


def _vre_written(out_dir: Path, stored: list[NodeBinding], identity: SourceIdentity,
                 allow_other_source: bool) -> dict[str, dict]:
    """The metadata to start from for folders the original VRE wrote (checked: vre_compat.outputs)."""
    from .vre_compat.outputs import adopt_vre_outputs, is_vre_written

    if not any(is_vre_written(out_dir / b.name) for b in stored):
        return {}
    return adopt_vre_outputs(out_dir, stored, identity, allow_other_source)


def _done(stored: list[NodeBinding]) -> dict[str, set[int]]:
    return {b.name: b.metadata.done(b.node.cfg.output_formats) for b in stored}


def _nothing_to_compute(start: int, stop: int, out_dir: Path, bindings: list[NodeBinding],
                        frame_list: tuple[int, ...] | None, source: SourceIdentity) -> RunResult:
    return RunResult(run_id=None, computed_frames=0, record=None, bindings=bindings, frames=(start, stop),
                     out_dir=out_dir, frame_list=frame_list, source=source)


def _close_all(opened: list[RepresentationMetadata]) -> None:
    """Folds every journal it can: one that fails (a full disk) stays on disk, fsynced, and the next run
    folds it, so its frames are not lost. The first failure is raised after all were tried, unless the
    run is already failing for another reason (that one is the error to report)."""
    failing = sys.exc_info()[1] is not None
    errors = []
    for metadata in opened:
        try:
            metadata.close()
        except OSError as exc:
            logger.error("%s: metadata not folded (%s); its journal is kept and the next run folds it",
                         metadata.directory, exc)
            errors.append(exc)
    if errors and not failing:
        raise errors[0]


def _execute(bindings: list[NodeBinding], plan: Plan, source: FramesSource, options: RunOptions, record: RunRecord,
             out_dir: Path, residency: Residency, unavailable: dict[str, frozenset[int]]) -> StageStats:
    log_handler = logging.FileHandler(out_dir / ".logs" / f"run-{record.run_id}.log")
    log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(message)s"))
    logger.addHandler(log_handler)
    logger.setLevel(logging.INFO)
    logger.info("run %s: %s frames to compute of %s requested; argv=%s", record.run_id, len(plan.frames),
                record.frames_requested, record.argv)
    bar = tqdm(total=len(plan.frames), unit="frame", disable=not options.progress, dynamic_ncols=True)

    def on_chunk(n: int) -> None:
        bar.update(n)
        bar.set_postfix({b.name: f"{b.stats.computed / b.stats.compute_seconds:.0f}/s"
                         for b in bindings if b.stats.compute_seconds > 0}, refresh=False)

    executor = BatchExecutor(bindings, plan, source, on_error=options.on_error,
                             write_workers=options.write_workers, prefetch=options.prefetch_chunks,
                             on_chunk=on_chunk, kernel_threads=options.kernel_threads, residency=residency,
                             unavailable=unavailable)
    try:
        executor.run()
        record.status = "completed"
    except KeyboardInterrupt:
        record.status, record.error = "interrupted", "KeyboardInterrupt"
        raise
    except Exception as exc:
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        logger.error("run %s failed: %s", record.run_id, record.error)
        raise
    finally:
        bar.close()
        record.ended = time.time()
        record.representations = {b.name: {
            "type": b.node.cfg.type, "computed": b.stats.computed, "loaded": b.stats.loaded,
            "failed": len(b.stats.failed_frames), "already_done": plan.already_done.get(b.name, 0),
            "compute_seconds": round(b.stats.compute_seconds, 6),
            "seconds_per_frame": round(b.stats.compute_seconds / b.stats.computed, 6) if b.stats.computed else None,
            "batch_size": b.stats.batch_size, "oom_halvings": b.stats.oom_halvings,
            "setup_seconds": round(b.stats.setup_seconds, 3),
            "copies_to_device": b.stats.copies_to_device, "copies_to_host": b.stats.copies_to_host,
        } for b in bindings}
        record.stages = executor.stages.as_dict()
        record.frames_failed = len(set().union(*(b.stats.failed_frames for b in bindings)))
        record.frames_done = _frames_done(bindings, plan, record.run_id)
        # a ROS bag's frames carry times: [log time, header stamp] in ns of each frame this run computed
        planned = set(plan.frames)
        record.frame_times = {str(f): list(t) for f, t in sorted(source.frame_times().items()) if f in planned}
        try:
            record.save(out_dir)
        except OSError as exc:  # a full disk: the frames are safe in the journals; report the first error
            logger.error("run %s: run record not saved: %s", record.run_id, exc)
            if record.status == "completed":
                raise
        finally:
            logger.info("run %s %s", record.run_id, record.status)
            logger.removeHandler(log_handler)
            log_handler.close()
    return executor.stages


def _stage_line(s: StageStats) -> str:
    """Compute waited on decode / on the disk: which stage bounds the run."""
    return (f"stages: wall {s.wall:.2f} s; busy: decode {s.decode_busy:.2f} s, compute {s.compute_busy:.2f} s "
            f"(waited {s.waited_for_decode:.2f} s for frames, {s.waited_for_writes:.2f} s for the disk), "
            f"write {s.write_busy:.2f} s over the writer threads; most queued: {s.decode_queue_max} decoded chunks, "
            f"{s.write_pending_max} writes")


def _frames_done(bindings: list[NodeBinding], plan: Plan, run_id: str) -> int:
    """Planned frames that every stored node it had to write has recorded in this run."""
    done = set(plan.frames)
    for b in bindings:
        if b.metadata is not None:
            mine = {f for f, entry in b.metadata.frames.items() if entry["run_id"] == run_id}
            done -= plan.write[b.name] - mine
    return len(done)


def summary_rows(bindings: list[NodeBinding], already_done: dict[str, int]) -> dict[str, dict]:
    """The counters `summary_table` shows, per node (the shape of `RunRecord.representations`' rows)."""
    return {b.name: {"type": b.node.cfg.type, "computed": b.stats.computed, "loaded": b.stats.loaded,
                     "already_done": already_done.get(b.name, 0), "failed": len(b.stats.failed_frames),
                     "compute_seconds": b.stats.compute_seconds} for b in bindings}


def summary_table(rows: dict[str, dict]) -> str:
    """The table `vre-fast run` prints: per representation, what was computed, loaded, skipped, failed."""
    header = f"{'representation':<24} {'type':<22} {'computed':>8} {'loaded':>7} {'skipped':>7} {'failed':>6} " \
             f"{'ms/frame':>9} {'frames/s':>9}"
    lines = [header, "-" * len(header)]
    for name, r in rows.items():
        computed, seconds = r["computed"], r["compute_seconds"]
        ms = f"{1000 * seconds / computed:.2f}" if computed else "-"
        fps = f"{computed / seconds:.1f}" if computed and seconds > 0 else "-"
        lines.append(f"{name:<24} {r['type']:<22} {computed:>8} {r['loaded']:>7} {r['already_done']:>7} "
                     f"{r['failed']:>6} {ms:>9} {fps:>9}")
    return "\n".join(lines)
