"""Selection strategies: pure functions from a `ScoreTable` to a ranked `Selection`. numpy and scipy only."""

from .ceal import ceal_selection, ceal_threshold
from .cost import AnnotationCostModel, knapsack
from .cost_sensitive import cost_sensitive_selection
from .ensemble import ensemble_selection, version_disagreement
from .foreground_random import random_foreground_selection
from .power_bald import power_bald_selection
from .registry import STRATEGIES, Strategy, get_strategy
from .series import SERIES_MEASURES, SeriesSelection, aggregate_series, rank_series, series_measure
from .suggestive import greedy_representative, representativeness, suggestive_selection, unit_rows
from .table import MEASURES, ScoreTable, Selection
from .typiclust import typicality, typiclust_selection
from .uncertainty_sampling import bald_selection, entropy_selection, random_selection, variance_selection

__all__ = [
    "MEASURES",
    "SERIES_MEASURES",
    "STRATEGIES",
    "AnnotationCostModel",
    "ScoreTable",
    "Selection",
    "SeriesSelection",
    "Strategy",
    "aggregate_series",
    "bald_selection",
    "ceal_selection",
    "ceal_threshold",
    "cost_sensitive_selection",
    "ensemble_selection",
    "entropy_selection",
    "get_strategy",
    "greedy_representative",
    "knapsack",
    "power_bald_selection",
    "random_foreground_selection",
    "random_selection",
    "rank_series",
    "representativeness",
    "series_measure",
    "suggestive_selection",
    "typicality",
    "typiclust_selection",
    "unit_rows",
    "variance_selection",
    "version_disagreement",
]
