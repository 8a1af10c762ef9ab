"""Security over real gRPC: TLS and mutual TLS, bearer tokens with roles, the audit log, reflection."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ceal.client import requests
from ceal.client.channel import ChannelSettings
from ceal.service.middleware.access import AUDIT_LOGGER
from ceal.service.middleware.auth import METHOD_ROLES, Role
from ceal.service.middleware.tls import TLSConfig
from ceal.service.server import Running
from ceal.v1 import active_learning_pb2 as al_pb
from ceal.v1 import active_learning_pb2_grpc as al_grpc
from ceal.v1 import segmentation_pb2 as seg_pb
from ceal.v1 import segmentation_pb2_grpc as seg_grpc
from tests.integration.hardening.certs import Certs, make_certs
from tests.integration.hardening.conftest import WAIT, ceal_methods, raw_call
from tests.support.server import in_process

TOKENS = {"viewer": "view-token", "annotator": "annotate-token", "admin": "admin-token"}
DENIED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _secure_channel(port: int, settings: ChannelSettings) -> grpc.Channel:
    creds = settings.credentials()
    assert creds is not None
    return grpc.secure_channel(f"127.0.0.1:{port}", creds)


def _list_models(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        seg_grpc.SegmentationStub(channel).ListModels(seg_pb.ListModelsRequest(), timeout=5)
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_tls_serves_trusting_clients_and_refuses_plaintext(models_dir: Path, certs: Certs) -> None:
    with in_process(models_dir, tls=TLSConfig(certs.server_cert, certs.server_key)) as running:
        trusting = ChannelSettings("127.0.0.1", root_certificates=certs.ca)
        with _secure_channel(running.port, trusting) as channel:
            assert _list_models(channel) == grpc.StatusCode.OK
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            assert _list_models(channel) == grpc.StatusCode.UNAVAILABLE
        wrong_ca = ChannelSettings("127.0.0.1", root_certificates=certs.other_ca)
        with _secure_channel(running.port, wrong_ca) as channel:
            assert _list_models(channel) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_without_a_certificate(models_dir: Path, certs: Certs) -> None:
    tls = TLSConfig(certs.server_cert, certs.server_key, client_ca=certs.ca)
    with in_process(models_dir, tls=tls) as running:
        anonymous = ChannelSettings("127.0.0.1", root_certificates=certs.ca)
        with _secure_channel(running.port, anonymous) as channel:
            assert _list_models(channel) == grpc.StatusCode.UNAVAILABLE
        known = ChannelSettings(
            "127.0.0.1", root_certificates=certs.ca, client_certificate=certs.client_cert, client_key=certs.client_key
        )
        with _secure_channel(running.port, known) as channel:
            assert _list_models(channel) == grpc.StatusCode.OK


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.json"
    spec = {
        "viewer-app": {"token_sha256": hashlib.sha256(TOKENS["viewer"].encode()).hexdigest(), "role": "viewer"},
        "annotator-7": {"token_sha256": hashlib.sha256(TOKENS["annotator"].encode()).hexdigest(), "role": "annotator"},
        "pacs-bridge": {"token": TOKENS["admin"], "role": "admin"},
    }
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def guarded(models_dir: Path, tokens_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = tmp_path_factory.mktemp("guarded") / "state"
    with in_process(models_dir, state, tokens=tokens_file, reflection=True) as running:
        yield running


def _bearer(role: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[role]}"),)


def test_each_role_reaches_exactly_its_methods(guarded: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
        for method in ceal_methods():
            needed = METHOD_ROLES[method.name]
            for role in Role:
                code = raw_call(channel, method, b"", metadata=_bearer(role.name.lower()))
                if role >= needed:
                    assert code not in DENIED, (method.name, role)
                else:
                    assert code == grpc.StatusCode.PERMISSION_DENIED, (method.name, role)


def test_missing_or_unknown_token_is_unauthenticated(guarded: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
        for method in ceal_methods():
            assert raw_call(channel, method, b"") == grpc.StatusCode.UNAUTHENTICATED
            # checked before the request is parsed: bytes that are no message are still UNAUTHENTICATED
            assert raw_call(channel, method, b"\xff\xff") == grpc.StatusCode.UNAUTHENTICATED
            for header in ("Bearer nope", "Basic dmlldy10b2tlbg==", f"Bearer {TOKENS['admin']}x"):
                metadata = (("authorization", header),)
                assert raw_call(channel, method, b"", metadata=metadata) == grpc.StatusCode.UNAUTHENTICATED
        # the SDK sends its token as the same header
        settings = ChannelSettings("127.0.0.1", token=TOKENS["viewer"])
        reply = seg_grpc.SegmentationStub(channel).ListModels(
            seg_pb.ListModelsRequest(), timeout=WAIT, metadata=settings.metadata()
        )
        assert [m.name for m in reply.models] == ["lesion"]


def test_health_and_reflection_stay_open(guarded: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=WAIT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert "ceal.v1.Segmentation" in _reflected_services(channel)


def _reflected_services(channel: grpc.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=WAIT)
    return [s.name for r in replies for s in r.list_services_response.service]


def test_reflection_is_off_unless_enabled(server: Running) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, pytest.raises(grpc.RpcError) as info:
        _reflected_services(channel)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_audit_log_says_who_leased_and_labelled_what_without_patient_identifiers(
    guarded: Running, caplog: pytest.LogCaptureFixture
) -> None:
    uids = ("1.2.840.99.PATIENT.STUDY", "1.2.840.99.PATIENT.SERIES", "1.2.840.99.PATIENT.SOP")
    images = [
        requests.pool_image_message(
            requests.pool_image(np.full((48, 64), 40 * i, np.uint8), dicom=(uids[0], uids[1], f"{uids[2]}.{i}"))
        )
        for i in range(3)
    ]
    with grpc.insecure_channel(f"127.0.0.1:{guarded.port}") as channel, caplog.at_level(logging.INFO, AUDIT_LOGGER):
        pool = al_grpc.ActiveLearningStub(channel)
        pool.RegisterImages(
            al_pb.RegisterImagesRequest(pool="audit", images=images), timeout=WAIT, metadata=_bearer("admin")
        )
        list(pool.ScorePool(al_pb.ScorePoolRequest(pool="audit", samples=4), timeout=WAIT, metadata=_bearer("admin")))
        leased = pool.GetQueryList(
            al_pb.GetQueryListRequest(pool="audit", k=2, annotator="Dr Jane Roe"),
            timeout=WAIT,
            metadata=_bearer("annotator"),
        )
        leased_ids = [item.image_id for item in leased.items]
        label = requests.submit_label_request(
            leased_ids[0],
            np.zeros((48, 64), np.uint8),
            pool="audit",
            annotator="Dr Jane Roe",
            source="human",
            seconds_spent=3.0,
            idempotency_key=None,
        )
        pool.SubmitLabel(label, timeout=WAIT, metadata=_bearer("annotator"))
        with pytest.raises(grpc.RpcError):
            pool.ScorePool(al_pb.ScorePoolRequest(pool="audit"), timeout=WAIT, metadata=_bearer("viewer")).next()
    lines = [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER]
    records = [json.loads(line) for line in lines]
    by_method = {r["method"].rpartition("/")[2]: r for r in records}
    assert by_method["GetQueryList"]["who"] == "annotator-7" and by_method["GetQueryList"]["code"] == "OK"
    assert sorted(by_method["GetQueryList"]["image_ids"]) == sorted(leased_ids) and len(leased_ids) == 2
    assert by_method["SubmitLabel"]["image_ids"] == [leased_ids[0]]
    assert by_method["RegisterImages"]["who"] == "pacs-bridge" and "image_ids" not in by_method["RegisterImages"]
    assert by_method["ScorePool"]["who"] == "viewer-app" and by_method["ScorePool"]["code"] == "PERMISSION_DENIED"
    assert all(r["time"].endswith("Z") for r in records)
    text = "\n".join(lines)
    for secret in (*uids, "Dr Jane Roe", *TOKENS.values()):
        assert secret not in text
