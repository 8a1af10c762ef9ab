"""A new user's first hour, over a real server: the README's "From a folder to a worklist" walked with the CLI
alone, series leases through the API, masks checked on the way in, and client commands that reach a secured
server (tokens, TLS)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from ceal.cli.main import main
from ceal.client import Client, InvalidArgument, pool_image
from ceal.service.middleware.tls import TLSConfig
from tests.integration.hardening.certs import Certs, make_certs
from tests.support.models import synth_dataset
from tests.support.server import in_process

README = Path(__file__).resolve().parents[2] / "README.md"
N_IMAGES = 16


def readme_commands(section: str) -> list[list[str]]:
    """The `ceal ...` lines of the first bash block under the README heading `section`, split like a shell."""
    text = README.read_text()
    start = text.index(f"## {section}")
    block = text[start:].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("ceal ")]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _table(out: str) -> list[dict[str, str]]:
    lines = [line.split("\t") for line in out.strip().splitlines()]
    return [dict(zip(lines[0], row, strict=True)) for row in lines[1:]]


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """scans/case_NN.png (16 RGB images), masks/ for the odd-numbered half (0/255 PNGs), drawn/case_10.png."""
    data = synth_dataset(N_IMAGES, seed=5)
    for sub in ("scans", "masks", "drawn"):
        (tmp_path / sub).mkdir()
    for i in range(N_IMAGES):
        name = f"case_{i + 1:02d}.png"
        PILImage.fromarray(data.images[i]).save(tmp_path / "scans" / name)
        if i % 2 == 0:  # half of the masks, saved the usual 8-bit way
            PILImage.fromarray(data.masks[i] * np.uint8(255)).save(tmp_path / "masks" / name)
    PILImage.fromarray(data.masks[9] * np.uint8(255)).save(tmp_path / "drawn" / "case_10.png")
    return tmp_path


def test_readme_from_a_folder_to_a_worklist(
    address: str, folders: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = readme_commands("From a folder to a worklist")
    assert [c[:3] for c in commands] == [
        ["ceal", "pool", "register"],
        ["ceal", "pool", "import"],
        ["ceal", "pool", "score"],
        ["ceal", "pool", "query"],
        ["ceal", "pool", "query"],
        ["ceal", "pool", "label"],
        ["ceal", "pool", "export"],
        ["ceal", "pool", "stats"],
    ]
    monkeypatch.chdir(folders)
    monkeypatch.setenv("CEAL_SERVER", address)  # the README's `export CEAL_SERVER=...`
    outputs = []
    for argv in commands:
        code, out, err = run(argv[1:], capsys)
        assert code == 0, (argv, out, err)
        outputs.append(out)
    registered, imported, _, query_a, query_b, labelled, exported, stats = outputs
    assert f"registered {N_IMAGES} images" in registered and f"({N_IMAGES} new" in registered
    assert "imported 8 masks" in imported and "8 images have no mask" in imported

    rows_a, rows_b = _table(query_a), _table(query_b)
    names_a, names_b = {r["name"] for r in rows_a}, {r["name"] for r in rows_b}
    assert len(rows_a) == len(rows_b) == 4
    assert not names_a & names_b  # two annotators, disjoint worklists
    unlabelled = {f"case_{i + 1:02d}.png" for i in range(1, N_IMAGES, 2)}
    assert names_a | names_b <= unlabelled  # the imported masks took their images out of the lists
    assert all(re.fullmatch(r"[0-9a-f]+", r["image_id"]) for r in rows_a + rows_b)
    assert all(float(r["score"]) > 0 for r in rows_a)
    assert "version 1" in labelled

    exported_files = sorted(p.name for p in (folders / "labels").glob("*.png"))
    expected = sorted({f"case_{i + 1:02d}.png" for i in range(0, N_IMAGES, 2)} | {"case_10.png"})
    assert exported_files == expected  # by file name, the imported ones and the one labelled by hand
    for name in expected:
        written = np.asarray(PILImage.open(folders / "labels" / name))
        source = folders / ("drawn" if name == "case_10.png" else "masks") / name
        assert np.array_equal(written, np.asarray(PILImage.open(source)))  # 0/255 in, 0/1 stored, 0/255 out
    assert "exported 9 labels" in exported
    assert f"{N_IMAGES} images" in stats and "human labels 9" in stats and "leased 3" not in stats


def test_query_explains_an_empty_list(address: str, folders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["pool", "query", "--server", address, "--pool", "empty"], capsys)
    assert code == 0 and "has no images" in err and "ceal pool register" in err
    run(["pool", "register", str(folders / "scans"), "--server", address, "--pool", "q"], capsys)
    code, _, err = run(["pool", "query", "--server", address, "--pool", "q"], capsys)
    assert code == 0 and "ScorePool" in err
    run(["pool", "score", "--server", address, "--pool", "q", "--samples", "4"], capsys)
    budget = ["--strategy", "cost_sensitive", "--budget-seconds", "0.5"]
    code, out, err = run(["pool", "query", "--server", address, "--pool", "q", *budget], capsys)
    assert code == 0 and out.count("\n") == 1  # the header alone
    assert "no free image fits the 0.5 s budget" in err and "raise budget_seconds" in err
    with Client(address) as client:
        ql = client.query_list(pool="q", strategy="bald", k=100, annotator="dr-a")
    assert len(ql.items) == N_IMAGES and f"{N_IMAGES} of 100 items" in ql.note


def test_series_leases_over_the_api(address: str) -> None:
    """The issue's report: 3 series of 6 slices, three radiologists asking one series each, one after another."""
    data = synth_dataset(18, seed=9).images
    with Client(address) as client:
        client.register_images(
            [pool_image(data[s * 6 + z], series_key=f"S{s}", slice_index=z) for s in range(3) for z in range(6)],
            pool="ct",
        )
        client.score_pool(pool="ct", samples=4)
        lists = [client.query_list(pool="ct", strategy="bald", k=1, series=True, annotator=f"rad-{r}") for r in "abc"]
        stats = client.pool_stats(pool="ct")
        rad_d = client.query_list(pool="ct", strategy="bald", k=1, series=True, annotator="rad-d")
    series = [ql.items[0].series_key for ql in lists]
    assert sorted(series) == ["S0", "S1", "S2"]  # three radiologists, three different series
    assert all(len(ql.items[0].slice_image_ids) == 6 for ql in lists)  # each with all six slices
    assert stats.leased == 18
    assert rad_d.items == ()


