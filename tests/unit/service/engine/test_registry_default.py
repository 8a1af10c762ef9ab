"""With more than one model served, the default is explicit: --default-model, or the request names one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ceal.service.errors import InvalidInput
from ceal.service.metadata import METADATA_FILE
from ceal.service.registry import ModelRegistry
from tests.unit.service.engine.conftest import NAME, TinyModel, copy_version, load


def _two_models(tiny_model: TinyModel, models: Path) -> None:
    copy_version(tiny_model.directory, models, 1)
    other = copy_version(tiny_model.directory, models, 1, name="aaa-first-by-name")
    meta = json.loads((other / METADATA_FILE).read_text())
    meta["name"] = "aaa-first-by-name"
    (other / METADATA_FILE).write_text(json.dumps(meta))


def test_two_models_and_no_default_refuses_to_guess(tiny_model: TinyModel, tmp_path: Path) -> None:
    _two_models(tiny_model, tmp_path)
    registry = ModelRegistry(tmp_path, loader=load)
    registry.scan()
    with pytest.raises(InvalidInput, match=r"serves 2 models \(aaa-first-by-name, lesion\).*--default-model"):
        registry.get()
    assert registry.get(NAME).meta.name == NAME  # naming one still works


def test_an_explicit_default_is_used(tiny_model: TinyModel, tmp_path: Path) -> None:
    _two_models(tiny_model, tmp_path)
    registry = ModelRegistry(tmp_path, loader=load, default_model=NAME)
    registry.scan()
    assert registry.get().meta.name == NAME


def test_one_model_is_the_default(tiny_model: TinyModel, tmp_path: Path) -> None:
    copy_version(tiny_model.directory, tmp_path, 1)
    registry = ModelRegistry(tmp_path, loader=load)
    registry.scan()
    assert registry.get().meta.name == NAME
