"""Scaling out on one machine (vre_fast.scale): worker processes pulling frame chunks from one queue into one
output directory, equal bit for bit to one process; a SIGKILLed worker's chunk redone; groups reading each
other's outputs from disk; a manifest of videos; Ctrl-C stopping every worker; workers' errors as one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import make_video

from vre_fast import parse_config
from vre_fast._config_loader import load_config
from vre_fast.errors import ConfigError, VreError
from vre_fast.runner import RunOptions, run
from vre_fast.scale import Job, ScaleOptions, UnitQueue, read_manifest, run_many
from vre_fast.scale.groups import Group

CONFIG = {"batch_size": 2, "representations": {
    "rgb": {"type": "rgb"},
    "hsv": {"type": "hsv"},
    "edges": {"type": "edges_canny"},
    "flow": {"type": "optical_flow_classical"},  # reads frame t+1: chunk borders must not change it
}}
GROUPS = {"first": {"device": "cpu", "representations": ["rgb", "hsv", "edges", "flow"]},
          "second": {"representations": ["near_edges"]}}
NEAR_EDGES = {"type": "threshold", "dependencies": {"map": "edges"}, "parameters": {"value": 0.5, "keep": "above"}}

# a user's plugin: a copy of the frame that takes `seconds` a frame (so a worker can be caught mid-chunk) and
# fails on `fail_on`
PLUGIN = '''
import time
from dataclasses import dataclass

import numpy as np

from vre_fast import ComputeBatch, Representation, register_representation


@dataclass(frozen=True)
class Params:
    seconds: float = 0.0
    fail_on: int = -1
    die_on: int = -1  # the process is SIGKILLed (as the kernel's out-of-memory killer does)
    hang_on: int = -1  # the process hangs there for ever (a stuck decoder, CUDA call or lock)


@register_representation("slow_copy")
class SlowCopy(Representation):
    Params = Params
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        if self.params.fail_on in batch.indices:
            raise ValueError("this frame is bad")
        if self.params.die_on in batch.indices:
            import os
            import signal
            os.kill(os.getpid(), signal.SIGKILL)
        while self.params.hang_on in batch.indices:
            time.sleep(3600)
        time.sleep(self.params.seconds * len(batch.indices))
        return batch.frames.copy()

    def make_image(self, decoded):
        return decoded
'''
NUM_FRAMES = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    """A video and its outputs computed by one process (the reference)."""
    root = tmp_path_factory.mktemp("scale")
    video = make_video(root / "clip.mp4", num_frames=NUM_FRAMES, gop=6)
    cfg = parse_config({**CONFIG, "representations": {**CONFIG["representations"], "near_edges": NEAR_EDGES}})
    run(video, cfg, root / "single")
    return video, root / "single"


def stored(out: Path) -> dict[tuple[str, int], np.ndarray]:
    """Every stored array of an output directory, by (representation, frame)."""
    arrays = {}
    for path in out.glob("*/npz/*.npz"):
        with np.load(path) as z:
            arrays[path.parent.parent.name, int(path.stem)] = z[z.files[0]]
    return arrays


def assert_same(a: Path, b: Path, names: set[str] | None = None) -> None:
    x, y = stored(a), stored(b)
    if names is not None:
        x = {k: v for k, v in x.items() if k[0] in names}
        y = {k: v for k, v in y.items() if k[0] in names}
    assert x.keys() == y.keys() and len(x) > 0
    for key in x:
        assert x[key].dtype == y[key].dtype and np.array_equal(x[key], y[key], equal_nan=True), key


def test_two_workers_equal_one_process_bit_for_bit(clip, tmp_path: Path):
    video, single = clip
    out = tmp_path / "out"
    result = run_many([Job(video, out)], parse_config(CONFIG), RunOptions(), ScaleOptions(workers=2, chunk_size=4))
    assert_same(single, out, set(CONFIG["representations"]))
    assert result.units == NUM_FRAMES // 4 and result.rows["flow"]["computed"] == NUM_FRAMES
    assert len(result.units_by_worker) == 2  # both workers took chunks from the queue
    # a rerun finds everything done: nothing is computed again
    again = run_many([Job(video, out)], parse_config(CONFIG), RunOptions(), ScaleOptions(workers=2, chunk_size=4))
    assert again.rows["rgb"]["computed"] == 0 and again.rows["rgb"]["already_done"] == NUM_FRAMES


def test_groups_read_each_others_outputs_from_disk(clip, tmp_path: Path):
    """'second' waits, chunk by chunk, for the edges 'first' stores, reads them back (never computes them), and
    the whole equals one process."""
    video, single = clip
    raw = {**CONFIG, "representations": {**CONFIG["representations"], "near_edges": NEAR_EDGES}, "groups": GROUPS}
    result = run_many([Job(video, tmp_path / "out")], parse_config(raw), RunOptions(),
                      ScaleOptions(chunk_size=4))
    assert_same(single, tmp_path / "out")
    assert [g.name for g in result.groups] == ["first", "second"] and result.groups[1].after == ("first",)
    assert result.rows["edges"]["computed"] == NUM_FRAMES  # once, by 'first'
    assert result.rows["edges"]["loaded"] == NUM_FRAMES  # read back by 'second'


def test_unit_queue_hands_out_a_dependant_only_after_its_inputs():
    from vre_fast.scale import make_units

    groups = (Group("a", ("x",), None), Group("b", ("y",), None, after=("a",)))
    queue = UnitQueue(make_units(0, "v.mp4", "out", [[0, 1], [2, 3]], groups), groups)
    assert queue.take("b") is None
    first = queue.take("a")
    assert first.frames == (0, 1) and queue.take("b") is None
    queue.done(first)
    assert queue.take("b").frames == (0, 1)  # chunk 0 of 'b' is ready, chunk 1 not yet
    assert queue.take("b") is None
    second = queue.take("a")
    queue.give_back(second)  # its worker died: first in line again
    assert queue.take("a") is second
    assert queue.pending("b") == 2 and queue.pending() == 3


def test_unit_queue_costs_no_walk_over_every_waiting_unit():
    """Many videos, 'b' waiting for 'a': an idle 'b' worker asks at every message of the pool; each ask used to
    walk all 20,000 waiting units (5 ms; 2,000 asks: 10 s). And the order is kept, for any group or one."""
    from vre_fast.scale import make_units

    groups = (Group("a", ("x",), None), Group("b", ("y",), None, after=("a",)))
    units = [u for job in range(100) for u in make_units(job, "v.mp4", "out", [[i] for i in range(100)], groups)]
    queue = UnitQueue(units, groups)
    started = time.perf_counter()
    assert all(queue.take("b") is None for _ in range(2000))
    assert time.perf_counter() - started < 1.0
    first, second = queue.take(), queue.take()
    assert (first.key, second.key) == ((0, 0, "a"), (0, 1, "a"))
    queue.done(first)
    assert queue.take().key == (0, 0, "b")  # before (0, 2, "a"): its place in line
    queue.give_back(second)
    assert queue.take() is second and queue.take("b") is None and queue.take("a").key == (0, 2, "a")


def test_a_cycle_between_groups_is_one_error_naming_them(clip, tmp_path: Path):
    video, _ = clip
    raw = {"representations": {
        "edges": {"type": "edges_canny"},
        "t1": {"type": "threshold", "dependencies": {"map": "edges"}, "parameters": {"value": 0.5}},
        "t2": {"type": "threshold", "dependencies": {"map": "t1"}, "parameters": {"value": 0.5}}},
        "groups": {"a": {"representations": ["edges", "t2"]}, "b": {"representations": ["t1"]}}}
    with pytest.raises(ConfigError, match=r"cycle between groups (a -> b -> a|b -> a -> b).*'b' reads .*of 'a'"):
        run_many([Job(video, tmp_path / "out")], parse_config(raw), RunOptions(), ScaleOptions())
    assert not (tmp_path / "out").exists()


def test_a_manifest_of_two_videos_completes_into_two_directories(clip, tmp_path: Path):
    video, single = clip
    make_video(tmp_path / "other.mp4", num_frames=10, height=32, width=48)
    manifest = tmp_path / "videos.csv"
    manifest.write_text(f"video,output,frames\n{video},{tmp_path / 'a'},\nother.mp4,b,2..8\n")
    jobs = read_manifest(manifest)
    assert [j.out_dir for j in jobs] == [tmp_path / "a", tmp_path / "b"] and jobs[1].frames == (2, 8)
    result = run_many(jobs, parse_config(CONFIG), RunOptions(), ScaleOptions(workers=2))
    assert_same(single, tmp_path / "a", set(CONFIG["representations"]))
    assert {f for name, f in stored(tmp_path / "b") if name == "hsv"} == set(range(2, 8))
    assert result.frames == NUM_FRAMES + 6


def test_manifest_errors_name_the_file_and_line(tmp_path: Path):
    manifest = tmp_path / "videos.txt"
    manifest.write_text("# video output frames\na.mp4 outa\nb.mp4 outa\n")
    with pytest.raises(ConfigError, match="output .*outa is given to several videos"):
        read_manifest(manifest)
    manifest.write_text("a.mp4 outa 5..x\n")
    with pytest.raises(ConfigError, match=r"videos.txt line 1: frames '5..x'"):
        read_manifest(manifest)
    manifest.write_text('a.mp4 outa\n"my video.mp4 outb\n')  # an unclosed quote: one line, not shlex's traceback
    with pytest.raises(ConfigError, match=r"videos.txt line 2: No closing quotation"):
        read_manifest(manifest)
    (tmp_path / "videos.csv").write_text("\ufeffvideo,output\na.mp4,outa\n")  # a spreadsheet's, with a BOM
    assert [j.out_dir.name for j in read_manifest(tmp_path / "videos.csv")] == ["outa"]
    (tmp_path / "videos.json").write_text('[{"video": "a.mp4", "output": "o", "frames": [5, 8]}]')
    assert read_manifest(tmp_path / "videos.json")[0].frame_list == (5, 8)
    (tmp_path / "videos.json").write_text('[{"video": 3}]')
    with pytest.raises(ConfigError, match=r"videos.json line 1: the video 3 is not a path"):
        read_manifest(tmp_path / "videos.json")


# -- real processes through the command line ------------------------------------------------------------------
def cli(video: Path, cfg: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vre_fast", "run", str(video), "-c", str(cfg), "-o", str(out), "--no-progress",
            *extra]


@pytest.fixture(scope="module")
def slow(tmp_path_factory, clip) -> tuple[Path, Path, Path]:
    """A config whose chunks take a while (0.04 s a frame), and its plugin."""
    root = tmp_path_factory.mktemp("slow")
    plugin = root / "slow_copy.py"
    plugin.write_text(PLUGIN)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"plugins": [str(plugin)], "representations": {
        "rgb": {"type": "rgb"}, "copy": {"type": "slow_copy", "parameters": {"seconds": 0.04}}}}))
    return clip[0], cfg, plugin


def children(pid: int) -> set[int]:
    try:
        return {int(c) for t in os.listdir(f"/proc/{pid}/task")
                for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()}
    except (FileNotFoundError, ProcessLookupError):
        return set()


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        new = children(todo.pop())
        found |= new
        todo += new
    return found


def workers_of(pid: int) -> set[int]:
    """The pool's workers: the forkserver's children (grandchildren of the command)."""
    return descendants(pid) - children(pid)


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def frames_in(out: Path, name: str) -> int:
    return len(list((out / name / "npz").glob("*.npz"))) if (out / name / "npz").is_dir() else 0


def test_a_sigkilled_worker_has_its_chunk_redone(slow, registry, tmp_path: Path):
    """The pool runs here (in a thread); one of its worker processes is SIGKILLed mid-chunk."""
    video, cfg, plugin = slow
    out, outcome = tmp_path / "out", {}

    def pool() -> None:
        try:
            outcome["result"] = run_many([Job(video, out)], load_config(cfg), RunOptions(),
                                         ScaleOptions(workers=2, chunk_size=4, plugins=(str(plugin),)))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=pool)
    thread.start()
    try:
        wait_for(lambda: frames_in(out, "copy") >= 2 and len(workers_of(os.getpid())) >= 2)
        os.kill(min(workers_of(os.getpid())), signal.SIGKILL)
    finally:
        thread.join(60)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.pool.workers_lost == 1 and result.pool.units_requeued == 1
    assert "1 worker(s) lost; 1 unit(s) re-queued and redone" in result.report()
    frames = stored(out)
    assert {f for name, f in frames if name == "copy"} == set(range(NUM_FRAMES))
    for f in range(NUM_FRAMES):
        assert np.array_equal(frames["copy", f], frames["rgb", f])


def test_ctrl_c_stops_every_worker_keeps_finished_frames_and_a_rerun_completes(slow, tmp_path: Path):
    video, cfg, _ = slow
    out = tmp_path / "out"
    proc = subprocess.Popen(cli(video, cfg, out, "--workers", "2", "--chunk-size", "4"), stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: frames_in(out, "copy") >= 6 and len(workers_of(proc.pid)) == 2)
        family = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and "zombie" not in _state(p) for p in family), 10)
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*/npz/*.npz")}
    assert 0 < len(kept) < 2 * NUM_FRAMES
    rerun = subprocess.run(cli(video, cfg, out, "--workers", "2", "--chunk-size", "4"), capture_output=True,
                           text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == kept  # not one finished frame redone
    assert {f for name, f in stored(out) if name == "copy"} == set(range(NUM_FRAMES))


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (FileNotFoundError, IndexError):
        return "zombie"


def test_a_workers_bad_frame_is_one_error_naming_the_video_and_frame(slow, registry, tmp_path: Path):
    """What the command prints as `vre-fast: error: <this>` (exit 1), as for one process; no traceback."""
    video, _, plugin = slow
    cfg = parse_config({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"fail_on": 13}}}})
    with pytest.raises(VreError) as error:
        run_many([Job(video, tmp_path / "out")], cfg, RunOptions(), ScaleOptions(workers=2, chunk_size=4))
    assert str(error.value) == f"{video}: representation 'copy' failed on frame 13: ValueError: this frame is bad"
    assert not workers_of(os.getpid())  # every worker stopped


def test_a_bad_group_is_one_error_before_any_worker_starts(clip, tmp_path: Path):
    video, _ = clip
    with pytest.raises(VreError, match="groups.second.representations: no 'nope' in the config"):
        run_many([Job(video, tmp_path / "out")], parse_config({**CONFIG, "groups": {
            "first": GROUPS["first"], "second": {"representations": ["nope"]}}}), RunOptions(), ScaleOptions())


def test_a_full_disk_in_a_worker_is_the_usual_line_naming_the_video():
    import errno

    from vre_fast.scale import WorkUnit
    from vre_fast.scale.worker import describe_failure

    unit = WorkUnit(0, 3, "all", "clip.mp4", "out", (12, 13, 14, 15))
    full = OSError(errno.ENOSPC, "No space left on device", "out/hsv/npz/.13.npz.tmp")
    assert describe_failure(unit, full) == ("clip.mp4: out/hsv/npz/.13.npz.tmp: No space left on device; finished "
                                            "frames are kept: free some space and run again to resume")


def test_chunk_and_thread_policies():
    from vre_fast.scale.policies import chunk_frames, chunk_size, threads_per_worker

    assert chunk_size(1000, 2, 4) == 64 and chunk_size(96, 2, 4) == 8 and chunk_size(5, 2, 1) == 4
    assert chunk_size(96, 2, 3) % 3 == 0  # whole batches
    assert threads_per_worker(2, cores=2) == 1 and threads_per_worker(1, cores=2) == 1
    assert threads_per_worker(2, cores=16) == 7 and threads_per_worker(32, cores=16) == 1
    assert chunk_frames(list(range(10)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_worker_session_sets_its_representations_up_once(clip, tmp_path: Path, monkeypatch):
    from vre_fast.execution import node
    from vre_fast.scale import WorkerSession, WorkerSpec, WorkUnit
    from vre_fast.scale.groups import ALL

    set_up = []
    real = node.setup_node
    monkeypatch.setattr(node, "setup_node", lambda n: set_up.append(n.name) or real(n))
    video, single = clip
    group = Group(ALL, ("hsv", "edges"), None)
    session = WorkerSession(WorkerSpec(cfg=parse_config(CONFIG), options=RunOptions(), groups=(group,)))
    try:
        for i in range(3):
            session.execute(WorkUnit(0, i, ALL, str(video), str(tmp_path / "out"), (2 * i, 2 * i + 1)))
        assert sorted(set_up) == ["edges", "hsv"]  # once each, for three units
    finally:
        session.close()
    assert {f for _, f in stored(tmp_path / "out")} == set(range(6))
    reference = stored(single)
    assert all(np.array_equal(v, reference[k], equal_nan=True) for k, v in stored(tmp_path / "out").items())


def test_residency_prepares_again_only_for_a_representation_that_uses_its_input():
    from vre_fast.execution.residency import Residency
    from vre_fast.representation import Representation

    class Plain(Representation):
        def compute(self, batch):
            return batch.frames

    class UsesInput(Plain):
        def prepare(self, sample):
            pass

    class Execution:  # what Residency calls: the representation, setup and prepare
        def __init__(self, rep):
            self.representation, self.calls = rep, []

        def setup(self) -> float:
            self.calls.append("setup")
            return 1.0

        def prepare(self, sample) -> float:
            self.calls.append("prepare")
            return 0.0

    plain, uses = Execution(object.__new__(Plain)), Execution(object.__new__(UsesInput))
    residency = Residency()
    for video in ("a.mp4", "a.mp4", "b.mp4"):
        residency.ensure(plain, video, lambda: None)
        residency.ensure(uses, video, lambda: None)
    assert plain.calls == ["setup", "prepare"]  # once for every input
    assert uses.calls == ["setup", "prepare", "setup", "prepare"]  # again for b.mp4 (torn down first)
    assert len(residency) == 2


def test_a_group_never_computes_another_groups_output(clip, tmp_path: Path):
    """Only 'second' runs (`--representations near_edges`) on a directory without 'first''s edges: it stops,
    naming them, instead of computing them itself."""
    video, _ = clip
    raw = {**CONFIG, "representations": {**CONFIG["representations"], "near_edges": NEAR_EDGES}, "groups": GROUPS}
    with pytest.raises(VreError, match=r"'edges' \(another group's output\) is not stored for frame 0 and 3 more"):
        run_many([Job(video, tmp_path / "out")], parse_config(raw), RunOptions(representations=("near_edges",)),
                 ScaleOptions(chunk_size=4))
    assert frames_in(tmp_path / "out", "edges") == 0 and frames_in(tmp_path / "out", "near_edges") == 0


def test_several_videos_go_to_one_directory_each(tmp_path: Path):
    from vre_fast.scale import jobs_for_videos

    a, b = tmp_path / "a.mp4", tmp_path / "sub" / "a.mp4"
    jobs = jobs_for_videos([a, tmp_path / "b.mp4"], tmp_path / "out", (None, None), None)
    assert [j.out_dir for j in jobs] == [tmp_path / "out" / "a", tmp_path / "out" / "b"]
    assert jobs_for_videos([a], tmp_path / "out", (2, 9), None)[0].out_dir == tmp_path / "out"  # one: OUT itself
    with pytest.raises(ConfigError, match="several videos of that name would share OUT/a"):
        jobs_for_videos([a, b], tmp_path / "out", (None, None), None)


def test_on_error_skip_with_groups_records_a_failed_frame_for_its_dependants_and_completes(slow, registry,
                                                                                           tmp_path: Path):
    """A frame 'first' skipped (it failed) is missing for 'second', which reads it back: with `--on-error skip`
    the frame fails for the dependant too (recorded, counted once), not the whole run."""
    video, _, plugin = slow
    cfg = parse_config({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"fail_on": 13}},
        "edges": {"type": "generalized_boundaries", "dependencies": {"maps": "copy"}}},
        "groups": {"first": {"representations": ["copy"]}, "second": {"representations": ["edges"]}}})
    result = run_many([Job(video, tmp_path / "out")], cfg, RunOptions(on_error="skip"), ScaleOptions(chunk_size=8))
    assert result.rows["copy"]["failed"] == 1 and result.rows["edges"]["failed"] == 1
    assert {f for name, f in stored(tmp_path / "out") if name == "edges"} == set(range(NUM_FRAMES)) - {13}


def test_sigterm_stops_every_worker_as_ctrl_c_does(slow, tmp_path: Path):
    """`kill`, `timeout` or a batch scheduler's preemption: the workers are interrupted (their runs recorded as
    such), not left running on after the command is gone."""
    video, cfg, _ = slow
    out = tmp_path / "out"
    proc = subprocess.Popen(cli(video, cfg, out, "--workers", "2", "--chunk-size", "12"), stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: frames_in(out, "copy") >= 2 and len(workers_of(proc.pid)) == 2)
        family = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (proc.returncode, err)
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and "zombie" not in _state(p) for p in family), 10)
    records = [yaml.safe_load(p.read_text()) for p in (out / ".logs").glob("run-*.json")]
    statuses = {r["status"] for r in records}
    assert "interrupted" in statuses and statuses <= {"interrupted", "completed"}, statuses


def test_a_unit_that_kills_every_worker_stops_the_run_or_with_skip_is_given_up_alone(slow, registry,
                                                                                     tmp_path: Path):
    video, _, plugin = slow
    cfg = parse_config({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"die_on": 13}}}})
    with pytest.raises(VreError, match=r"frames 12..16 \(all\): 3 workers died on these frames"):
        run_many([Job(video, tmp_path / "stop")], cfg, RunOptions(), ScaleOptions(chunk_size=4))
    result = run_many([Job(video, tmp_path / "skip")], cfg, RunOptions(on_error="skip"), ScaleOptions(chunk_size=4))
    assert len(result.failed_units) == 1 and "frames 12..16 (all): 3 workers died" in result.failed_units[0]
    kept = {f for _, f in stored(tmp_path / "skip")}  # every other unit done; of this one, what was written
    assert 13 not in kept and set(range(NUM_FRAMES)) - set(range(12, 16)) <= kept
    assert not workers_of(os.getpid())


def test_a_killed_worker_leaves_one_error_line_on_the_terminal(slow, tmp_path: Path):
    """No "leaked semaphore objects" warning of multiprocessing's resource tracker after the error line."""
    video, _, plugin = slow
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"die_on": 5}}}}))
    done = subprocess.run(cli(video, cfg, tmp_path / "out", "--workers", "1", "--chunk-size", "4"),
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stderr.splitlines() if not line.startswith(("vre-fast: worker", "run "))]
    assert done.returncode == 1 and lines[-1].startswith("vre-fast: error: ") and len(lines) == 1, done.stderr


