"""Each package's public names are exactly the ones we mean to support, pinned in one data file.

`public_api.json` maps a module to its `__all__`; a change to a package's public surface is a change to that
file, reviewed as such. One test reads it for every package, so no test keeps its own copy of a name list.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

PINNED: dict[str, list[str]] = json.loads((Path(__file__).with_name("public_api.json")).read_text())


@pytest.mark.parametrize("module", sorted(PINNED))
def test_public_names_are_the_pinned_ones(module: str) -> None:
    package = importlib.import_module(module)
    names = list(package.__all__)
    assert len(names) == len(set(names)), f"{module}.__all__ repeats a name"
    added, removed = sorted(set(names) - set(PINNED[module])), sorted(set(PINNED[module]) - set(names))
    assert not added and not removed, (
        f"{module}.__all__ changed: added {added}, removed {removed}; "
        "if that is meant, update tests/unit/public_api.json"
    )
    missing = [name for name in names if getattr(package, name, None) is None]
    assert not missing, f"{module}.__all__ names what it does not define: {missing}"
