"""Runs a benchmark with the working tree's code and with an earlier commit's, alternately, in one session
(these machines are shared and noisy: interleaved rounds see the same noise).

    python bench/against_commit.py REV [--rounds 3] -- bench/pipeline_overlap.py --frames 150

The commit's package and bench/ are exported with `git archive` into a temporary folder laid out as the
installed package (top-level kernels/ and export/ become vre_fast.kernels / vre_fast.export) and put first
on PYTHONPATH, so that commit's version of the benchmark, and any `python -m vre_fast` it starts, run that
commit's code (examples/ is linked in, for the example clip).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def export_package(rev: str, into: Path) -> Path:
    """`rev`'s vre_fast, kernels and export as an importable `vre_fast` under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "vre_fast", "kernels", "export", "bench"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    for sub in ("kernels", "export"):
        (into / sub).rename(into / "vre_fast" / sub)
    (into / "examples").symlink_to(ROOT / "examples")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the commit to compare with (e.g. HEAD~3)")
    parser.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, bench = parser.parse_args(argv[:split]), argv[split + 1:]
    if not bench:
        parser.error("give the benchmark after --")
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.rev], check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        old = export_package(args.rev, Path(tmp))
        script = Path(bench[0]).resolve()
        old_script = old / script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
        sides = {f"before ({sha})": ({**os.environ, "PYTHONPATH": str(old)}, [str(old_script), *bench[1:]]),
                 "now (working tree)": (dict(os.environ), bench)}
        for round_ in range(1, args.rounds + 1):
            for label, (env, command) in sides.items():
                out = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, cwd=ROOT)
                print(f"--- round {round_}, {label}")
                print(out.stdout.rstrip() or out.stderr[-2000:], flush=True)


if __name__ == "__main__":
    main()
