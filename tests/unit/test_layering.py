"""The rules of the house that code review misses: import boundaries and generated code freshness."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(imports: str) -> set[str]:
    code = f"import sys\n{imports}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return {m.split(".")[0] for m in out.stdout.split()}


def test_service_never_imports_torch() -> None:
    loaded = _modules_after("import ceal.service.server, ceal.service.cli, ceal.service.pool.scoring")
    assert "torch" not in loaded and "ceal" in loaded


def test_client_sdk_and_cli_import_neither_torch_nor_onnxruntime() -> None:
    loaded = _modules_after("import ceal.client, ceal.client.cli, ceal.cli.main\nceal.cli.main.build_parser()")
    assert not {"torch", "onnxruntime", "onnx"} & loaded


def test_service_sources_do_not_mention_torch_or_trainer() -> None:
    for path in (ROOT / "service").rglob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "ceal.trainer" not in text, path


def test_the_preprocessing_contract_stands_alone() -> None:
    """ceal.imaging is shared by clients/, service/ and trainer/: it may import numpy (and pydicom for DICOM),
    nothing else of ceal's, and no PIL, torch or onnxruntime."""
    loaded = _modules_after("import ceal.imaging, ceal.imaging.dicom")
    assert not {"torch", "onnxruntime", "onnx", "PIL", "grpc"} & loaded
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, ceal.imaging.dicom; print(' '.join(m for m in sys.modules if m.startswith('ceal.')))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert set(out.stdout.split()) <= {"ceal.imaging", "ceal.imaging.contract", "ceal.imaging.dicom"}
    for path in (ROOT / "service" / "ceal" / "imaging").rglob("*.py"):
        imports = re.findall(r"^\s*(?:from|import)\s+(ceal\.\w+)", path.read_text(), flags=re.MULTILINE)
        assert set(imports) <= {"ceal.imaging"}, path


def test_clients_do_not_import_the_service() -> None:
    for path in (ROOT / "clients").rglob("*.py"):
        text = path.read_text()
        assert "ceal.service" not in text and "import onnxruntime" not in text, path


def test_generated_protobuf_code_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_proto.py", "--check"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr


def test_trainer_imports_neither_the_pool_nor_the_store() -> None:
    """Rule 3: the trainer may use the service's engine, uncertainty and selection code, not pool/ or store/
    (the simulation builds its score table with `selection.scores`, its plan with `selection.policy`)."""
    forbidden = ("ceal.service.pool", "ceal.service.store")
    for path in (ROOT / "trainer").rglob("*.py"):
        text = path.read_text()
        assert not any(name in text for name in forbidden), path
    code = (
        "import importlib, pkgutil, sys, ceal.trainer\n"
        "for m in pkgutil.walk_packages(ceal.trainer.__path__, 'ceal.trainer.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('ceal.trainer.simulate.scoring' in sys.modules)\n"
        f"print(*sorted(n for n in sys.modules if n.startswith({forbidden!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["True"]  # every trainer module imported, and nothing of pool/ or store/


def test_only_the_sdk_speaks_protobuf() -> None:
    """The SDK returns and takes its own types (results.py, requests.PoolImage): the PACS bridge, the console
    and the CLI plugins outside `ceal.client` build on them and never import the generated messages."""
    sdk = ROOT / "clients" / "ceal" / "client"
    for path in (ROOT / "clients").rglob("*.py"):
        if sdk not in path.parents:
            assert "ceal.v1" not in path.read_text(), path
