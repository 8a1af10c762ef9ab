"""What a simulation run is: the strategies and seeds to compare and the recipe they share.

The recipe (every field except `strategies` and `seeds`) fixes what one (strategy, seed) arm computes, so a
run folder can be resumed, or extended with more strategies or seeds, only with the same recipe.

A strategy name with the suffix `+syn` (`bald+syn`) runs that strategy and adds synthetic training pairs
every round (`synthesis.py`); with `+semi` (`random+semi`) it also trains on the unlabelled pool
(`ceal.trainer.semi`, mode `semi_mode`). `registry_name` strips the suffixes, `uses_synthesis` and
`uses_semi` tell which are there.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Final

from ceal.service.selection import STRATEGIES
from ceal.service.selection.policy import PSEUDO_DECAY, PSEUDO_QUANTILE
from ceal.trainer.placements import PLACEMENTS, DropoutPlacement

__all__ = [
    "CEILING",
    "CEILING_SUFFIX",
    "DEFAULT_STRATEGIES",
    "SEMI_SUFFIX",
    "STRATEGY_ALIASES",
    "SYNTHESIS_SUFFIX",
    "SimConfig",
    "SimulationError",
    "parse_strategies",
    "registry_name",
    "uses_ceiling_descriptors",
    "uses_semi",
    "uses_synthesis",
]

# The full-data ceiling is recorded in results.csv as one more arm under this name.
CEILING: Final = "full_data"
DEFAULT_STRATEGIES: Final = ("random", "entropy", "bald", "power_bald", "ceal", "suggestive", "cost_sensitive")
# One name per strategy everywhere (the service's registry name); older command lines' names map to it, and
# only the registry's name is ever written to results.
STRATEGY_ALIASES: Final[dict[str, str]] = {"cost": "cost_sensitive"}
# `<strategy>+syn`: the same strategy, with synthetic pairs around its queried images in every round's training.
SYNTHESIS_SUFFIX: Final = "+syn"
# `<strategy>+semi`: the same strategy, trained on the unlabelled pool too (confidence-masked pseudo-labels).
SEMI_SUFFIX: Final = "+semi"
# `<strategy>+ceiling`: a diagnostic, not a strategy. The arm's strategy reads its descriptors from the seed's
# final full-data model (an encoder trained on every pool label) instead of the current one: an upper bound on
# what a better embedding could give a descriptor-reading strategy (typiclust, suggestive).
CEILING_SUFFIX: Final = "+ceiling"
_SUFFIXES: Final = (SEMI_SUFFIX, SYNTHESIS_SUFFIX, CEILING_SUFFIX)
FAMILIES: Final = ("lesion", "nuclei")  # `ceal.trainer.data.families.FAMILIES`, without importing it here
# Recipe fields added after runs were saved without them; such a run ran with the default (they only act on
# `+syn` arms, which did not exist then), so a missing one compares as its default and the run still resumes.
_DEFAULT_WHEN_MISSING: Final = (
    "dropout_placement",
    "synth_per_image",
    "synth_steps",
    "synth_share",
    "augmentation",
    "semi_mode",
    "semi_threshold",
    "semi_weight",
    "ensemble_k",
    "family",
    "family_n",
    "family_seed",
)


class SimulationError(ValueError):
    """A simulation that cannot run as asked; the message says what to change."""


def _split(name: str) -> tuple[str, str]:
    """'bald+semi+syn' → ('bald', '+semi+syn'): the strategy and its suffixes."""
    base = name
    while any(base.endswith(suffix) for suffix in _SUFFIXES):
        base = next(base.removesuffix(s) for s in _SUFFIXES if base.endswith(s))
    return base, name[len(base) :]


def uses_synthesis(strategy: str) -> bool:
    """Whether an arm adds synthetic pairs to its training ('bald+syn')."""
    return SYNTHESIS_SUFFIX in _split(strategy)[1]


def uses_semi(strategy: str) -> bool:
    """Whether an arm trains on the unlabelled pool too ('random+semi')."""
    return SEMI_SUFFIX in _split(strategy)[1]


def uses_ceiling_descriptors(strategy: str) -> bool:
    """Whether an arm's strategy reads the full-data model's descriptors ('typiclust+ceiling')."""
    return CEILING_SUFFIX in _split(strategy)[1]


def registry_name(strategy: str) -> str:
    """The service registry's name for a strategy name ('cost' → 'cost_sensitive', 'bald+syn' → 'bald')."""
    base = _split(strategy)[0]
    return STRATEGY_ALIASES.get(base, base)