def test_info_after_a_pool_run_sums_its_many_runs():
    """A pool makes a run per unit: `vre-fast info` says how many, by status, not a line (and an id) for each."""
    from vre_fast.reader.info import format_info

    runs = [{"run_id": f"r{i}", "status": "completed" if i else "abandoned", "started_iso": f"T{i:02d}",
             "ended_iso": f"E{i:02d}" if i else None, "frames_done": 4 if i else 0, "frames_failed": 0}
            for i in range(40)]
    info = {"path": "out", "kind": "vre-fast", "frames": 156, "sources": [], "runs": runs, "representations": {
        "rgb": {"type": "rgb", "complete": 156, "failed": 0, "missing": 0, "formats": {"npz": 156}, "bytes": 0,
                "dtype": "uint8", "shape": [4, 4], "runs": {f"r{i}": 4 for i in range(1, 40)}}}}
    text = format_info(info)
    assert len(text.splitlines()) == 5 and "39 runs" in text and "r7" not in text, text
    assert "  1 runs abandoned T00 ..  frames done 0" in text
    assert "  39 runs completed T01 .. E39 frames done 156, failed 0" in text


def test_a_sigkilled_command_leaves_no_worker_running_on(slow, tmp_path: Path):
    """`kill -9` (or the OOM killer) of the command: its workers are interrupted at once (their runs folded), not
    left computing their unit, here 12 s long, with no one to report to."""
    video, _, plugin = slow
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"seconds": 0.5}}}}))
    out = tmp_path / "out"
    proc = subprocess.Popen(cli(video, cfg, out, "--workers", "1", "--chunk-size", "24"), stderr=subprocess.PIPE)
    try:
        wait_for(lambda: frames_in(out, "copy") >= 1 and len(workers_of(proc.pid)) == 1)
        family = descendants(proc.pid)
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not any(Path(f"/proc/{p}").exists() and "zombie" not in _state(p) for p in family), 5)
    finally:
        proc.kill()
    records = [yaml.safe_load(p.read_text()) for p in (out / ".logs").glob("run-*.json")]
    assert [r["status"] for r in records] == ["interrupted"]


