"""Active-learning simulation (`ceal simulate`): the served engine, scores and strategies against an oracle."""

from .config import CEILING, SimConfig, SimulationError, parse_strategies
from .data import SimData, load_sim_data, make_sim_data
from .report import Summary, summarize, summary_markdown
from .results import ResultRow, read_results, write_results
from .rounds import run_arm, run_simulation

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