def _canonical(name: str) -> str:
    base, suffixes = _split(name)
    return STRATEGY_ALIASES.get(base, base) + suffixes


def parse_strategies(text: str) -> tuple[str, ...]:
    """'random, ceal,cost, bald+syn' → ('random', 'ceal', 'cost_sensitive', 'bald+syn'): the registry's names,
    checked against it (any of them may carry the suffix '+syn')."""
    names = tuple(dict.fromkeys(_canonical(part.strip().lower()) for part in text.split(",") if part.strip()))
    valid = sorted(STRATEGIES)
    unknown = [name for name in names if registry_name(name) not in STRATEGIES]
    if unknown or not names:
        raise SimulationError(
            f"unknown strategies {unknown or [text]}; pass a comma-separated list of {', '.join(valid)}, each "
            f"optionally with the suffix {SYNTHESIS_SUFFIX} (synthetic training pairs), {SEMI_SUFFIX} "
            f"(semi-supervised training on the unlabelled pool) and/or {CEILING_SUFFIX} (descriptors from the "
            "full-data model: a diagnostic)"
        )
    return names


@dataclass(frozen=True)
class SimConfig:
    """A simulation run. Counts are images; `rounds` selections follow the initial round 0.

    Each round trains for `steps` optimizer steps with a one-cycle learning rate peaking at `learning_rate`
    (the same compute whatever the number of labels, and converged at the end of the round), from the previous
    round's weights (`warm_start`, as `ceal loop` fine-tunes) or from a fresh initialisation; it then exports the
    model to ONNX and scores the unlabelled pool with `samples` Monte-Carlo passes. A `+syn` arm also trains a
    mask → image generator for `synth_steps` steps on its human labels each round and adds `synth_per_image`
    synthetic pairs per image it has queried to that round's training. A `+semi` arm adds the unlabelled
    pool's confident pseudo-labels (`semi_mode`, `semi_threshold`, `semi_weight`; `ceal.trainer.semi`) to
    every selection round's training. `augmentation` is the trainer's preset for every arm; `ensemble_k` the
    model versions whose masks the ensemble measure compares. `family` (with `family_n` images drawn with
    `family_seed`) generates a synthetic family in memory instead of reading folders. `workers` (how many arms run
    at once, each in its own process) is not part of the recipe: it changes the wall time, not the rows.
    """

    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    seeds: int = 3
    initial: int = 20
    per_round: int = 20
    rounds: int = 6
    steps: int = 500
    height: int = 48
    width: int = 64
    samples: int = 8
    test_fraction: float = 0.25
    batch_size: int = 8
    learning_rate: float = 3e-3  # the one-cycle peak of every round
    warm_start: bool = True
    base_filters: int = 8
    depth: int = 3
    max_pseudo: int | None = None  # CEAL pseudo-labels per round; None: all that pass the entropy threshold
    # CEAL's threshold as the query servicer sets it: δ_0 at this quantile of the free pool's entropy, lowered
    # by pseudo_decay · δ_0 each round (the service's values are the defaults).
    pseudo_quantile: float = PSEUDO_QUANTILE
    pseudo_decay: float = PSEUDO_DECAY
    # Suggestive annotation's shortlist of the most uncertain images: None = the service's default (4·k),
    # 0 = the whole free pool (pure representativeness).
    suggestive_candidates: int | None = None
    split_seed: int = 0  # the held-out test split; the same for every seed so all arms meet the same test set
    synth_per_image: int = 2  # `+syn` arms: synthetic pairs per queried image, rebuilt every round
    synth_steps: int = 300  # `+syn` arms: generator training steps per round (a fresh generator each round)
    # `+syn` arms: the synthetic pairs' share of each training batch, on average (drawn with weights); None: every
    # pair, real or synthetic, is drawn alike (their share then grows with their number).
    synth_share: float | None = None
    augmentation: str = "flips"  # the trainer's preset (`ceal.trainer.augment`); "flips" as before it existed
    semi_mode: str = "fixmatch"  # `+semi` arms: "fixmatch" (pixel-wise) or "ceal" (whole confident images)
    semi_threshold: float = 0.95
    semi_weight: float = 1.0
    dropout_placement: DropoutPlacement = "bottleneck"  # where the U-Net's MC dropout sits
    ensemble_k: int = 3  # model versions (this round's and earlier ones) compared by the ensemble measure
    family: str = ""  # "" : images from folders; "lesion" or "nuclei": that synthetic family, in memory
    family_n: int = 400
    family_seed: int = 0
    workers: int = 1  # arms run at once (processes); not part of the recipe

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategies", parse_strategies(",".join(self.strategies)))
        if CEILING in self.strategies:
            raise SimulationError(f"{CEILING!r} is the ceiling, run for every seed anyway; leave it out")
        positive = {
            "seeds": self.seeds,
            "initial": self.initial,
            "per_round": self.per_round,
            "steps": self.steps,
            "samples": self.samples,
            "batch_size": self.batch_size,
            "base_filters": self.base_filters,
            "depth": self.depth,
            "workers": self.workers,
            "synth_steps": self.synth_steps,
        }
        bad = {name: value for name, value in positive.items() if value < 1}
        if bad or self.rounds < 0:
            raise SimulationError(f"need counts >= 1 and rounds >= 0; got {bad or vars(self)}")
        if self.batch_size < 2:
            raise SimulationError("batch_size must be >= 2: BatchNorm needs two images per batch")
        multiple = 2**self.depth
        if self.height % multiple or self.width % multiple:
            raise SimulationError(
                f"height and width must be multiples of 2**depth = {multiple}; got {self.height}×{self.width}"
            )
        if not 0.0 < self.test_fraction < 1.0:
            raise SimulationError(f"test_fraction must be in (0, 1); got {self.test_fraction}")
        if not (0.0 <= self.pseudo_quantile <= 1.0 and self.pseudo_decay >= 0.0):
            raise SimulationError(
                f"pseudo_quantile must be in [0, 1] and pseudo_decay >= 0; got {self.pseudo_quantile}, "
                f"{self.pseudo_decay}"
            )
        if not self.learning_rate > 0:
            raise SimulationError(f"learning_rate must be > 0; got {self.learning_rate}")
        if self.suggestive_candidates is not None and self.suggestive_candidates < 0:
            raise SimulationError(f"suggestive_candidates must be >= 0 or None; got {self.suggestive_candidates}")
        if self.max_pseudo is not None and self.max_pseudo < 0:
            raise SimulationError(f"max_pseudo must be >= 0 or None (no cap); got {self.max_pseudo}")
        if self.synth_per_image < 0:
            raise SimulationError(f"synth_per_image must be >= 0; got {self.synth_per_image}")
        if self.dropout_placement not in PLACEMENTS:
            raise SimulationError(
                f"dropout_placement must be one of {', '.join(PLACEMENTS)}; got {self.dropout_placement!r}"
            )
        if self.ensemble_k < 2:
            raise SimulationError(f"ensemble_k must be >= 2 (versions to compare); got {self.ensemble_k}")
        if self.family and self.family not in FAMILIES:
            raise SimulationError(
                f"family must be one of {', '.join(FAMILIES)} (or empty: folders); got {self.family!r}"
            )
        try:
            from ceal.trainer.augment import augment_params
            from ceal.trainer.semi import SemiConfig

            augment_params(self.augmentation)
            SemiConfig(self.semi_mode, self.semi_threshold, self.semi_weight)
        except ValueError as exc:
            raise SimulationError(str(exc)) from exc
        if self.synth_share is not None and not 0.0 < self.synth_share < 1.0:
            raise SimulationError(f"synth_share must be in (0, 1) or None (no cap); got {self.synth_share}")

    def recipe(self) -> dict[str, Any]:
        """Every field that changes what an arm computes (all but `strategies`, `seeds` and `workers`)."""
        fields = dataclasses.asdict(self)
        del fields["strategies"], fields["seeds"], fields["workers"]
        return fields

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "strategies": list(self.strategies)}, indent=2)

    def recipe_differences(self, saved: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """{field: (saved, now)} for recipe fields that differ from a saved config.json's (a field added since
        the run was saved counts as its default there, see _DEFAULT_WHEN_MISSING)."""
        defaults = SimConfig().recipe()
        saved = {**{k: defaults[k] for k in _DEFAULT_WHEN_MISSING if k not in saved}, **saved}
        now = self.recipe()
        return {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
