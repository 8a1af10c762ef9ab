"""The rendered Kubernetes manifests, shared by the deploy tests (rendered once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.deploy.tools import K8S, OVERLAYS, Manifest, render

# What each rendering is: the two overlays, the CPU overlay with the TLS component, the placeholder Secrets.
RENDERINGS = (*OVERLAYS, "cpu+tls", "secrets")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    """rendering name -> its documents."""
    out = {name: render(K8S / "overlays" / name) for name in OVERLAYS}
    out["secrets"] = render(K8S / "secrets")
    # kustomize refuses absolute paths, so the throwaway overlay names the real ones relatively.
    folder = tmp_path_factory.mktemp("tls-overlay")
    cpu, tls = (Path(os.path.relpath(K8S / sub, folder)).as_posix() for sub in ("overlays/cpu", "components/tls"))
    (folder / "kustomization.yaml").write_text(f"resources: [{cpu}]\ncomponents: [{tls}]\n")
    out["cpu+tls"] = render(folder)
    return out