def test_a_worker_session_keeps_a_few_inputs_open_not_every_video_it_went_through(tmp_path: Path, monkeypatch):
    """A worker of a long manifest goes through thousands of videos: kept open, they ran it out of file
    descriptors. The least recently used input is closed; its identity (a fingerprint that decodes) is kept."""
    import vre_fast.runner as runner
    from vre_fast.runner import RunSession

    videos = [make_video(tmp_path / f"v{i}.mp4", num_frames=4, height=16, width=16) for i in range(7)]
    fingerprints = []
    identify = runner._identify
    monkeypatch.setattr(runner, "_identify", lambda source: fingerprints.append(source) or identify(source))

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    with RunSession() as session:
        before = open_fds()
        session.source(videos[0], None, None)
        one = open_fds() - before
        first = session.source(videos[0], None, None)[1]
        for video in videos[1:]:
            session.source(video, None, None)
        assert one >= 1 and open_fds() - before <= 4 * one  # RunSession.MAX_OPEN_SOURCES of 7
        assert session.source(videos[0], None, None)[1] == first and len(fingerprints) == len(videos)
    assert open_fds() == before


# -- a unit's deadline (policies.UnitDeadline, enforced by the pool) --------------------------------------------
def test_the_unit_deadline_policy_derives_a_generous_limit_and_gives_set_up_its_own():
    from vre_fast.scale.policies import UnitDeadline

    derived = UnitDeadline()
    assert derived.seconds(64, first_on_worker=False) == 64 * 30.0  # nothing measured yet: 30 s a frame
    assert derived.seconds(1, first_on_worker=True) == 60.0 + 600.0  # the minimum, and the set-up's allowance
    derived.observe(seconds=12.0, setup_seconds=10.0, computed_frames=4)  # 0.5 s a frame once set up
    derived.observe(seconds=0.1, setup_seconds=0.0, computed_frames=0)  # all on disk: measures nothing
    derived.observe(seconds=0.4, setup_seconds=0.0, computed_frames=4)  # faster: the slowest stays
    assert derived.seconds(64, first_on_worker=False) == 20 * 0.5 * 64
    assert derived.seconds(4, first_on_worker=False) == 60.0
    assert UnitDeadline(fixed=5, setup=2).seconds(64, first_on_worker=True) == 7
    assert UnitDeadline(fixed=0).seconds(64, first_on_worker=True) is None


