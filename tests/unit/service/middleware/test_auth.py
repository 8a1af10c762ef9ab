"""Tokens, roles and the tokens file: pure checks, no server."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceal.oip import grpc_predict_v2_pb2
from ceal.service.middleware import auth
from ceal.service.middleware.auth import (
    METHOD_ROLES,
    OPEN_METHODS,
    AuthError,
    Role,
    TokenTable,
    bearer_token,
    required_role,
)
from ceal.v1 import active_learning_pb2, segmentation_pb2


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_every_api_method_has_a_role_and_the_issue_table_holds() -> None:
    api = {
        f"{s.full_name}/{m.name}"
        for mod in (segmentation_pb2, active_learning_pb2, grpc_predict_v2_pb2)
        for s in mod.DESCRIPTOR.services_by_name.values()
        for m in s.methods
    }
    assert set(METHOD_ROLES) | OPEN_METHODS == api  # a new RPC must be given a role here (or be an open probe)
    assert {m.rpartition("/")[2] for m in OPEN_METHODS} == {"ServerLive", "ServerReady"}
    viewer = {m for m, r in METHOD_ROLES.items() if r == Role.VIEWER}
    annotator = {m for m, r in METHOD_ROLES.items() if r == Role.ANNOTATOR}
    assert {m.rpartition("/")[2] for m in viewer} == {
        "Predict",
        "PredictStream",
        "ListModels",
        "WhoAmI",
        "ModelInfer",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
    }
    assert {m.rpartition("/")[2] for m in annotator} == {
        "GetQueryList",
        "SubmitLabel",
        "FindSimilar",
        "GetPoolStats",
        "ExportLabels",
        "ListPools",
        "GetPoolImage",
        "ReleaseLease",
    }


def test_open_services_and_unknown_methods() -> None:
    assert required_role("grpc.health.v1.Health/Check") is None
    assert required_role("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is None
    assert required_role("ceal.v1.ActiveLearning/DeleteEverything") == Role.ADMIN  # fails closed


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        ("", None),
        ("abc", None),
    ],
)
def test_bearer_header_parsing(header: str, token: str | None) -> None:
    assert bearer_token({"authorization": header} if header else {}) == token


def test_identify_by_digest_or_plain_token() -> None:
    table = TokenTable.from_mapping(
        {
            "a": {"token_sha256": _sha("alpha"), "role": "viewer"},
            "b": {"token": "beta", "role": "ADMIN"},
        }
    )
    assert table.identify("alpha") == ("a", Role.VIEWER)
    assert table.identify("beta") == ("b", Role.ADMIN)
    assert table.identify("gamma") is None and table.identify(None) is None and table.identify("") is None


@given(
    st.dictionaries(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=20), min_size=1, max_size=6),
    st.text(max_size=20),
)
def test_identify_finds_exactly_the_holder(tokens: dict[str, str], probe: str) -> None:
    table = TokenTable.from_mapping({name: {"token": tok, "role": "annotator"} for name, tok in tokens.items()})
    holders = sorted(name for name, tok in tokens.items() if tok == probe)
    found = table.identify(probe)
    if holders:
        assert found is not None and found[0] in holders
    else:
        assert found is None


def test_identify_compares_every_entry_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    table = TokenTable.from_mapping({f"n{i}": {"token": f"t{i}", "role": "viewer"} for i in range(5)})
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert table.identify("t0") == ("n0", Role.VIEWER)  # a match on the first entry ...
    assert len(compared) == 5  # ... still compares against all five
    compared.clear()
    table.identify("nobody")
    assert len(compared) == 5


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({}, "lists no tokens"),
        ([], "must map names"),
        ({"x": "tok"}, "expected"),
        ({"x": {"token": "t", "role": "root"}}, "role must be one of"),
        ({"x": {"token_sha256": "abc", "role": "viewer"}}, "64 hex digits"),
        ({"x": {"role": "viewer"}}, "set token_sha256"),
    ],
)
def test_bad_tokens_files_say_what_to_change(spec: object, words: str) -> None:
    with pytest.raises(AuthError, match=words):
        TokenTable.from_mapping(spec)


def test_load_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"ci": {"token_sha256": _sha("s3"), "role": "admin"}}))
    (tmp_path / "t.yaml").write_text(f"ci:\n  token_sha256: {_sha('s3')}\n  role: annotator\n")
    assert TokenTable.load(tmp_path / "t.json").identify("s3") == ("ci", Role.ADMIN)
    assert TokenTable.load(tmp_path / "t.yaml").identify("s3") == ("ci", Role.ANNOTATOR)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(AuthError, match="not valid JSON"):
        TokenTable.load(tmp_path / "bad.json")
    with pytest.raises(AuthError, match="cannot be read"):
        TokenTable.load(tmp_path / "missing.json")


def test_error_messages_never_show_a_token() -> None:
    with pytest.raises(AuthError) as info:
        TokenTable.from_mapping({"x": {"token": "supersecret", "role": "nobody"}})
    assert "supersecret" not in str(info.value)
