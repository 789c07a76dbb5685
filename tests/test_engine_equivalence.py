"""The engine against a plain sequential loop: every stored array and picture of a run is bit-identical to
what the representation contract gives frame by frame, one node after another, with no batching, no
threads, no placement and no resuming. Guards every change to the execution layer (issue 17's refactor was
checked with it)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import make_video
from test_run import write_plane_depth

from vre_fast import RunOptions, parse_config, run
from vre_fast._builder import build_graph
from vre_fast.execution.resize import resize_batch
from vre_fast.representation import SAMPLE_FRAMES, ComputeBatch, Representation, sample_batch

FRAMES, HEIGHT, WIDTH = 14, 48, 64


def sequential_reference(cfg, frames: list[np.ndarray]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """name -> per frame (stored array, picture): the contract's steps by hand, one frame at a time."""
    graph = build_graph(cfg)
    video = np.stack(frames)
    for node in graph.nodes:
        node.representation.setup("cpu")
        if type(node.representation).prepare is not Representation.prepare:
            node.representation.prepare(sample_batch(video[:SAMPLE_FRAMES + 1]))
    results: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n.name: [] for n in graph.nodes}
    for f in range(len(frames)):
        decoded: dict[str, np.ndarray] = {}
        for node in graph.nodes:
            rep = node.representation
            batch = ComputeBatch(
                indices=[f], frames=video[f:f + 1],
                next_frames=video[min(f + 1, len(frames) - 1)][None] if rep.needs_next_frame else None,
                inputs={role: decoded[dep] for role, dep in node.inputs.items()})
            raw = np.asarray(rep.compute(batch))
            stored = rep.encode(resize_batch(raw, node.cfg.output_size or video.shape[1:3], rep.interpolation))
            if rep.output_dtype is not None:
                stored = stored.astype(rep.output_dtype)
            decoded[node.name] = rep.decode(stored)
            results[node.name].append((stored[0], rep.make_image(decoded[node.name])[0]))
    for node in graph.nodes:
        node.representation.teardown()
    return results


def assert_run_equals_reference(video: Path, raw_cfg: dict, out: Path) -> None:
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    cfg = parse_config(raw_cfg)
    run(video, cfg, out, RunOptions(progress=False))
    reference = sequential_reference(cfg, frames)
    stored_nodes = [c.name for c in cfg.representations if c.output_formats]
    assert stored_nodes
    for name in stored_nodes:
        for f, (stored, picture) in enumerate(reference[name]):
            with np.load(out / name / "npz" / f"{f}.npz") as data:
                on_disk = data["arr_0"]
            assert on_disk.dtype == stored.dtype and np.array_equal(on_disk, stored, equal_nan=True), (name, f)
            png = cv2.imread(str(out / name / "png" / f"{f}.png"), cv2.IMREAD_COLOR)
            assert np.array_equal(png[..., ::-1], picture), (name, f)


def test_the_example_run_equals_a_sequential_loop(tmp_path: Path):
    """configs/procedural.yaml as examples/run_example.sh runs it (npz + png), with its batch sizes."""
    import yaml

    raw = yaml.safe_load(Path(__file__).parents[1].joinpath("configs/procedural.yaml").read_text())
    raw["output_formats"] = ["npz", "png"]
    video = make_video(tmp_path / "v.mp4", num_frames=FRAMES, height=HEIGHT, width=WIDTH)
    assert_run_equals_reference(video, raw, tmp_path / "out")


@pytest.mark.parametrize("batch_size", [1, 5])
def test_flow_normals_from_external_depth_and_masks_equal_a_sequential_loop(tmp_path: Path, batch_size: int):
    video = make_video(tmp_path / "v.mp4", num_frames=FRAMES, height=HEIGHT, width=WIDTH)
    write_plane_depth(tmp_path / "depth", FRAMES, HEIGHT, WIDTH)
    semantic = tmp_path / "semantic"
    semantic.mkdir()
    rng = np.random.default_rng(0)
    for f in range(FRAMES):
        cv2.imwrite(str(semantic / f"{f}.png"), rng.integers(0, 4, (HEIGHT, WIDTH), np.uint8))
    raw = {
        "batch_size": batch_size, "output_formats": ["npz", "png"],
        "representations": {
            "flow": {"type": "optical_flow_classical", "batch_size": 3},
            "depth": {"type": "external", "parameters": {"path": str(tmp_path / "depth")}, "output_formats": []},
            "semantic": {"type": "external", "parameters": {"path": str(semantic),
                                                            "classes": ["ground", "tree", "water", "sky"]}},
            "normals": {"type": "normals_svd", "dependencies": ["depth"],
                        "parameters": {"sensor_fov": 75, "sensor_size": [3840, 2160], "window_size": 5}},
            "safe_landing": {"type": "safe_landing", "dependencies": {"normals": "normals", "semantic": "semantic"},
                             "parameters": {"max_angle_deg": 30, "safe_classes": ["ground"]}},
            "water": {"type": "binary_mask", "dependencies": ["semantic"], "parameters": {"classes": ["water"]}},
            "near": {"type": "threshold", "dependencies": ["depth"], "parameters": {"value": 14.0},
                     "output_size": [24, 32]},
        },
    }
    assert_run_equals_reference(video, raw, tmp_path / "out")
