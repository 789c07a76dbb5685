"""vre-fast: video -> a graph of per-frame representations, stored resumably (run) or streamed (stream)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from ._builder import build_graph
from ._config_loader import load_config, parse_output_formats
from ._registry import list_representations
from .errors import VreError
from .runner import RunOptions, parse_frames, run
from .store import rebuild_metadata

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vre-fast", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vre-fast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="compute a representation graph over a video into an output directory")
    p.add_argument("video", type=Path)
    p.add_argument("--config", "-c", type=Path, required=True, help="YAML graph config")
    p.add_argument("--output", "-o", type=Path, required=True, help="output directory (created, resumable)")
    p.add_argument("--frames", type=parse_frames, default=(None, None), help="A..B (B excluded), A.., ..B or N")
    p.add_argument("--batch-size", type=int, help="default batch size (a representation's own wins)")
    p.add_argument("--output-formats", help="default formats, comma separated: npz,png,jpg")
    p.add_argument("--compress", action="store_true", default=None, help="compressed npz by default")
    p.add_argument("--device", help="default device, e.g. cpu or cuda:0")
    p.add_argument("--on-error", choices=["stop", "skip"], default="stop",
                   help="stop at the first failing frame (default) or record it and go on")
    p.add_argument("--write-workers", type=int, default=2, help="threads encoding and writing files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("metadata", help="metadata tools")
    msub = p.add_subparsers(dest="metadata_command", required=True)
    r = msub.add_parser("rebuild", help="regenerate every representation's metadata from the files on disk")
    r.add_argument("output", type=Path)
    r.add_argument("--config", "-c", type=Path, help="config, for representations whose metadata is gone")

    p = sub.add_parser("stream", help="run the graph live: frames in from a source, results out to a sink")
    p.add_argument("--config", "-c", type=Path, required=True, help="YAML graph config")
    p.add_argument("--source", required=True,
                   help="stdin | vre-tcp://HOST:PORT (server) | an FFmpeg URL | v4l2:/dev/videoN | a video file")
    p.add_argument("--sink", default="stdout",
                   help="stdout | stdout:vre | vre-tcp://HOST:PORT[?format=raw] | an FFmpeg URL | a video file | "
                        "window | null")
    p.add_argument("--representations", help="comma separated names to output (default: all in the config)")
    p.add_argument("--size", type=_parse_size, help="WxH: the frame size (needed for stdin, enforced on TCP)")
    p.add_argument("--policy", choices=["latest", "all"], default="latest",
                   help="latest: drop frames that arrive while busy (default); all: make the source wait")
    p.add_argument("--pace", action="store_true", help="read a video file at its native frame rate")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate written into encoded sinks")
    p.add_argument("--max-clients", type=int, help="vre-tcp source: stop after this many client sessions")
    p.add_argument("--max-frame-size", type=_parse_size, default=(4320, 7680),
                   help="vre-tcp source: largest WxH accepted (default 7680x4320)")
    p.add_argument("--stats-json", type=Path, help="write the latency summary here on exit")
    p.add_argument("--quiet", action="store_true", help="no log lines on stderr")

    p = sub.add_parser("export-engines", help="export every learned representation to ONNX (and TensorRT)")
    p.add_argument("--config", "-c", type=Path, required=True, help="YAML graph config")
    p.add_argument("--size", type=_parse_size, default=(540, 960),
                   help="WxH of the frames the engines will see (default 960x540)")

    p = sub.add_parser("collage", help="every representation of an output directory side by side")
    p.add_argument("output", type=Path, help="a `vre-fast run` output directory")
    p.add_argument("-o", "--target", type=Path, required=True, help="a video (.mp4, .mkv) or a folder for png")
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--tile", type=_parse_size, default=(270, 480), help="WxH of each tile (default 480x270)")

    sub.add_parser("list", help="list the representation types")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    try:
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

            count = make_collage(args.output, args.target, args.fps, args.tile)
            print(f"{count} frames written to {args.target}")
            return 0
        print("\n".join(list_representations()))
        return 0
    except VreError as exc:
        print(f"vre-fast: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vre-fast: interrupted; finished frames are kept, run again to resume", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    overrides = {"batch_size": args.batch_size, "compress": args.compress, "device": args.device}
    if args.output_formats is not None:
        overrides["output_formats"] = list(parse_output_formats(args.output_formats, "--output-formats"))
    cfg = load_config(args.config, overrides=overrides)
    options = RunOptions(frames=args.frames, on_error=args.on_error, write_workers=args.write_workers,
                         progress=not args.no_progress, argv=("vre-fast", *argv))
    run(args.video, cfg, args.output, options)
    return 0


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
    import logging
    import signal

    from .streaming import Limits, StreamGraph, StreamRuntime, open_sink, open_source

    if not args.quiet:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("vre-fast: %(message)s"))
        logging.getLogger("vre_fast").addHandler(handler)
        logging.getLogger("vre_fast").setLevel(logging.INFO)
    chosen = [r for r in args.representations.split(",") if r] if args.representations else None
    graph = StreamGraph(load_config(args.config), chosen, args.size)
    graph.warm_up()
    limits = Limits(max_height=args.max_frame_size[0], max_width=args.max_frame_size[1])
    source = open_source(args.source, args.size, pace=args.pace, limits=limits, max_clients=args.max_clients)
    runtime = StreamRuntime(graph, source, open_sink(args.sink, graph, args.fps), policy=args.policy)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runtime.stop())
    try:
        runtime.run()
    finally:
        graph.close()
        print(runtime.stats.format(), file=sys.stderr)
        if args.stats_json is not None:
            args.stats_json.write_text(json.dumps(runtime.stats.summary(), indent=1))
    return 0


def _export_engines(args: argparse.Namespace) -> int:
    from .export import export_all
    from .representations._learned import LearnedRepresentation

    graph = build_graph(load_config(args.config))
    learned = [(n.representation, n.cfg.device) for n in graph.nodes
               if isinstance(n.representation, LearnedRepresentation)]
    if not learned:
        print("no learned representations in this config: nothing to export")
        return 0
    for row in export_all(learned, args.size):
        print(f"{row['name']} ({row['variant']}) at {row['input_hw'][1]}x{row['input_hw'][0]}:\n"
              f"  onnx: {row['onnx']} (max |ORT - torch| {row['max_abs_diff_vs_torch']:.2g}, output scale "
              f"{row['output_scale']:.3g}; tolerance {row['tolerance']:g} of that)\n"
              f"  tensorrt fp16: {row['tensorrt_fp16']}")
        if "int8" in row:
            print(f"  int8 (onnxruntime): {row['int8']}")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    definitions = {}
    if args.config is not None:
        definitions = {n.name: n.representation.definition() for n in build_graph(load_config(args.config)).nodes}
    dirs = sorted(d for d in args.output.iterdir() if d.is_dir() and not d.name.startswith(".")) \
        if args.output.is_dir() else []
    if not dirs:
        raise VreError(f"{args.output}: no representation directories to rebuild")
    for d in dirs:
        report = rebuild_metadata(d, definitions.get(d.name))
        print(f"{d.name}: {report['frames']} frames"
              + (f"; unreadable, left out: {', '.join(report['unreadable'])}" if report["unreadable"] else ""))
    return 0