def test_a_hung_unit_is_killed_retried_and_given_up_while_the_others_complete(slow, registry, tmp_path: Path):
    """The first unit hangs for ever on frame 1 (before any unit is measured, on a fresh worker): killed at its
    deadline each time, 3 tries, then given up by name (on_error skip); every other unit is done, no worker
    is left."""
    video, _, plugin = slow
    cfg = parse_config({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"hang_on": 1}}}})
    events: list[str] = []
    from vre_fast.scale import coordinator

    outcome = {}

    def pool() -> None:  # in a daemon thread: were the deadline not enforced, the test fails rather than hangs
        outcome["result"] = run_many([Job(video, tmp_path / "out")], cfg, RunOptions(on_error="skip", frames=(0, 16)),
                                     ScaleOptions(workers=2, chunk_size=4, unit_timeout=1.5, setup_timeout=0))

    original = coordinator.logger.warning
    coordinator.logger.warning = events.append
    try:
        thread = threading.Thread(target=pool, daemon=True)
        thread.start()
        thread.join(40)
    finally:
        coordinator.logger.warning = original
    assert "result" in outcome, "the run did not end: the hung unit was not stopped"
    result = outcome["result"]
    assert result.failed_units == [f"{video} frames 0..4 (all): 3 workers lost on these frames (the last timed out "
                                   f"after 1.5 s); see {tmp_path / 'out'}/.logs"]
    assert result.pool.units_timed_out == 3 and result.pool.units_requeued == 2
    assert events[0] == f"worker {events[0].split()[1]} timed out after 1.5 s; {video} frames 0..4 (all) re-queued"
    assert events[-1].endswith(f"timed out after 1.5 s; {video} frames 0..4 (all) given up")
    kept = {f for _, f in stored(tmp_path / "out")}
    assert set(range(4, 16)) <= kept and 1 not in kept
    assert 0 in kept  # the hung unit's finished frame was kept: its run was interrupted and folded its journal
    wait_for(lambda: not workers_of(os.getpid()), 10)


