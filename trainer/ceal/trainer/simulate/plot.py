"""learning_curves.png: test Dice against the share of the pool a human labelled, and against annotation time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import CEILING, registry_name, uses_semi, uses_synthesis
from .report import arms, ceiling_by_round
from .results import ResultRow

__all__ = ["plot_learning_curves"]


def plot_learning_curves(rows: list[ResultRow], path: Path) -> None:
    """Three panels, one line per strategy (seed mean, band ± 1 sd): Dice vs % of the pool labelled by a human
    with the final full-data ceiling and 98 % of it; Dice as a share of the same round's full-data Dice; Dice vs
    annotation minutes. A `+syn` arm is drawn dashed and a `+semi` arm dotted, in its base strategy's colour, so
    the pair reads at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_arm = arms(rows)
    ceiling = ceiling_by_round(rows)  # (R,)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 5))
    colours = plt.get_cmap("tab10")
    names = sorted(k for k in by_arm if k != CEILING)
    bases = sorted({registry_name(name) for name in names})
    for name in names:
        by_seed = by_arm[name]
        colour = colours(bases.index(registry_name(name)) % colours.N)
        style = "--" if uses_synthesis(name) else ":" if uses_semi(name) else "-"
        rounds = min(len(seed_rows) for seed_rows in by_seed.values())
        share = np.array([[100 * r.human_fraction for r in rs[:rounds]] for rs in by_seed.values()]).mean(axis=0)
        minutes = np.array([[r.annotation_seconds / 60 for r in rs[:rounds]] for rs in by_seed.values()]).mean(0)
        dice = np.array([[r.test_dice for r in rs[:rounds]] for rs in by_seed.values()])  # (seeds, R)
        relative = 100 * dice / ceiling[np.minimum(np.arange(rounds), ceiling.size - 1)]
        for ax, x, y in ((left, share, dice), (middle, share, relative), (right, minutes, dice)):
            mean = y.mean(axis=0)
            sd = y.std(axis=0, ddof=1) if len(y) > 1 else np.zeros(rounds)
            ax.plot(x, mean, style, marker="o", markersize=3, color=colour, label=f"{name} ({len(y)} seeds)")
            ax.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.15, linewidth=0)
    final = float(ceiling[-1])
    for ax in (left, right):
        ax.axhline(final, color="black", linewidth=1.2, label=f"full data, last round: {final:.3f}")
        ax.axhline(0.98 * final, color="black", linewidth=0.8, linestyle="--", label="98 % of it")
    middle.axhline(100, color="black", linewidth=1.2, label="full data, same round")
    middle.axhline(98, color="black", linewidth=0.8, linestyle="--", label="98 %")
    left.set_xlabel("% of the pool labelled by a human")
    middle.set_xlabel("% of the pool labelled by a human")
    right.set_xlabel("annotation time spent (minutes, predicted from the true masks)")
    left.set_ylabel("test Dice (served mask: Monte-Carlo mean > 0.5)")
    middle.set_ylabel("% of the full-data Dice after the same training")
    right.set_ylabel("test Dice")
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Active learning on the held-out test set: mean over seeds, band ± 1 sd")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
