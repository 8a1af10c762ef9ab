"""`make bench`: every benchmark in turn, each in its own process (they are not tests and time nothing in CI).

    .venv/bin/python benchmarks/run_all.py [--only perf served]

Runs engine_bench.py (when present), perf_bench.py, resolution_bench.py, served_bench.py, pool_bench.py,
ranking_bench.py, ensemble_bench.py, typiclust_bench.py and oip_bench.py, one after another so they never
compete for the cores, and exits non-zero when any of them did. perf_bench.py trains the bench model once
(`bench_model.py`, cached in runs/bench/; ~10 minutes a placement the first time on 2 cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ("engine", "perf", "resolution", "served", "pool", "ranking", "ensemble", "typiclust", "oip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=BENCHES, default=list(BENCHES))
    args = parser.parse_args(argv)
    outcomes = []
    for name in args.only:
        script = HERE / f"{name}_bench.py"
        if not script.is_file():
            outcomes.append((name, "absent"))
            continue
        print(f"\n===== {script.name} =====", flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False).returncode
        outcomes.append((name, f"exit {code} after {time.perf_counter() - started:.0f} s"))
    print("\n" + "; ".join(f"{name}: {what}" for name, what in outcomes))
    return 1 if any(what.startswith("exit") and not what.startswith("exit 0 ") for _, what in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
