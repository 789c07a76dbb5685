"""Work units on Ray (vre_fast.scale.ray_pool): a local Ray cluster (2 CPUs, loopback only, torn down by the
tests) runs 2 videos x chunks into the same outputs, bit for bit, as one process; a unit that fails is retried a
bounded number of times and recorded (metadata, run records, the summary), not lost; a dead actor's unit is redone;
a rerun completes only what is missing. Skipped, with the reason, when Ray (the `ray` extra) is not installed."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
from conftest import make_video
from test_scale import CONFIG, GROUPS, NEAR_EDGES, assert_same

from vre_fast import parse_config
from vre_fast.runner import RunOptions, run
from vre_fast.scale import Job, ScaleOptions, WorkerSpec, make_pool, run_many
from vre_fast.scale.groups import ALL, Group
from vre_fast.scale.ray_pool import CPU_ACTOR_CPUS, GPU_ACTOR_CPUS, MAX_ATTEMPTS, actor_request

pytest.importorskip("ray", reason="Ray is not installed (pip install 'vre-fast[ray]'): the Ray backend is untested")

# a copy of the frame that raises on `fail_on` while the file `broken` exists, and whose process exits (as if
# killed) on `die_on` once, the first time (it removes `dies` before it goes), on `always_dies_on` every time, and
# that hangs for ever on `hang_on`
PLUGIN = '''
import os
import time
from dataclasses import dataclass

import numpy as np

from vre_fast import ComputeBatch, Representation, register_representation


@dataclass(frozen=True)
class Params:
    fail_on: int = -1
    broken: str = ""
    die_on: int = -1
    dies: str = ""
    always_dies_on: int = -1
    hang_on: int = -1


@register_representation("flaky_copy")
class FlakyCopy(Representation):
    Params = Params
    storage_dtype = np.uint8

    def compute(self, batch: ComputeBatch) -> np.ndarray:
        if self.params.fail_on in batch.indices and os.path.exists(self.params.broken):
            raise ValueError("this frame is bad")
        if self.params.die_on in batch.indices and os.path.exists(self.params.dies):
            os.remove(self.params.dies)
            os._exit(1)
        if self.params.always_dies_on in batch.indices:
            os._exit(1)
        while self.params.hang_on in batch.indices:
            time.sleep(3600)
        return batch.frames.copy()

    def make_image(self, decoded):
        return decoded
'''


@pytest.fixture(scope="module")
def cluster():
    """One Ray cluster of this machine for the module: 2 CPUs, bound to 127.0.0.1, no dashboard."""
    from vre_fast.scale.ray_pool import connect

    leave = connect("auto", num_cpus=2)
    import ray

    nodes = ray.nodes()
    assert len(nodes) == 1 and nodes[0]["NodeManagerAddress"] == "127.0.0.1"
    listening = listening_addresses(os.getpid())
    assert listening and all(a in LOOPBACK for a in listening), listening  # GCS, raylet, agents, workers
    yield
    leave()
    assert not ray.is_initialized()


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}  # /proc/net hex


def listening_addresses(pid: int) -> list[str]:
    """The local addresses (as /proc/net/tcp{,6} writes them) of the listening TCP sockets of `pid`'s
    descendants: what Ray's processes accept connections on."""
    inodes = set()
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        seen.add(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split() if int(c) not in seen]
        if p == pid:
            continue
        for fd in Path(f"/proc/{p}/fd").glob("*"):
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                found.append(fields[1].split(":")[0])
    return found


def test_an_actor_asks_for_a_gpu_and_a_fraction_of_a_cpu():
    """No Ray started: what each actor declares (a cuda device is one GPU, seen as cuda:0 inside the actor)."""
    cfg = parse_config(CONFIG)
    group = Group(ALL, ("rgb",), None)
    pool = make_pool(cfg, RunOptions(), (group,), ScaleOptions(workers=2, devices=("cuda:1", "cpu"), ray="auto"))
    assert type(pool).__name__ == "RayPool" and [s.device for s in pool.specs] == ["cuda:1", "cpu"]
    (gpu_options, gpu_spec), (cpu_options, cpu_spec) = (actor_request(s) for s in pool.specs)
    assert gpu_options["num_gpus"] == 1 and gpu_options["num_cpus"] == GPU_ACTOR_CPUS < 1 and gpu_spec.device == "cuda:0"
    assert cpu_options["num_gpus"] == 0 and cpu_options["num_cpus"] == CPU_ACTOR_CPUS < 1 and cpu_spec.device == "cpu"
    assert isinstance(pool.specs[0], WorkerSpec)


