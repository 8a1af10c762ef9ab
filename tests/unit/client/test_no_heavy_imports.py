"""The client side (SDK, PACS sync, CLI dispatcher) never needs torch or onnxruntime.

The fast check imports the modules in a fresh interpreter of this venv; the slow one installs the package with
only the `client` extra into a new venv and checks what can and cannot be imported there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# starlette and uvicorn come only with the `console` extra: the SDK and CLI must not need them.
HEAVY = ("torch", "onnxruntime", "starlette", "uvicorn")


def test_client_pacs_sync_and_cli_leave_torch_and_onnxruntime_out() -> None:
    code = (
        "import sys\n"
        "import ceal.client, ceal.pacs.sync, ceal.cli.main\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# What the wheel needs; tests, benchmarks, deploy files and local state stay behind.
_NOT_PACKAGED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "runs",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "tests",
    "benchmarks",
    "deploy",
    "docs",
    ".whl",
    ".gl",
)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_client_only_install_imports_the_sdk_without_torch_or_onnxruntime(tmp_path: Path) -> None:
    # A copy of the working tree, so that building the wheel writes build/ and *.egg-info there, not in the
    # tree other people work in; the install itself is non-editable.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_PACKAGED)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, ceal = venv / "bin" / "python", venv / "bin" / "ceal"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-input", f"{source}[client]"],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]

    probe = (
        "import importlib.util, sys\n"
        "import ceal.client\n"
        "assert ceal.client.Client and ceal.client.AsyncClient\n"
        "print(ceal.client.__file__)\n"
        f"print(sorted(m for m in {HEAVY!r} if importlib.util.find_spec(m) is not None))\n"
    )
    out = subprocess.run(
        [str(python), "-c", probe], check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    installed_at, importable = out.stdout.split()
    assert str(venv) in installed_at  # the installed copy, not the source tree
    assert importable == "[]"

    pacs = subprocess.run([str(ceal), "pacs"], check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert pacs.returncode == 2 and "pip install 'ceal[pacs]'" in pacs.stderr
    console = subprocess.run(
        [str(ceal), "console"], check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert console.returncode == 2 and "pip install 'ceal[console]'" in console.stderr
