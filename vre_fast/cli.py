"""vre-fast: video -> a graph of per-frame representations, stored resumably (run) or streamed (stream)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .frame_range import parse_frame_list, parse_frames

if TYPE_CHECKING:
    from ._cfg import RunCfg
    from .runner import RunOptions

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vre-fast", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vre-fast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    plugins = argparse.ArgumentParser(add_help=False)
    plugins.add_argument("--plugin", action="append", type=_path, default=[], metavar="FILE.py",
                         help="a Python file whose @register_representation types join the built-in ones "
                              "(repeatable; VRE's -I / -J)")

    p = sub.add_parser("run", parents=[plugins],
                       help="compute a representation graph over a video into an output directory")
    p.add_argument("video", type=_path, nargs="*",
                   help="a video file, a folder of png/jpg pictures or npy/npz arrays, or a ROS bag (.bag, .mcap, "
                        ".db3, a rosbag2 directory); several: each into OUT/<its name>, by one pool of workers")
    p.add_argument("--config", "-c", type=_path, required=True, help="YAML graph config")
    _config_format_arg(p)
    p.add_argument("--output", "-o", type=_path,
                   help="output directory (created, resumable); with several videos, the folder of their directories")
    p.add_argument("--manifest", type=_path, metavar="FILE",
                   help="the videos to run, a list of `video, output, frames` rows: text (one `video [output "
                        "[frames]]` a line), .csv (header video,output,frames) or .json (a list of objects)")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="N worker processes (per group, with `groups:`), each with its own decoder and its experts "
                        "loaded once, taking small frame chunks from one queue (default: one process, no workers; "
                        "1 with several videos or groups)")
    p.add_argument("--devices", type=_device_list, metavar="LIST",
                   help="the workers' devices, round robin: cuda:0,cuda:1 or cpu; every representation of a worker "
                        "runs there (a group's own device wins)")
    p.add_argument("--chunk-size", type=_positive_int, metavar="FRAMES",
                   help="frames per unit of work, taken by the workers from one queue (default: about 6 units per "
                        "worker, 4..64 frames, a multiple of the batch size)")
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run the workers as Ray actors: auto, a private Ray cluster of this machine (127.0.0.1 "
                        "only, torn down at the end); ADDRESS, an existing cluster's head (HOST:PORT), whose "
                        "nodes all see the output directory (the `ray` extra)")
    p.add_argument("--unit-timeout", type=_seconds, metavar="SECONDS",
                   help="a unit running longer is taken for hung: its worker is killed and replaced, the unit "
                        "retried (3 tries); 0: no limit (default: max(60 s, 20 x the slowest time per frame of the "
                        "units done so far x the unit's frames; 30 s a frame until one is done); given alone, it runs "
                        "even one video in a worker process, which can be killed")
    p.add_argument("--setup-timeout", type=_seconds, metavar="SECONDS", default=600.0,
                   help="more seconds for a worker's first unit, which loads its experts (default: 600)")
    p.add_argument("--threads", type=_positive_int, metavar="N",
                   help="kernel threads per worker, or of the one process without workers (default: the worker's "
                        "share of the cores less one, at least 1)")
    p.add_argument("--frames", nargs="+", action=_FramesAction, default=(None, None), metavar="FRAMES",
                   help="A..B (B excluded), A.., ..B or N; or a list: 5 8 22 (items N or A..B)")
    p.set_defaults(frame_list=None)
    p.add_argument("--representations", nargs="+", metavar="NAME",
                   help="store only these (comma or space separated); their dependencies are computed as needed "
                        "(or read back where stored) but not stored")
    p.add_argument("--exists", choices=["skip", "overwrite", "raise"], default="skip",
                   help="frames the output already holds: skip (default: compute only the missing ones), overwrite "
                        "(delete the representations' frames first), raise (refuse if any is there)")
    p.add_argument("--collage", action="store_true",
                   help="at the end, draw every representation side by side into OUT/collage.mp4")
    p.add_argument("--fps", type=_positive_float, help="frame rate of a folder of frames (default 1, as VRE's)")
    p.add_argument("--topic", help="ROS bag input: the image topic (default: the bag's only one)")
    p.add_argument("--decoder", choices=["pyav", "torchcodec"], default="pyav",
                   help="a video's decoder: pyav (default) or torchcodec (NVDEC on the graph's first CUDA device, "
                        "else FFmpeg on the CPU; needs the [torchcodec] extra and FFmpeg's shared libraries)")
    p.add_argument("--batch-size", type=int, help="default batch size (a representation's own wins)")
    p.add_argument("--output-formats", help="default formats, comma separated: npz,png,jpg")
    p.add_argument("--compress", nargs="?", type=int, const=True, default=None, choices=range(1, 10),
                   metavar="LEVEL", help="compressed npz by default; LEVEL 1 (fastest: ISA-L) .. 9 (smallest), "
                                         "without one 6, np.savez_compressed's")
    p.add_argument("--device", help="default device, e.g. cpu or cuda:0")
    p.add_argument("--on-error", choices=["stop", "skip"], default="stop",
                   help="stop at the first failing frame (default) or record it and go on")
    p.add_argument("--write-workers", type=_positive_int, default=4,
                   help="threads encoding and writing files (default 4: direct writes wait on the disk, not the CPU)")
    p.add_argument("--durability", choices=["kill", "power"], default="kill",
                   help="kill (default): every file is renamed into place whole, safe if the process is killed; "
                        "power: also fsync each file before it counts as done, safe against power loss (slower)")
    p.add_argument("--write-io", choices=["direct", "buffered"], default="direct",
                   help="direct (default): files of 1 MiB and more bypass the page cache (O_DIRECT, where the file "
                        "system takes it; far less kernel time per byte); buffered: every file through the page cache")
    p.add_argument("--allow-other-source", action="store_true",
                   help="add frames to an output directory made from a different video (refused by default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("metadata", help="metadata tools")
    msub = p.add_subparsers(dest="metadata_command", required=True)
    r = msub.add_parser("rebuild", parents=[plugins],
                        help="regenerate every representation's metadata from the files on disk")
    r.add_argument("output", type=_path)
    r.add_argument("--config", "-c", type=_path, help="config, for representations whose metadata is gone")
    r.add_argument("--relabel", action="store_true",
                   help="record the config's definition even where the metadata names another one (only if the "
                        "files really were computed with the config's)")

    p = sub.add_parser("stream", parents=[plugins],
                       help="run the graph live: frames in from a source, results out to a sink")
    p.add_argument("--config", "-c", type=_path, required=True, help="YAML graph config")
    _config_format_arg(p)
    p.add_argument("--source", required=True,
                   help="stdin | vre-tcp://HOST:PORT[?format=raw] (server; raw: RGB24 frames of --size) | "
                        "zenoh://KEY[?listen=..&connect=..] | an FFmpeg URL | v4l2:/dev/videoN | a video file | "
                        "a folder of frames (paced at --fps with --pace) | a ROS bag (.bag, .mcap, .db3, a rosbag2 "
                        "directory; with --topic)")
    p.add_argument("--topic", help="ROS bag source: the image topic (default: the bag's only one)")
    p.add_argument("--sink", default="stdout",
                   help="stdout | stdout:vre | vre-tcp://HOST:PORT[?format=raw] | reply[?format=raw] (back on the "
                        "vre-tcp connection each frame came from) | zenoh://PREFIX | an FFmpeg URL | a video file | "
                        "out.rrd | rerun://HOST:PORT (Rerun) | window | null")
    p.add_argument("--representations", help="comma separated names to output (default: all in the config)")
    p.add_argument("--size", type=_parse_size,
                   help="WxH: the frame size (needed for stdin and raw vre-tcp, enforced on vre-tcp and zenoh)")
    p.add_argument("--policy", choices=["latest", "all"], default="latest",
                   help="latest: drop frames that arrive while busy (default; with several vre-tcp clients the "
                        "newest frame from any client wins); all: make the source wait (back-pressure reaches "
                        "each vre-tcp client through TCP)")
    p.add_argument("--pace", action="store_true",
                   help="read a video file at its native frame rate, a folder at --fps, a ROS bag at its messages' "
                        "log times")
    p.add_argument("--fps", type=_positive_float, default=30.0,
                   help="frame rate written into encoded sinks (and of a folder of frames as the source)")
    p.add_argument("--output-size", type=_picture_size("a picture"), metavar="WxH",
                   help="picture sinks (stdout, ?format=raw, encoded, window): resize the picture to WxH (default: the "
                        "representations side by side at the frame's height)")
    p.add_argument("--hud", action="store_true",
                   help="picture sinks: draw the frame rate, the frame's latency and its id at the top-left corner")
    p.add_argument("--max-clients", type=int, default=8, metavar="N",
                   help="vre-tcp source: clients served at once; one more is refused with a message (default 8)")
    p.add_argument("--sessions", type=int, metavar="N",
                   help="vre-tcp source: serve N client sessions in total, then end the stream (default: until "
                        "SIGINT)")
    p.add_argument("--read-timeout", type=float, default=10.0, metavar="S",
                   help="vre-tcp source: a frame, once begun, must arrive whole within S seconds or its client is "
                        "dropped (default 10)")
    p.add_argument("--idle-timeout", type=float, default=60.0, metavar="S",
                   help="vre-tcp source: drop a client that starts no frame for S seconds (default 60)")
    p.add_argument("--max-frame-size", type=_parse_size, default=(4320, 7680),
                   help="vre-tcp and zenoh sources: largest WxH accepted (default 7680x4320)")
    p.add_argument("--stats-json", type=Path, help="write the latency summary here on exit")
    p.add_argument("--quiet", action="store_true", help="no log lines on stderr")

    p = sub.add_parser("export-engines", parents=[plugins],
                       help="export every learned representation to ONNX (and TensorRT)")
    p.add_argument("--config", "-c", type=_path, required=True, help="YAML graph config")
    _config_format_arg(p)
    p.add_argument("--size", type=_parse_size, default=(540, 960),
                   help="WxH of the frames the engines will see (default 960x540)")

    p = sub.add_parser("collage", parents=[plugins],
                       help="every representation of an output directory side by side")
    p.add_argument("output", type=_path, help="a `vre-fast run` output directory")
    p.add_argument("-o", "--target", type=_path, required=True, help="a video (.mp4, .mkv) or a folder for png")
    p.add_argument("--fps", type=_positive_float, default=10.0)
    p.add_argument("--tile", type=_picture_size("a tile"), default=(270, 480),
                   help="WxH of each tile (default 480x270)")
    p.add_argument("--on-error", choices=["stop", "skip"], default="stop",
                   help="stop at the first unreadable stored file (default) or leave that frame out")

    p = sub.add_parser("view", parents=[plugins],
                       help="every representation of an output directory as a Rerun recording (.rrd), or sent to a "
                            "running Rerun viewer")
    p.add_argument("output", type=_path, help="a `vre-fast run` output directory")
    p.add_argument("-o", "--target", required=True,
                   help="out.rrd (open it with `rerun out.rrd`), or rerun://HOST:PORT: a running viewer (`rerun`)")
    p.add_argument("--frames", nargs="+", action=_FramesAction, default=(None, None), metavar="FRAMES",
                   help="A..B (B excluded), A.., ..B or N; or a list: 5 8 22 (items N or A..B)")
    p.set_defaults(frame_list=None)
    p.add_argument("--on-error", choices=["stop", "skip"], default="stop",
                   help="stop at the first unreadable stored file (default) or leave it out")

    p = sub.add_parser("info", parents=[plugins],
                       help="what an output directory holds: frames, formats, sizes, runs, per representation")
    p.add_argument("output", type=_path, help="a `vre-fast run` output directory (or one made by VRE 1.18.6)")
    p.add_argument("--json", action="store_true", help="print it as JSON, for scripts")

    p = sub.add_parser("export-shards", parents=[plugins],
                       help="write an output directory as WebDataset tar shards (resumable)")
    p.add_argument("output", type=_path, help="a `vre-fast run` output directory (or one made by VRE 1.18.6)")
    p.add_argument("-o", "--target", type=_path, required=True, help="the folder of shards (created)")
    p.add_argument("--maxcount", type=_positive_int, default=1000, help="samples (frames) per shard at most")
    p.add_argument("--maxsize", type=_positive_int, default=1 << 30, help="bytes per shard at most (a shard holds "
                                                                           "at least one sample)")
    p.add_argument("--representations", help="comma separated names to export (default: all)")

    p = sub.add_parser("convert-config", help="write a VRE 1.18.6 config as the equivalent vre-fast config")
    p.add_argument("config", type=_path, help="a VRE config (YAML)")
    p.add_argument("-o", "--target", type=_path, help="the vre-fast config to write (default: print it)")

    sub.add_parser("list", parents=[plugins], help="list the representation types (with those of --plugin files)")
    return parser


def _config_format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-format", choices=["auto", "vre-fast", "vre"], default="auto",
                   help="auto (default): a VRE 1.18.6 config is recognised by its keys and mapped; vre: always "
                        "read it as VRE's; vre-fast: never")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    # stream shows its own log lines (or none with --quiet)
    with contextlib.nullcontext() if args.command == "stream" else _warnings_on_stderr():
        return _dispatch(args, argv)


def _dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    """The command's work; the runtime is imported here, not at start-up, so `--help` answers at once."""
    from .errors import VreError, describe_os_error

    try:
        if getattr(args, "plugin", None):
            from .plugins import load_plugins

            load_plugins(args.plugin)
        if args.command == "run":
            return _run(args, argv)
        if args.command == "metadata":
            return _rebuild(args)
        if args.command == "stream":
            return _stream(args)
        if args.command == "export-engines":
            return _export_engines(args)
        if args.command == "collage":
            from .collage import make_collage

            count = make_collage(args.output, args.target, args.fps, args.tile, on_error=args.on_error)
            print(f"{count} frames written to {args.target}")
            return 0
        if args.command == "view":
            from .rerun_view import write_recording

            count = write_recording(args.output, args.target, args.frames, args.frame_list, on_error=args.on_error)
            print(f"{count} frames written to {args.target}")
            return 0
        if args.command == "info":
            return _info(args)
        if args.command == "export-shards":
            return _export_shards(args)
        if args.command == "convert-config":
            return _convert_config(args)
        from ._registry import list_representations

        print("\n".join(list_representations()))
        return 0
    except VreError as exc:
        print(f"vre-fast: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the environment, not the code: a full disk, a read-only output, a missing folder
        print(f"vre-fast: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vre-fast: interrupted; finished frames are kept, run again to resume", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """Warnings of the run (a frame that failed and was skipped, a frame left out of a collage) reach the
    terminal as `vre-fast: ...` lines; the run's full log goes to its file in OUT/.logs."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vre-fast: %(message)s"))
    handler.setLevel(logging.WARNING)
    log = logging.getLogger("vre_fast")
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from ._config_loader import load_config, parse_output_formats
    from .errors import ConfigError
    from .runner import RunOptions, run

    overrides = {"batch_size": args.batch_size, "compress": args.compress, "device": args.device}
    if args.output_formats is not None:
        overrides["output_formats"] = list(parse_output_formats(args.output_formats, "--output-formats"))
    cfg = load_config(args.config, overrides=overrides, config_format=args.config_format)
    chosen = tuple(n.strip() for item in args.representations for n in item.split(",") if n.strip()) \
        if args.representations else None  # "a, b" too: a name has no spaces
    options = RunOptions(frames=args.frames, frame_list=args.frame_list, representations=chosen,
                         exists=args.exists, fps=args.fps, on_error=args.on_error, write_workers=args.write_workers,
                         progress=not args.no_progress, allow_other_source=args.allow_other_source,
                         durability=args.durability, write_io=args.write_io, topic=args.topic,
                         kernel_threads=args.threads, decoder=args.decoder, argv=("vre-fast", *argv))
    if args.workers is None and args.devices is None and args.manifest is None and args.chunk_size is None \
            and args.ray is None and args.unit_timeout is None and len(args.video) == 1 and not cfg.groups:
        if args.output is None:
            raise ConfigError("-o/--output: required (the output directory)")
        result = run(args.video[0], cfg, args.output, options)
        print(result.report(), file=sys.stderr)
        if args.collage:
            _collage_after_run(args.output, result.source.fps)
        return 0
    return _run_workers(args, cfg, options)


def _run_workers(args: argparse.Namespace, cfg: RunCfg, options: RunOptions) -> int:
    """Several videos, a manifest, groups, --workers or --ray: a pool of workers (vre_fast.scale), local
    processes or Ray actors."""
    from dataclasses import replace

    from .errors import ConfigError
    from .scale import ScaleOptions, jobs_for_videos, read_manifest, run_many

    if args.manifest is not None:
        if args.video:
            raise ConfigError(f"--manifest {args.manifest}: give the videos in the manifest or on the command line, "
                              f"not both")
        jobs = [j if j.frames != (None, None) or j.frame_list is not None
                else replace(j, frames=args.frames, frame_list=args.frame_list)
                for j in read_manifest(args.manifest, args.output)]
    elif not args.video:
        raise ConfigError("no video: give one or more, or --manifest FILE")
    elif args.output is None:
        raise ConfigError("-o/--output: required (the output directory; with several videos, their parent)")
    else:
        jobs = jobs_for_videos(args.video, args.output, args.frames, args.frame_list)
    scale = ScaleOptions(workers=args.workers or 1, devices=args.devices, chunk_size=args.chunk_size,
                         threads=args.threads, plugins=tuple(str(p) for p in args.plugin), ray=args.ray,
                         unit_timeout=args.unit_timeout, setup_timeout=args.setup_timeout)
    result = run_many(jobs, cfg, replace(options, frames=(None, None), frame_list=None), scale)
    print(result.report(), file=sys.stderr)
    if result.failed_units:  # recorded and reported; the other units are done, a rerun retries these
        print(f"vre-fast: error: {len(result.failed_units)} unit(s) failed after their retries; the first: "
              f"{result.failed_units[0]}", file=sys.stderr)
        return 1
    if args.collage:
        from .sources import open_input

        for job in jobs:
            with open_input(job.video, args.topic, args.fps) as source:
                fps = str(source.fps)
            _collage_after_run(job.out_dir, fps)
    return 0


def _collage_after_run(out_dir: Path, fps: str) -> None:
    """`run --collage` (VRE's habit): every representation of OUT side by side, at the source's frame rate."""
    from fractions import Fraction

    from .collage import make_collage

    target = out_dir / "collage.mp4"
    count = make_collage(out_dir, target, float(Fraction(fps)))
    print(f"collage: {count} frames written to {target}", file=sys.stderr)


class _FramesAction(argparse.Action):
    """`--frames A..B` (one range) sets `frames`; `--frames 5 8 22` (VRE's list form) sets `frame_list`; given
    twice, the last one wins."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        assert isinstance(values, list)
        try:
            if len(values) == 1:
                namespace.frames, namespace.frame_list = parse_frames(values[0]), None
            else:
                namespace.frames, namespace.frame_list = (None, None), parse_frame_list(values)
        except ValueError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None


def _path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset variable?)")
    return Path(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _picture_size(what: str) -> Callable[[str], tuple[int, int]]:
    """The parser of the WxH of a picture drawn here (`what`: a tile, a picture), at most 7680x4320."""
    def parse(text: str) -> tuple[int, int]:
        height, width = _parse_size(text)
        if height > 4320 or width > 7680:
            raise argparse.ArgumentTypeError(f"{what} is at most 7680x4320, got {text!r}")
        return height, width

    return parse


def _device_list(text: str) -> tuple[str, ...]:
    """`cuda:0,cuda:1` or `cpu`: the workers' devices."""
    devices = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in devices if d != "cpu" and not (d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit()))]
    if not devices or bad:
        raise argparse.ArgumentTypeError(f"expected devices such as cuda:0,cuda:1 or cpu, got {text!r}")
    return devices


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds (a number >= 0), got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 960x540, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive WxH, got {text!r}")
    return h, w


def _stream(args: argparse.Namespace) -> int:
    import json
    import signal

    from ._config_loader import load_config
    from .streaming import Limits, StreamGraph, StreamRuntime, open_sink, open_source

    log = logging.getLogger("vre_fast")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vre-fast: %(message)s"))
    if not args.quiet:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    previous_handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        chosen = [r for r in args.representations.split(",") if r] if args.representations else None
        limits = Limits(max_height=args.max_frame_size[0], max_width=args.max_frame_size[1])
        if args.size is not None:
            limits.check_size(args.size)
        graph = StreamGraph(load_config(args.config, config_format=args.config_format), chosen, args.size)
        try:  # from here on the graph holds what its nodes set up: every way out tears it down
            graph.warm_up()
            source = open_source(args.source, args.size, pace=args.pace, limits=limits, max_clients=args.max_clients,
                                 sessions=args.sessions, read_timeout=args.read_timeout,
                                 idle_timeout=args.idle_timeout, fps=args.fps, topic=args.topic)
            try:
                sink = open_sink(args.sink, graph, args.fps, source=source, output_size=args.output_size,
                                 hud=args.hud)
            except BaseException:
                source.close()
                raise
            runtime = StreamRuntime(graph, source, sink, policy=args.policy)
            for sig in previous_handlers:
                signal.signal(sig, lambda *_: runtime.stop())
            try:
                runtime.run()  # a failing sink raises VreError (exit 1) after the stats below are printed
            finally:
                print(runtime.stats.format(), file=sys.stderr)
                if args.stats_json is not None:
                    args.stats_json.write_text(json.dumps(runtime.stats.summary(), indent=1))
        finally:
            graph.close()
    finally:  # leave the process as it was: main() may be called from a program or a test
        for sig, previous in previous_handlers.items():
            signal.signal(sig, previous)
        log.removeHandler(handler)
    return 0


def _export_engines(args: argparse.Namespace) -> int:
    from ._builder import build_graph
    from ._config_loader import load_config
    from .representations._learned import LearnedRepresentation

    graph = build_graph(load_config(args.config, config_format=args.config_format))
    learned = [(n.representation, n.cfg.device) for n in graph.nodes
               if isinstance(n.representation, LearnedRepresentation)]
    if not learned:
        print("no learned representations in this config: nothing to export")
        return 0
    for rep, device in learned:
        row = rep.export_ahead(args.size, device)
        print(f"{row['name']} ({row['variant']}) at {row['input_hw'][1]}x{row['input_hw'][0]}:\n"
              f"  onnx: {row['onnx']} (max |ORT - torch| {row['max_abs_diff_vs_torch']:.2g}, output scale "
              f"{row['output_scale']:.3g}; tolerance {row['tolerance']:g} of that)\n"
              f"  tensorrt fp16: {row['tensorrt_fp16']}")
        if "int8" in row:
            print(f"  int8 (onnxruntime): {row['int8']}")
    return 0


def _info(args: argparse.Namespace) -> int:
    import json

    from .reader.info import dataset_info, format_info

    info = dataset_info(args.output)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


def _export_shards(args: argparse.Namespace) -> int:
    from .reader.shards import export_shards

    chosen = [r for r in args.representations.split(",") if r] if args.representations else None
    report = export_shards(args.output, args.target, maxcount=args.maxcount, maxsize=args.maxsize,
                           representations=chosen)
    resumed = f" (resumed at shard {report.resumed_at})" if report.resumed_at is not None else ""
    print(f"{report.samples} frames in {report.shards} shards in {args.target}; {report.written} written now{resumed}")
    return 0


def _convert_config(args: argparse.Namespace) -> int:
    import yaml

    from ._builder import build_graph
    from ._config_loader import parse_config, read_config_file

    mapped = read_config_file(args.config, config_format="vre")
    build_graph(parse_config(mapped, source=str(args.config)))  # what is written loads and builds
    text = (f"# vre-fast config converted from the VRE 1.18.6 config {args.config} by `vre-fast convert-config`\n"
            f"# (${{...}} interpolations resolved with the environment of the conversion)\n"
            + yaml.safe_dump(mapped, sort_keys=False, default_flow_style=None, width=120))
    if args.target is None:
        print(text, end="")
        return 0
    from .errors import ConfigError
    from .store import atomic_write_bytes

    target = Path(args.target)
    if target.is_dir() or not target.parent.is_dir():
        raise ConfigError(f"convert-config -o {target}: " + ("a directory; give the YAML file to write" if
                                                            target.is_dir() else f"no folder {target.parent}"))
    if target.exists() and target.resolve() == Path(args.config).resolve():
        raise ConfigError(f"convert-config -o {target}: that is the VRE config itself; write the vre-fast config "
                          f"to another file")
    atomic_write_bytes(target, text.encode())
    print(f"{args.config} -> {args.target}: {len(mapped['representations'])} representations")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from ._builder import build_graph
    from ._config_loader import load_config
    from .errors import VreError
    from .store import rebuild_metadata, representation_dirs

    definitions = {}
    if args.config is not None:
        definitions = {n.name: n.representation.definition() for n in build_graph(load_config(args.config)).nodes}
    dirs = representation_dirs(args.output, with_files_only=True)
    if not dirs:
        raise VreError(f"{args.output}: no representation directories to rebuild")
    failed = 0
    for d in dirs:  # each on its own: one that cannot be rebuilt does not stop the others
        try:
            report = rebuild_metadata(d, definitions.get(d.name), relabel=args.relabel)
        except VreError as exc:
            print(f"vre-fast: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{d.name}: {report['frames']} frames"
              + (f"; unreadable, left out: {', '.join(report['unreadable'])}" if report["unreadable"] else "")
              + f" (definition: {report['definition']})")
    return 1 if failed else 0
