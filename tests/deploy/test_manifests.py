"""Kubernetes manifests: kustomize renders every overlay, the result is schema-valid (strict, two API
versions), the server Deployment has the shape the issue asks for, and checkov finds nothing unjustified.

Nothing here talks to a cluster: Kubernetes cannot run on the development machines.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from typing import Any

import pytest

from tests.deploy.conftest import RENDERINGS
from tests.deploy.tools import CHECKOV_VENV, OVERLAYS, REPO, Manifest, find, find_tool, pod_specs, selects

try:
    import kubernetes_validate  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the failure message is the point
    kubernetes_validate = None

# The oldest API version we promise (native gRPC probes are GA since 1.27) and the newest schemas shipped.
OLDEST_KUBERNETES = "1.30.0"
PORT = 50051


def _validator() -> Any:
    if kubernetes_validate is None:
        pytest.fail("kubernetes-validate is not installed: run make deps", pytrace=False)
    return kubernetes_validate


def server_container(docs: list[Manifest]) -> Manifest:
    container: Manifest = find(docs, "Deployment", "ceal")["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_document_is_schema_valid(rendered: dict[str, list[Manifest]], name: str) -> None:
    validator = _validator()
    versions = sorted({OLDEST_KUBERNETES, validator.latest_version()})
    for doc in rendered[name]:
        for version in versions:
            try:
                validator.validate(doc, version, strict=True)
            except validator.ValidationError as exc:
                what = f"{doc['kind']}/{doc['metadata']['name']}"
                pytest.fail(f"{name}: {what} is invalid for Kubernetes {version}: {exc.message}")


def test_strict_validation_rejects_a_misspelt_field(rendered: dict[str, list[Manifest]]) -> None:
    """Guards the test above: a typo'd probe key must not pass as an unknown extension."""
    validator = _validator()
    deployment = copy.deepcopy(find(rendered["cpu"], "Deployment", "ceal"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["grcp"] = probe.pop("grpc")
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, OLDEST_KUBERNETES, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_server_deployment(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    deployment = find(rendered[overlay], "Deployment", "ceal")
    pod = deployment["spec"]["template"]["spec"]
    container = server_container(rendered[overlay])
    assert deployment["spec"]["replicas"] == 3
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"] == {"port": PORT}, probe
    assert {p["containerPort"] for p in container["ports"]} == {PORT}
    assert container["image"].endswith(f":0.1.0-{overlay}"), container["image"]
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert selects(term["labelSelector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"])
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert models["persistentVolumeClaim"]["readOnly"] is True
    claim = find(rendered[overlay], "PersistentVolumeClaim", models["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    hpa = find(rendered[overlay], "HorizontalPodAutoscaler", "ceal")
    assert hpa["spec"]["minReplicas"] == 3
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["External", "Resource"]  # queue depth first, then CPU


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gpu_is_requested_only_by_the_cuda_overlay(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    container = server_container(rendered[overlay])
    assert container["resources"]["limits"].get("nvidia.com/gpu") == (1 if overlay == "cuda" else None)
    for _, template in pod_specs(rendered[overlay]):
        for other in template["spec"]["containers"]:
            if other["name"] != container["name"]:
                assert "nvidia.com/gpu" not in other["resources"]["limits"], other["name"]


@pytest.mark.parametrize("name", [*OVERLAYS, "cpu+tls"])
def test_every_container_is_locked_down(rendered: dict[str, list[Manifest]], name: str) -> None:
    """The 'restricted' Pod Security Standard, which the namespace enforces, plus a read-only root."""
    namespace = find(rendered[name], "Namespace", "ceal")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for workload, template in pod_specs(rendered[name]):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
            image, _, tag = container["image"].rpartition(":")
            assert image and tag and tag != "latest", where


def test_checkov_finds_nothing_unjustified() -> None:
    """checkov over deploy/: Dockerfiles, every kustomization as rendered, and a secrets scan.

    Its `kubernetes` framework is left out on purpose: it reads kustomize patch files as whole Deployments
    (no probes, no securityContext) and reports them; the `kustomize` framework checks what is applied.
    """
    checkov = find_tool("checkov", CHECKOV_VENV / "bin")
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "true"}
    command = [checkov, "-d", "deploy", "--framework", "dockerfile", "kustomize", "secrets"]
    done = subprocess.run(
        [*command, "--skip-download", "--output", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    try:
        reports = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov exited {done.returncode} without a JSON report:\n{done.stderr[-4000:]}")
    reports = reports if isinstance(reports, list) else [reports]
    checked = {r["check_type"] for r in reports}
    assert {"dockerfile", "kustomize"} <= checked, f"checkov ran only {sorted(checked)}"
    for report in reports:
        failed = report["results"]["failed_checks"]
        assert not failed, [f"{f['check_id']} {f['resource']} ({f['file_path']})" for f in failed]
        for skipped in report["results"]["skipped_checks"]:
            reason = skipped["check_result"].get("suppress_comment", "")
            assert len(reason) > 20, f"{skipped['check_id']} is skipped without a written reason"
