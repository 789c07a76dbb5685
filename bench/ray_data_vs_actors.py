"""Why the Ray backend uses plain actors, not Ray Data: the cost of 200 trivial units (small dicts, as
vre_fast.scale's are) through a Ray Data actor pool (map_batches, concurrency 2, batch_size 1) against 2 plain
actors fed one unit at a time, as ray_pool.RayPool does; both from the pool's start to the last result, on a private
loopback Ray cluster of 2 CPUs, each twice.

    python bench/ray_data_vs_actors.py      # needs ray and Ray Data's own dependencies (pandas, pyarrow)
"""

from __future__ import annotations

import sys
import time

from vre_fast.scale.ray_pool import connect

UNITS = 200


class _Work:
    """Ray Data's callable class: one batch (here one unit) in, its small status rows out."""

    def __call__(self, batch: dict) -> dict:
        return {"chunk": batch["chunk"], "ok": [True] * len(batch["chunk"])}


class _Actor:
    def execute(self, unit: dict) -> tuple[str, int]:
        return "done", unit["chunk"]


def ray_data(ray, units: list[dict]) -> float:
    start = time.perf_counter()
    rows = ray.data.from_items(units).map_batches(_Work, concurrency=2, num_cpus=0.9, batch_size=1).take_all()
    assert len(rows) == len(units)
    return time.perf_counter() - start


def plain_actors(ray, units: list[dict]) -> float:
    start = time.perf_counter()
    remote = ray.remote(num_cpus=0.9)(_Actor)
    actors = [remote.remote() for _ in range(2)]
    todo = iter(units)
    pending = {a.execute.remote(next(todo)): a for a in actors}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        actor = pending.pop(ready[0])
        ray.get(ready[0])
        unit = next(todo, None)
        if unit is not None:
            pending[actor.execute.remote(unit)] = actor
    for a in actors:
        ray.kill(a)
    return time.perf_counter() - start


def main() -> None:
    try:
        import pandas  # noqa: F401  (Ray Data's)
    except ImportError:
        sys.exit("bench/ray_data_vs_actors.py: Ray Data needs pandas (pip install 'ray[data]')")
    leave = connect("auto", num_cpus=2)
    import ray

    units = [{"job": 0, "chunk": i, "video": "/videos/clip.mp4", "frames": list(range(i * 8, i * 8 + 8))}
             for i in range(UNITS)]
    try:
        for name, fn in (("ray data actor pool", ray_data), ("plain actors", plain_actors)):
            for _ in range(2):
                seconds = fn(ray, units)
                print(f"{name}: {UNITS} units in {seconds:.2f} s ({seconds / UNITS * 1000:.1f} ms a unit, the "
                      f"pool's start included)")
    finally:
        leave()


if __name__ == "__main__":
    main()
