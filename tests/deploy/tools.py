"""Finding the lint tools and rendering the Kubernetes manifests, for the deploy tests.

A missing tool fails the test (never skips it) with the message "run make deps": a skipped lint is a lint
that silently stopped running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu", "cuda")
# checkov pins networkx<2.7 and packaging<24, which the project's own environment outgrew, so `make deps`
# gives it a virtual environment of its own inside .venv.
CHECKOV_VENV = REPO / ".venv" / "tools" / "checkov"

Manifest = dict[str, Any]


def find_tool(name: str, *extra_dirs: Path) -> str:
    """The path of executable `name`: beside this interpreter, in `extra_dirs`, then on PATH."""
    for folder in (Path(sys.executable).parent, *extra_dirs):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run make deps", pytrace=False)
    return found


def kustomize_command() -> list[str]:
    """`kustomize build`, or kubectl's built-in copy of it (`kubectl kustomize`)."""
    for name, sub in (("kustomize", "build"), ("kubectl", "kustomize")):
        if shutil.which(name) or (Path(sys.executable).parent / name).is_file():
            return [find_tool(name), sub]
    pytest.fail("neither kustomize nor kubectl is installed: run make deps", pytrace=False)


def run(command: list[str], timeout: float = 120.0, env: dict[str, str] | None = None) -> str:
    """Run `command` from the repository root; fail the test with its output when it exits non-zero."""
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def render(folder: Path) -> list[Manifest]:
    """The documents `kustomize build folder` produces, parsed."""
    text = run([*kustomize_command(), str(folder)])
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[Manifest], kind: str, name: str) -> Manifest:
    """The one document of `kind` named `name`; fails the test naming what there is instead."""
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    present = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    pytest.fail(f"no {kind}/{name} in the rendered manifests; found {present}")


def pod_specs(docs: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, pod template) for every Deployment and StatefulSet."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield doc, doc["spec"]["template"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """True when a matchLabels-style `selector` matches `labels`."""
    return all(labels.get(key) == value for key, value in selector.items())
