"""Container images: hadolint is clean, both stages share a pinned base, the runtime stage keeps the
contract the manifests rely on, and .dockerignore lets every COPY source through.

The images are never built here (no container engine on the development machines).
"""

from __future__ import annotations

import fnmatch
import json
import shlex

import pytest

from tests.deploy.tools import DOCKER, REPO, find_tool, run

DOCKERFILES = ("Dockerfile.cpu", "Dockerfile.cuda")
UID = "10001"


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in (DOCKER / name).read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def stages(name: str) -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (FROM first)."""
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for op, args in instructions(name):
        if op == "FROM":
            current = []
            out[args.split()[-1]] = current
        current.append((op, args))
    return out


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, closely enough for our allow-list: the last pattern matching `path` or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw.removeprefix("!").rstrip("/").replace("**/", "*")
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
            excluded = not negated
    return excluded


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_is_clean(name: str) -> None:
    hadolint = find_tool("hadolint")
    run([hadolint, "--no-color", "--failure-threshold", "style", str(DOCKER / name)])


@pytest.mark.parametrize("name", DOCKERFILES)
def test_stages_share_one_pinned_base_image(name: str) -> None:
    """The runtime copies the builder's venv, whose interpreter is a symlink into the base image."""
    found = stages(name)
    assert list(found) == ["builder", "runtime"]
    bases = {stage: body[0][1].split()[0] for stage, body in found.items()}
    assert bases["builder"] == bases["runtime"], bases
    image, _, tag = bases["runtime"].rpartition(":")
    assert image and tag and tag != "latest" and "$" not in tag, bases["runtime"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runtime_stage_contract(name: str) -> None:
    """What the Kubernetes manifests and docs/deploy.md assume about the image."""
    runtime = stages(name)["runtime"]
    last = {op: args for op, args in runtime}
    assert last["USER"] == f"{UID}:{UID}", "a numeric user lets Kubernetes verify runAsNonRoot"
    assert last["EXPOSE"] == "50051"
    assert set(json.loads(last["VOLUME"])) == {"/models", "/state"}
    assert json.loads(last["ENTRYPOINT"]) == ["ceal"]
    command = json.loads(last["CMD"])
    assert command[:1] == ["serve"] and "--models" in command and command[command.index("--models") + 1] == "/models"
    assert "/opt/ceal/healthcheck.py" in last["HEALTHCHECK"]
    builder = stages(name)["builder"]
    assert any(op == "COPY" and args.endswith(" /opt/ceal/healthcheck.py") for op, args in builder)
    assert any(op == "COPY" and args.startswith("--from=builder") for op, args in runtime)


def test_dockerignore_lets_every_copy_source_through() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = {
        source.rstrip("/")
        for name in DOCKERFILES
        for op, args in instructions(name)
        if op == "COPY" and not args.startswith("--from")
        for source in shlex.split(args)[:-1]
    }
    assert {"clients", "service", "proto", "deploy/docker/healthcheck.py"} <= sources
    for source in sorted(sources):
        assert (REPO / source).exists(), f"COPY {source}: no such path"
        files = (
            [source]
            if (REPO / source).is_file()
            else [str(p.relative_to(REPO)) for p in (REPO / source).rglob("*.py") if "__pycache__" not in p.parts][:20]
        )
        assert files, f"COPY {source}: nothing to copy"
        for path in files:
            assert not dockerignored(path, patterns), f"{path} is excluded by .dockerignore but COPY needs it"
    for private in (".git/config", ".venv/pyvenv.cfg", "runs/x", "tests/conftest.py", "service/ceal/__pycache__/a.pyc"):
        assert dockerignored(private, patterns), f"{private} would enter the build context"