def test_submit_label_checks_mask_values(address: str) -> None:
    image = synth_dataset(1, seed=3).images[0]
    h, w = image.shape[:2]
    binary = np.zeros((h, w), np.uint8)
    binary[10:20, 10:30] = 1
    with Client(address) as client:
        ((a, _), (b, _), (c, _)) = client.register_images(
            [image, image[::-1].copy(), image[:, ::-1].copy()], pool="masks"
        )
        client.submit_label(a, binary, annotator="dr-a", pool="masks")  # 0/1: as is
        client.submit_label(b, binary * 255, annotator="dr-a", pool="masks")  # 0/255: normalised to 0/1
        out_of_range = binary.copy()
        out_of_range[0, 0] = 7
        with pytest.raises(InvalidArgument, match=r"mask values 0, 1, 7 .*send 0 for background and 1"):
            client.submit_label(c, out_of_range, annotator="dr-a", pool="masks")
        antialiased = binary * 255
        antialiased[9, 10:30] = 128
        with pytest.raises(InvalidArgument, match=r"mask values 0, 128, 255"):
            client.submit_label(c, antialiased, annotator="dr-a", pool="masks")
        stored = {r.image_id: r.mask for r in client.export_labels(pool="masks", include_images=False)}
    assert set(stored) == {a, b}  # nothing stored for the refused masks
    assert np.array_equal(stored[a], binary) and np.array_equal(stored[b], binary)