def test_an_address_where_no_head_answers_is_one_line_at_once(tmp_path: Path):
    """Not Ray's minutes of retries: one ConfigError (`vre-fast: error: --ray ...`) before any actor starts."""
    import socket
    import time

    from vre_fast.errors import ConfigError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    video = make_video(tmp_path / "clip.mp4", num_frames=4)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"--ray 127.0.0.1:{port}: no Ray head answers there"):
        run_many([Job(video, tmp_path / "out")], parse_config(CONFIG), RunOptions(),
                 ScaleOptions(ray=f"127.0.0.1:{port}"))
    assert time.monotonic() - started < 5


def test_a_local_ray_cluster_on_loopback_runs_units_into_the_same_outputs(cluster, tmp_path: Path):
    """The default run's one Ray test (Ray's start-up, about 3 s, is paid once for the module): two chunks of a
    short video on one actor, equal to one process; the cluster listens on 127.0.0.1 only (the fixture)."""
    video = make_video(tmp_path / "clip.mp4", num_frames=8, gop=4)
    cfg = parse_config({"representations": {"rgb": {"type": "rgb"}, "flow": CONFIG["representations"]["flow"]}})
    run(video, cfg, tmp_path / "single")
    result = run_many([Job(video, tmp_path / "out")], cfg, RunOptions(), ScaleOptions(chunk_size=4, ray="auto"))
    assert_same(tmp_path / "single", tmp_path / "out")
    assert result.units == 2 and type(result.pool).__name__ == "RayPoolStats" and not result.failed_units


@pytest.mark.slow
def test_two_videos_on_ray_equal_one_process_bit_for_bit(cluster, tmp_path: Path):
    videos = [make_video(tmp_path / f"{name}.mp4", num_frames=16, gop=6) for name in ("a", "b")]
    cfg = parse_config(CONFIG)
    for v in videos:
        run(v, cfg, tmp_path / "single" / v.stem)
    jobs = [Job(v, tmp_path / "out" / v.stem) for v in videos]
    result = run_many(jobs, cfg, RunOptions(), ScaleOptions(workers=2, chunk_size=4, ray="auto"))
    for v in videos:
        assert_same(tmp_path / "single" / v.stem, tmp_path / "out" / v.stem)
    assert result.units == 8 and result.rows["flow"]["computed"] == 32 and not result.failed_units
    assert len(result.units_by_worker) == 2  # both actors took units
    assert len(result.pool.round_trip_seconds) == 8 and result.pool.overhead_seconds < 1.0
    again = run_many(jobs, cfg, RunOptions(), ScaleOptions(workers=2, chunk_size=4, ray="auto"))
    assert again.rows["rgb"]["computed"] == 0 and again.rows["rgb"]["already_done"] == 32


@pytest.mark.slow
def test_groups_on_ray_wait_for_the_chunks_they_read(cluster, tmp_path: Path):
    """One actor per group; 'second' reads the edges 'first' stored, chunk by chunk (the same queue as locally)."""
    video = make_video(tmp_path / "clip.mp4", num_frames=16, gop=6)
    raw = {**CONFIG, "representations": {**CONFIG["representations"], "near_edges": NEAR_EDGES}}
    run(video, parse_config(raw), tmp_path / "single")
    result = run_many([Job(video, tmp_path / "out")], parse_config({**raw, "groups": GROUPS}), RunOptions(),
                      ScaleOptions(chunk_size=4, ray="auto"))
    assert_same(tmp_path / "single", tmp_path / "out")
    assert [g.name for g in result.groups] == ["first", "second"] and result.units_by_worker == {0: 4, 1: 4}


