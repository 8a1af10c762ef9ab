"""buf on proto/: STANDARD lint is clean, nothing breaks against the released baseline, and the breaking
check has teeth (a renamed v1 field in a copy of proto/ fails it). buf comes from npm (`make deps`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / ".venv" / "tools" / "node" / "node_modules" / ".bin" / "buf"


def _buf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: run `make deps` (scripts/install-node-tools)", pytrace=False)
    return subprocess.run([str(BUF), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_buf_lint_is_clean() -> None:
    done = _buf("lint")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_breaking_change_against_the_baseline() -> None:
    done = _buf("breaking", "--against", "proto/baseline.binpb")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_renamed_v1_field_is_a_breaking_change(tmp_path: Path) -> None:
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "proto" / "ceal", tmp_path / "proto" / "ceal")
    tensor = tmp_path / "proto" / "ceal" / "v1" / "tensor.proto"
    tensor.write_text(tensor.read_text().replace("bytes data = 3;", "bytes payload = 3;"))
    done = _buf("breaking", "--against", str(ROOT / "proto" / "baseline.binpb"), cwd=tmp_path)
    assert done.returncode != 0 and 'changed name from "data" to "payload"' in done.stdout, done.stdout + done.stderr
