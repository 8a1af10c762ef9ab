"""Active-learning simulation (`ceal simulate`): the served engine, scores and strategies against an oracle.

The names are re-exported lazily (PEP 562), so that `ceal --help`, which imports this package's `cli` to
register the subcommand, loads neither torch nor onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import CEILING, SimConfig, SimulationError, parse_strategies
    from .data import SimData, load_sim_data, make_sim_data
    from .report import Summary, summarize, summary_markdown
    from .results import ResultRow, read_results, write_results
    from .rounds import run_arm, run_simulation

_HOME = {
    "CEILING": "config",
    "SimConfig": "config",
    "SimulationError": "config",
    "parse_strategies": "config",
    "SimData": "data",
    "load_sim_data": "data",
    "make_sim_data": "data",
    "Summary": "report",
    "summarize": "report",
    "summary_markdown": "report",
    "ResultRow": "results",
    "read_results": "results",
    "write_results": "results",
    "run_arm": "rounds",
    "run_simulation": "rounds",
}

__all__ = [
    "CEILING",
    "ResultRow",
    "SimConfig",
    "SimData",
    "SimulationError",
    "Summary",
    "load_sim_data",
    "make_sim_data",
    "parse_strategies",
    "read_results",
    "run_arm",
    "run_simulation",
    "summarize",
    "summary_markdown",
    "write_results",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
