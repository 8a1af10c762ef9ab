"""The tritonclient venv: tritonclient[grpc] needs protobuf < 7 and grpcio-tools >= 7, so it lives in
.venv/tools/tritonclient (made by `make deps`). Missing, it FAILS the test (never skips)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TRITON_PYTHON = ROOT / ".venv" / "tools" / "tritonclient" / "bin" / "python"


@pytest.fixture(scope="session")
def triton_python() -> Path:
    if not TRITON_PYTHON.exists():
        pytest.fail(f"{TRITON_PYTHON} is missing: run `make deps` (it installs tritonclient[grpc])", pytrace=False)
    return TRITON_PYTHON
