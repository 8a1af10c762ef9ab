"""The images install from lock files with hashes: each lock pins its extra's every requirement (the CPU lock
CPU onnxruntime, the CUDA lock onnxruntime-gpu), every pin carries a sha256, and each Dockerfile installs its
lock with --require-hashes and then ceal alone (--no-deps), so nothing is resolved at build time."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.test_dockerfiles import stages
from tests.deploy.tools import REPO

LOCKS = {"Dockerfile.cpu": ("service", "service.lock"), "Dockerfile.cuda": ("service-gpu", "service-gpu.lock")}


def _extra_requirements(extra: str) -> set[str]:
    """Names of the distributions an extra needs directly, `ceal[...]` self-references expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names: set[str] = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    todo = [extra]
    while todo:
        for raw in project["optional-dependencies"][todo.pop()]:
            req = Requirement(raw)
            if canonicalize_name(req.name) == "ceal":
                todo.extend(req.extras)
            else:
                names.add(canonicalize_name(req.name))
    return names


def _pins(lock: str) -> dict[str, str]:
    """name → the lock's text block for it (the `name==version` line and its --hash lines)."""
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (REPO / "deploy" / "requirements" / lock).read_text())
    out = {}
    for block in blocks:
        if block.startswith("#") or "==" not in block:
            continue
        name = block.split("==", 1)[0].split("[", 1)[0]
        out[canonicalize_name(name)] = block
    return out


@pytest.mark.parametrize("dockerfile", sorted(LOCKS))
def test_lock_pins_the_extra_with_hashes(dockerfile: str) -> None:
    extra, lock = LOCKS[dockerfile]
    pins = _pins(lock)
    missing = _extra_requirements(extra) - set(pins)
    assert not missing, f"{lock} lacks {sorted(missing)}: run scripts/lock-images"
    for name, block in pins.items():
        assert re.search(r"==[^\s\\]+", block) and "--hash=sha256:" in block, name
    gpu = extra == "service-gpu"
    assert ("onnxruntime-gpu" in pins, "onnxruntime" in pins) == (gpu, not gpu)


@pytest.mark.parametrize("dockerfile", sorted(LOCKS))
def test_images_install_only_what_is_locked(dockerfile: str) -> None:
    _extra, lock = LOCKS[dockerfile]
    runs = [args for op, args in stages(dockerfile)["builder"] if op == "RUN" and "pip install" in args]
    (install,) = runs
    assert f"--require-hashes -r deploy/requirements/{lock}" in install
    assert "--no-deps ." in install and "'.[" not in install
    copies = [args for op, args in stages(dockerfile)["builder"] if op == "COPY"]
    assert f"deploy/requirements/{lock} deploy/requirements/{lock}" in copies
