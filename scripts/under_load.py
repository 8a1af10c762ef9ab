"""Run a command with a CPU-burning busy loop on every core beside it (``make test-under-load``).

Tests that train models, sample Monte-Carlo masks, compare rankings or wait on deadlines must decide the same
way on a loaded machine as on a quiet one; this is how to find the ones that do not. The busy loops are plain
processes (one per core, or ``--workers N``) that spin until the command ends; they are killed whatever way
the command ends, and the command's exit status is returned. ``--runs N`` repeats the command and stops at
the first failure.

    python scripts/under_load.py --runs 3 -- .venv/bin/python -m pytest -q
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time


def _spin() -> None:  # pragma: no cover - runs in a child process until killed
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="busy loops (default: one a core)")
    parser.add_argument("--runs", type=int, default=1, help="run the command this many times (default: 1)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --, e.g. -- .venv/bin/python -m pytest -q")
    if args.workers < 1 or args.runs < 1:
        parser.error("--workers and --runs must be at least 1")
    ctx = mp.get_context("spawn")
    loops = [ctx.Process(target=_spin, daemon=True) for _ in range(args.workers)]
    for p in loops:
        p.start()
    print(f"under_load: {args.workers} busy loop(s) beside: {' '.join(command)}", flush=True)
    code = 0
    try:
        for run in range(1, args.runs + 1):
            start = time.monotonic()
            code = subprocess.call(command)
            print(f"under_load: run {run}/{args.runs} exit {code} in {time.monotonic() - start:.0f} s", flush=True)
            if code != 0:
                break
    finally:
        for p in loops:
            p.kill()
        for p in loops:
            p.join()
    return code


if __name__ == "__main__":
    sys.exit(main())