@pytest.mark.slow
def test_a_failing_unit_is_retried_then_recorded_and_a_rerun_completes_it(cluster, registry, tmp_path: Path):
    video = make_video(tmp_path / "clip.mp4", num_frames=16, gop=6)
    plugin, broken, dies = tmp_path / "flaky.py", tmp_path / "broken", tmp_path / "dies"
    plugin.write_text(PLUGIN)
    broken.touch()
    dies.touch()
    cfg = parse_config({"plugins": [str(plugin)], "batch_size": 2, "representations": {
        "rgb": {"type": "rgb"},
        "copy": {"type": "flaky_copy", "parameters": {"fail_on": 13, "broken": str(broken), "die_on": 2,
                                                      "dies": str(dies)}}}})
    out = tmp_path / "out"
    events: list[str] = []
    import logging

    handler = logging.Handler()
    handler.emit = lambda record: events.append(record.getMessage())
    logging.getLogger("vre_fast").addHandler(handler)
    try:
        result = run_many([Job(video, out)], cfg, RunOptions(), ScaleOptions(workers=2, chunk_size=4, ray="auto"))
    finally:
        logging.getLogger("vre_fast").removeHandler(handler)
    # the actor that died on frame 2 was replaced and its unit redone; frame 13's unit failed twice, then its
    # last attempt stored the unit's other frames and recorded 13 as failed
    assert result.pool.workers_lost == 1 and not dies.exists()
    assert result.pool.attempts_failed == 1 + (MAX_ATTEMPTS - 1)
    assert result.rows["copy"]["failed"] == 1  # (rows count the attempts that returned: not frames stored before)
    assert len(list((out / "rgb" / "npz").glob("*.npz"))) == 16
    assert sum("attempt" in e and "frame 13" in e for e in events) == MAX_ATTEMPTS - 1
    # the last attempt stored what it could; the unit is still named (the command exits 1: not asked to skip)
    assert result.failed_units == [f"{video} frames 12..16 (all): copy failed on 1 frame(s) on all {MAX_ATTEMPTS} "
                                   f"attempts, recorded as failed (see {out}/.logs)"]
    metadata = json.loads((out / "copy" / ".metadata.json").read_text())
    assert list(metadata["failed"]) == ["13"] and "this frame is bad" in metadata["failed"]["13"]["error"]
    assert sorted(map(int, metadata["frames"])) == [f for f in range(16) if f != 13]
    records = [json.loads(p.read_text()) for p in (out / ".logs").glob("run-*.json")]
    on_13 = [r for r in records if 13 in range(*r["frames_requested"]) and r["representations"].get("copy")]
    assert sorted(r["status"] for r in on_13) == ["completed"] + ["failed"] * (MAX_ATTEMPTS - 1)
    assert [r["frames_failed"] for r in on_13 if r["status"] == "completed"] == [1]
    # fixed, a rerun computes frame 13 alone
    broken.unlink()
    again = run_many([Job(video, out)], cfg, RunOptions(), ScaleOptions(workers=2, chunk_size=4, ray="auto"))
    assert again.rows["copy"]["computed"] == 1 and again.rows["copy"]["failed"] == 0
    assert again.rows["rgb"]["computed"] == 0
    metadata = json.loads((out / "copy" / ".metadata.json").read_text())
    assert not metadata["failed"] and len(metadata["frames"]) == 16