@pytest.mark.slow  # 4.5 s, mostly waiting for three deadlines; the in-process test above covers the mechanism
def test_a_hung_unit_stops_the_command_with_one_line_and_no_worker_left(slow, tmp_path: Path):
    video, _, plugin = slow
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"hang_on": 5}}}}))
    proc = subprocess.Popen(cli(video, cfg, tmp_path / "out", "--chunk-size", "4", "--frames", "4..8",
                                "--unit-timeout", "1", "--setup-timeout", "0"),
                            stderr=subprocess.PIPE, text=True)
    family: set[int] = set()
    give_up = time.monotonic() + 40
    try:
        while proc.poll() is None:
            assert time.monotonic() < give_up, "the command did not end: the hung unit was not stopped"
            family |= descendants(proc.pid)
            time.sleep(0.05)
        stderr = proc.communicate(timeout=30)[1]
    finally:
        proc.kill()
    lines = [line for line in stderr.splitlines() if not line.startswith(("vre-fast: worker", "run "))]
    assert proc.returncode == 1 and len(lines) == 1, stderr
    assert lines[0] == (f"vre-fast: error: {video} frames 4..8 (all): 3 workers lost on these frames (the last "
                        f"timed out after 1 s); see {tmp_path / 'out'}/.logs"), stderr
    assert stderr.count("timed out after 1 s") == 3, stderr  # two re-queued lines, and the error
    assert len(family) >= 4  # the forkserver and the three workers were seen, and none is left
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and "zombie" not in _state(p) for p in family), 10)


def test_a_slow_unit_within_its_deadline_is_not_killed(slow, registry, tmp_path: Path):
    video, _, plugin = slow
    cfg = parse_config({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"seconds": 0.25}}}})  # 1 s a unit of 4 frames
    result = run_many([Job(video, tmp_path / "out")], cfg, RunOptions(frames=(0, 8)),
                      ScaleOptions(workers=1, chunk_size=4, unit_timeout=4, setup_timeout=0))
    assert result.pool.workers_lost == 0 and result.pool.units_timed_out == 0
    assert min(result.unit_seconds) >= 1.0 and {f for _, f in stored(tmp_path / "out")} == set(range(8))