# ── client commands against a secured server ──────────────────────────────────────────────────────────────
TOKEN = "predict-token-1"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.json"
    path.write_text(
        json.dumps({"reader": {"token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "role": "viewer"}})
    )
    return path


@pytest.fixture(scope="module")
def secured(models_dir: Path, tokens_file: Path, certs: Certs) -> Iterator[str]:
    """A server with --tokens and TLS (--tls-cert/--tls-key) on 127.0.0.1."""
    with in_process(models_dir, tokens=tokens_file, tls=TLSConfig(certs.server_cert, certs.server_key)) as running:
        yield f"127.0.0.1:{running.port}"


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    path = tmp_path / "scan.png"
    PILImage.fromarray(synth_dataset(1, seed=4).images[0]).save(path)
    return path


def test_predict_with_token_and_tls(
    secured: str, certs: Certs, scan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "pred")
    base = ["predict", str(scan), "--server", secured, "--tls-ca", str(certs.ca), "--out", out]
    code, stdout, err = run([*base, "--token", TOKEN], capsys)
    assert code == 0, err
    assert "scan.png\tscore=" in stdout and (tmp_path / "pred" / "scan_mask.png").exists()
    code, _, err = run(base, capsys)  # TLS but no token
    assert code == 1 and "token" in err.lower()
    code, _, err = run([*base, "--token", "wrong"], capsys)
    assert code == 1


def test_token_from_file_and_environment(
    secured: str,
    certs: Certs,
    scan: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    out = ["--out", str(tmp_path / "pred")]
    code, _, err = run(
        ["predict", str(scan), "--server", secured, "--tls-ca", str(certs.ca), "--token-file", str(token_file), *out],
        capsys,
    )
    assert code == 0, err
    monkeypatch.setenv("CEAL_TOKEN", TOKEN)
    monkeypatch.setenv("CEAL_SERVER", secured)
    code, _, err = run(["predict", str(scan), "--tls-ca", str(certs.ca), *out], capsys)
    assert code == 0, err
    code, _, err = run(["predict", str(scan), *out], capsys)  # plaintext to a TLS server fails, and says so
    assert code == 1


def test_tls_without_trust_fails(secured: str, scan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(
        ["predict", str(scan), "--server", secured, "--token", TOKEN, "--tls", "--out", str(tmp_path)], capsys
    )
    assert code == 1  # the system roots do not trust the test CA


@pytest.mark.parametrize("bad", ["127.0.0.1:", "127.0.0.1", "127.0.0.1:99999", "host:port", ":50051"])
def test_malformed_addresses_are_refused(bad: str, scan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["predict", str(scan), "--server", bad], capsys)
    assert code == 2 and "host:port" in err
    code, _, err = run(["pool", "stats", "--server", bad], capsys)
    assert code == 2 and "host:port" in err


def test_predict_against_ceal_serve_with_tokens_and_tls(
    models_dir: Path, tokens_file: Path, certs: Certs, scan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ceal serve --tokens FILE --tls-cert ... --tls-key ...` in its own process, `ceal predict --token ...`."""
    from tests.support.server import ServerProcess

    tls = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    server = ServerProcess(models_dir, tmp_path / "state", tmp_path / "serve.log", "--tokens", str(tokens_file), *tls)
    try:
        base = ["predict", str(scan), "--server", server.address, "--tls-ca", str(certs.ca), "--out", str(tmp_path)]
        code, out, err = run([*base, "--token", TOKEN], capsys)
        assert code == 0, err
        assert "scan.png\tscore=" in out
        code, _, err = run(base, capsys)
        assert code == 1
    finally:
        assert server.terminate() == 0
    assert "without TLS" not in (tmp_path / "serve.log").read_text()  # TLS is on: no warning


def test_tokens_without_tls_beyond_loopback_warn_once(
    models_dir: Path, tokens_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from ceal.service.server import ServerConfig, _interceptors

    with caplog.at_level(logging.WARNING, logger="ceal.service.server"):
        _interceptors(ServerConfig(models=models_dir, address="0.0.0.0:50051", tokens=tokens_file), None)
        _interceptors(ServerConfig(models=models_dir, address="127.0.0.1:50051", tokens=tokens_file), None)
    warnings = [r.getMessage() for r in caplog.records if "without TLS" in r.getMessage()]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0]


def test_register_a_dicom_series_folder_and_lease_it_whole(
    address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.pacs.samples import ct_series

    series = ct_series(4)
    folder = tmp_path / "dicom" / "ct"
    folder.mkdir(parents=True)
    for i, ds in enumerate(series):
        ds.save_as(folder / (f"IM{i}" if i == 0 else f"IM{i}.dcm"), enforce_file_format=True)  # IM0: no suffix
    pool = ["--server", address, "--pool", "dcm"]
    code, out, err = run(["pool", "register", str(tmp_path / "dicom"), *pool], capsys)
    assert code == 0 and "registered 4 images" in out, err
    assert run(["pool", "score", *pool, "--samples", "4"], capsys)[0] == 0
    code, out, err = run(["pool", "query", *pool, "--series", "--annotator", "dr-a", "--json"], capsys)
    assert code == 0, err
    (item,) = [json.loads(line) for line in out.splitlines()]
    assert item["series_key"] == series[0].SeriesInstanceUID and item["study_key"] == series[0].StudyInstanceUID
    assert len(item["slice_image_ids"]) == 4 and item["name"].startswith("ct/IM")
    code, out, _ = run(["pool", "query", *pool, "--series", "--annotator", "dr-b", "--json"], capsys)
    assert code == 0 and out == ""  # the only series is dr-a's, every slice of it
