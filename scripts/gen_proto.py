"""Generate the Python code for proto/ceal/v1 into proto/gen (the one command: `make proto`).

`--check` regenerates into a temporary folder and exits 1 if proto/gen differs, so a
stale checkout fails the tests.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

import grpc_tools  # type: ignore[import-untyped]
from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = PROTO_DIR / "gen"


def generate(out: Path) -> None:
    """Run protoc on every .proto under proto/ceal into `out` (Python, gRPC stubs and .pyi)."""
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "ceal").rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def _tree(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def check() -> list[str]:
    """Names of generated files that are missing, extra or different from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        want, have = _tree(fresh), _tree(GEN_DIR) if GEN_DIR.exists() else {}
        diffs = sorted(set(want) ^ set(have))
        diffs += [n for n in sorted(set(want) & set(have)) if not filecmp.cmp(want[n], have[n], shallow=False)]
        return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if proto/gen is stale")
    args = parser.parse_args()
    if args.check:
        stale = check()
        if stale:
            print("proto/gen is stale, run `make proto`: " + ", ".join(stale), file=sys.stderr)
            raise SystemExit(1)
        return
    generate(GEN_DIR)


if __name__ == "__main__":
    main()
