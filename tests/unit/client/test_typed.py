"""The SDK says it is typed (PEP 561), and the package data ships the marker."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_py_typed_marker_is_in_the_package_and_its_package_data() -> None:
    assert (resources.files("ceal.client") / "py.typed").is_file()
    setup = ast.parse((ROOT / "setup.py").read_text())
    (data,) = [
        node.value
        for node in ast.walk(setup)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "PACKAGE_DATA" for t in node.targets)
    ]
    assert ast.literal_eval(data)["ceal.client"] == ["py.typed"]