@pytest.mark.slow
def test_a_unit_that_kills_every_attempt_is_named_and_the_command_exits_1(cluster, registry, tmp_path: Path,
                                                                            capsys):
    """Through the command line (in this process, on the module's cluster): the other units are done, the
    summary names the unit, then one error line and exit code 1; the unit's frames are left for a rerun."""
    from vre_fast.cli import main

    video = make_video(tmp_path / "clip.mp4", num_frames=12, gop=6)
    plugin = tmp_path / "flaky.py"
    plugin.write_text(PLUGIN)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({"plugins": [str(plugin)], "batch_size": 2, "representations": {
        "copy": {"type": "flaky_copy", "parameters": {"always_dies_on": 5}}}}))
    out = tmp_path / "out"
    code = main(["run", str(video), "-c", str(cfg), "-o", str(out), "--ray", "auto", "--workers", "2",
                 "--chunk-size", "4", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    line = f"{video}: the worker on frames 4..8 died (ActorDiedError) (after {MAX_ATTEMPTS} attempts; see {out}/.logs)"
    assert f"failed: {line}" in err  # the summary
    assert err.rstrip().splitlines()[-1] == \
        f"vre-fast: error: 1 unit(s) failed after their retries; the first: {line}"
    assert "Traceback" not in err
    stored = sorted(int(p.stem) for p in (out / "copy" / "npz").glob("*.npz"))
    assert [f for f in stored if not 4 <= f < 8] == [0, 1, 2, 3, 8, 9, 10, 11] and 5 not in stored


@pytest.mark.slow
def test_an_actor_that_cannot_start_is_one_error(cluster, registry, tmp_path: Path):
    """A --plugin that fails to load in the actors: the plugin's one line, as a local worker's, not Ray's
    traceback."""
    from vre_fast.errors import VreError

    video = make_video(tmp_path / "clip.mp4", num_frames=4)
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise RuntimeError('no such weights')\n")
    with pytest.raises(VreError, match=r"broken\.py.*no such weights") as error:
        run_many([Job(video, tmp_path / "out")], parse_config(CONFIG), RunOptions(),
                 ScaleOptions(ray="auto", plugins=(str(plugin),)))
    assert "Traceback" not in str(error.value)


@pytest.mark.slow
def test_sigterm_on_ray_stops_the_actors_as_ctrl_c_does(tmp_path: Path):
    """`ray.init` puts its own SIGTERM handler in place (an exit at once, after its core worker's crash dump on
    the terminal); the command keeps its own: exit 130, one line, the private cluster gone, no process left."""
    import signal
    import subprocess
    import sys

    from test_scale import PLUGIN as SLOW_PLUGIN
    from test_scale import descendants, frames_in, wait_for

    video = make_video(tmp_path / "clip.mp4", num_frames=24, gop=6)
    plugin = tmp_path / "slow_copy.py"
    plugin.write_text(SLOW_PLUGIN)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({"plugins": [str(plugin)], "representations": {
        "copy": {"type": "slow_copy", "parameters": {"seconds": 0.3}}}}))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "vre_fast", "run", str(video), "-c", str(cfg), "-o", str(out),
                             "--ray", "auto", "--chunk-size", "12", "--no-progress"], stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        wait_for(lambda: frames_in(out, "copy") >= 1, 120)
        family = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err, (proc.returncode, err)
    assert "SIGTERM received" not in err and "Traceback" not in err, err
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in family), 30)


@pytest.mark.slow
def test_a_hung_unit_on_ray_is_cancelled_its_actor_replaced_and_retried_then_recorded(cluster, registry,
                                                                                      tmp_path: Path):
    video = make_video(tmp_path / "clip.mp4", num_frames=12, gop=6)
    plugin = tmp_path / "flaky.py"
    plugin.write_text(PLUGIN)
    cfg = parse_config({"plugins": [str(plugin)], "batch_size": 1, "representations": {
        "copy": {"type": "flaky_copy", "parameters": {"hang_on": 5}}}})
    out = tmp_path / "out"
    result = run_many([Job(video, out)], cfg, RunOptions(), ScaleOptions(
        workers=2, chunk_size=4, ray="auto", unit_timeout=2, setup_timeout=0))
    assert result.failed_units == [f"{video}: frames 4..8 timed out after 2 s (after {MAX_ATTEMPTS} attempts; "
                                   f"see {out}/.logs)"]
    assert result.pool.units_timed_out == MAX_ATTEMPTS and result.pool.units_requeued == MAX_ATTEMPTS - 1
    stored = sorted(int(p.stem) for p in (out / "copy" / "npz").glob("*.npz"))
    assert [f for f in stored if not 4 <= f < 8] == [0, 1, 2, 3, 8, 9, 10, 11] and 5 not in stored
