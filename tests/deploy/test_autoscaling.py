"""The HPA scales on the engine's queue depth: the metric the server exports, the collector's Prometheus name,
the prometheus-adapter rule and the HPA's external metric are one chain with no broken link."""

from __future__ import annotations

import yaml
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from ceal.service.middleware.telemetry import Telemetry
from tests.deploy.tools import K8S, Manifest, find


def _queue_gauge_name() -> str:
    """The name under which a server's queue depth reaches its metric readers (read, not assumed)."""
    reader = InMemoryMetricReader()
    telemetry = Telemetry(metric_readers=[reader])
    telemetry.observe(lambda: 5, dict)
    data = reader.get_metrics_data()
    telemetry.shutdown()
    assert data is not None
    names = [
        m.name
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if [p.value for p in m.data.data_points] == [5]
    ]
    assert len(names) == 1, names
    return names[0]


def test_hpa_external_metric_is_the_servers_queue_depth(rendered: dict[str, list[Manifest]]) -> None:
    config = yaml.safe_load(find(rendered["cpu"], "ConfigMap", "otel-collector")["data"]["config.yaml"])
    prefix = config["exporters"]["prometheus"].get("namespace")
    prometheus_name = (f"{prefix}_" if prefix else "") + _queue_gauge_name().replace(".", "_")
    adapter = yaml.safe_load((K8S / "prometheus-adapter" / "values.yaml").read_text())
    (rule,) = adapter["rules"]["external"]
    assert rule["seriesQuery"].split("{")[0] == prometheus_name == "ceal_engine_queue_depth"
    for overlay in ("cpu", "cuda"):
        hpa = find(rendered[overlay], "HorizontalPodAutoscaler", "ceal")
        (external,) = [m["external"] for m in hpa["spec"]["metrics"] if m["type"] == "External"]
        assert external["metric"]["name"] == rule["name"]["as"]
        assert external["metric"]["selector"]["matchLabels"] == {"namespace": hpa["metadata"]["namespace"]}
        assert external["target"]["type"] == "AverageValue" and float(external["target"]["averageValue"]) > 0
