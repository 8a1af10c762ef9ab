"""Strategies by name. Every strategy is `fn(table, k, *, exclude=..., cost_model=..., **its own params)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ceal.service.errors import InvalidInput

from .ceal import ceal_selection
from .cost_sensitive import cost_sensitive_selection
from .ensemble import ensemble_selection
from .foreground_random import random_foreground_selection
from .power_bald import power_bald_selection
from .suggestive import suggestive_selection
from .table import Selection
from .typiclust import typiclust_selection
from .uncertainty_sampling import bald_selection, entropy_selection, random_selection, variance_selection

__all__ = ["SEEDED_STRATEGIES", "STRATEGIES", "Strategy", "get_strategy"]

Strategy = Callable[..., Selection]

STRATEGIES: Final[dict[str, Strategy]] = {
    "random": random_selection,
    "entropy": entropy_selection,
    "bald": bald_selection,
    "variance": variance_selection,
    "ceal": ceal_selection,
    "suggestive": suggestive_selection,
    "cost_sensitive": cost_sensitive_selection,
    "power_bald": power_bald_selection,
    "random_foreground": random_foreground_selection,
    "ensemble": ensemble_selection,
    "typiclust": typiclust_selection,
}
# Strategies that draw at random and take a `seed` keyword (the request's seed in the service).
SEEDED_STRATEGIES: Final = frozenset({"random", "power_bald", "random_foreground", "typiclust"})


def get_strategy(name: str) -> Strategy:
    """The strategy registered as `name` (case and surrounding spaces ignored)."""
    strategy = STRATEGIES.get(name.strip().lower())
    if strategy is None:
        raise InvalidInput(f"unknown selection strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    return strategy
