"""The rendered manifests fit together and fit the server: selectors find their pods, the Deployment's
args parse with the real `ceal serve` parser, every Secret key it reads exists, telemetry reaches the
collector, and the TLS component swaps the probes for TLS-speaking ones.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from ceal.service import cli as serve_cli
from tests.deploy.tools import OVERLAYS, Manifest, find, pod_specs, selects

SECRET_MOUNT = "/etc/ceal/secrets"
# kind -> the field holding its pod selector
POD_SELECTORS = {"PodDisruptionBudget": "selector", "NetworkPolicy": "podSelector"}
WITH_TLS = [*OVERLAYS, "cpu+tls"]


def server_container(docs: list[Manifest]) -> Manifest:
    container: Manifest = find(docs, "Deployment", "ceal")["spec"]["template"]["spec"]["containers"][0]
    return container


def parse_serve_args(docs: list[Manifest]) -> argparse.Namespace:
    """The server container's args, $(VAR)s expanded from its ConfigMap, parsed by `ceal serve`'s parser."""
    container = server_container(docs)
    config = find(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])["data"]
    values = {**config, **{e["name"]: "from-a-secret" for e in container.get("env", [])}}
    undefined = {m for arg in container["args"] for m in re.findall(r"\$\((\w+)\)", arg)} - set(values)
    assert not undefined, f"args use $(VAR)s defined nowhere: {sorted(undefined)}"
    argv = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg) for arg in container["args"]]
    parser = argparse.ArgumentParser(prog="ceal")
    serve_cli.register(parser.add_subparsers(dest="command"))
    try:
        return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"`ceal {' '.join(argv)}` is refused by the server's parser (its message is above)")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_and_references_resolve(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Label typos pass every schema; here each Service, PDB, policy and HPA must find its pods."""
    docs = rendered[overlay]
    templates = [template for _, template in pod_specs(docs)]

    def matching(selector: dict[str, str]) -> list[Manifest]:
        return [t for t in templates if selects(selector, t["metadata"]["labels"])]

    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Service":
            pods = matching(doc["spec"]["selector"])
            assert pods, f"{name} selects no pods"
            port_names = {p.get("name") for t in pods for c in t["spec"]["containers"] for p in c["ports"]}
            for port in doc["spec"]["ports"]:
                assert port["targetPort"] in port_names, f"{name}: no container port {port['targetPort']}"
        elif doc["kind"] in POD_SELECTORS:
            labels = doc["spec"][POD_SELECTORS[doc["kind"]]].get("matchLabels")
            # An empty selector means every pod in the namespace (the default-deny and DNS policies).
            assert not labels or matching(labels), f"{name} selects no pods"
        elif doc["kind"] == "HorizontalPodAutoscaler":
            find(docs, doc["spec"]["scaleTargetRef"]["kind"], doc["spec"]["scaleTargetRef"]["name"])
        elif doc["kind"] == "StatefulSet":
            find(docs, "Service", doc["spec"]["serviceName"])

    server_labels = find(docs, "Deployment", "ceal")["spec"]["template"]["metadata"]["labels"]
    services = [d for d in docs if d["kind"] == "Service" and selects(d["spec"]["selector"], server_labels)]
    cluster_ips = sorted(s["spec"].get("clusterIP", "") for s in services)
    assert cluster_ips == ["", "None"], "the server wants one headless Service and one with a virtual IP"


@pytest.mark.parametrize("name", WITH_TLS)
def test_args_parse_with_the_real_server_cli(rendered: dict[str, list[Manifest]], name: str) -> None:
    args = parse_serve_args(rendered[name])
    assert args.command == "serve"
    assert args.models == Path("/models") and args.host == "0.0.0.0" and args.port == 50051
    assert args.state.startswith("postgresql://")
    assert ":" not in args.state.split("//", 1)[1].split("@", 1)[0], "a password in the ConfigMap"
    assert args.tokens is not None, "the cluster serves with bearer tokens"
    assert (args.tls_cert is not None) == name.endswith("+tls")
    assert args.otel == "otlp"


@pytest.mark.parametrize("name", WITH_TLS)
def test_every_secret_the_pods_read_exists(rendered: dict[str, list[Manifest]], name: str) -> None:
    """Secret names, keys and the files the server opens under the mount are all in deploy/k8s/secrets."""
    secrets = {d["metadata"]["name"]: d["stringData"] for d in rendered["secrets"]}
    assert all(v == "" for data in secrets.values() for v in data.values()), "placeholders must stay empty"
    for _, template in pod_specs(rendered[name]):
        for volume in template["spec"].get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, volume["secret"]["secretName"]
        for container in template["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], f"{ref['name']} has no key {ref['key']}"
    container = server_container(rendered[name])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == SECRET_MOUNT)
    volume = next(
        v
        for v in find(rendered[name], "Deployment", "ceal")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == mount["name"]
    )
    probes = [container[p].get("exec", {}).get("command", []) for p in ("readinessProbe", "livenessProbe")]
    words = [*container["args"], *(w for command in probes for w in command)]
    read = {m for w in words for m in re.findall(re.escape(SECRET_MOUNT) + r"/([\w.-]+)", w)}
    assert read, "the server reads nothing from its secrets mount"
    missing = read - set(secrets[volume["secret"]["secretName"]])
    assert not missing, f"{sorted(missing)} are read from {SECRET_MOUNT} but not in the Secret"


def test_tls_component_probes_speak_tls(rendered: dict[str, list[Manifest]]) -> None:
    container = server_container(rendered["cpu+tls"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "grpc" not in container[probe], f"{probe}: native gRPC probes cannot speak TLS"
        command = container[probe]["exec"]["command"]
        assert command[:2] == ["python", "/opt/ceal/healthcheck.py"], command
        assert any(word.startswith("--tls-ca=") for word in command)


def test_telemetry_reaches_the_collector(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["cpu"]
    config = yaml.safe_load(find(docs, "ConfigMap", "otel-collector")["data"]["config.yaml"])
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert {"debug", "prometheus"} <= set(config["exporters"])
    for pipeline_name, pipeline in config["service"]["pipelines"].items():
        for part in ("receivers", "processors", "exporters"):
            unknown = set(pipeline.get(part, [])) - set(config.get(part, {}))
            assert not unknown, f"pipeline {pipeline_name} uses undeclared {part} {sorted(unknown)}"
    host, _, port = parse_serve_args(docs).otel_endpoint.rpartition(":")
    service = find(docs, "Service", "otel-collector")
    assert host.split(".")[:2] == [service["metadata"]["name"], service["metadata"]["namespace"]]
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
