"""The run folder: config.json, one resumable state per (strategy, seed) arm, and results.csv.

An arm's state after round r is its weights (`round-<r>.pt`) and `state.json` (labelled rows and result
rows), written weights first and then the JSON by one rename, so a run killed at any moment resumes from
the last finished round. results.csv is rebuilt from the states after every round, also by one rename.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from .config import SimConfig, SimulationError
from .results import ResultRow, write_results

__all__ = ["ArmState", "RunFolder"]

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.csv"
STATE_FILE = "state.json"
Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ArmState:
    """An arm after `round`: `human` are the data rows the oracle labelled, in order; `rows` its results."""

    strategy: str
    seed: int
    round: int
    human: tuple[int, ...]
    rows: tuple[ResultRow, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "strategy": self.strategy,
                "seed": self.seed,
                "round": self.round,
                "human": list(self.human),
                "rows": [dataclasses.asdict(r) for r in self.rows],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ArmState:
        raw = json.loads(text)
        return cls(
            raw["strategy"],
            int(raw["seed"]),
            int(raw["round"]),
            tuple(int(i) for i in raw["human"]),
            tuple(ResultRow(**r) for r in raw["rows"]),
        )


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class RunFolder:
    """RUN_DIR. Opening it writes config.json, or checks that the saved recipe is the same as `cfg`'s (more
    rounds than the saved run are allowed: they extend every arm; fewer are refused)."""

    def __init__(self, root: Path, cfg: SimConfig) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        config = root / CONFIG_FILE
        if config.is_file():
            differences = cfg.recipe_differences(json.loads(config.read_text()))
            saved_rounds = differences.get("rounds", (None, None))[0]
            if isinstance(saved_rounds, int) and cfg.rounds >= saved_rounds:
                del differences["rounds"]  # more rounds extend the run: the rounds done are the same rows
            if differences:
                shown = ", ".join(f"{k}: {old!r} then, {new!r} now" for k, (old, new) in differences.items())
                raise SimulationError(
                    f"{root} holds a run with another recipe ({shown}); pass the same arguments to resume it, "
                    "or a new --out folder"
                )
        _fsync_write(config, cfg.to_json().encode())

    @property
    def results_path(self) -> Path:
        return self.root / RESULTS_FILE

    def arm_dir(self, strategy: str, seed: int) -> Path:
        return self.root / "state" / f"{strategy}-seed{seed}"

    def load(self, strategy: str, seed: int) -> tuple[ArmState, Weights] | None:
        """The arm's last finished round, or None when it has not finished one."""
        folder = self.arm_dir(strategy, seed)
        if not (folder / STATE_FILE).is_file():
            return None
        state = ArmState.from_json((folder / STATE_FILE).read_text())
        weights = torch.load(folder / f"round-{state.round:03d}.pt", map_location="cpu", weights_only=True)
        return state, weights

    def save(self, state: ArmState, weights: Weights) -> None:
        """Persist a finished round: weights, then state.json by rename, then drop older weights."""
        folder = self.arm_dir(state.strategy, state.seed)
        folder.mkdir(parents=True, exist_ok=True)
        keep = f"round-{state.round:03d}.pt"
        tmp = folder / f".{keep}.tmp"
        torch.save(weights, tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(folder / keep)
        _fsync_write(folder / f".{STATE_FILE}.tmp", state.to_json().encode())
        (folder / f".{STATE_FILE}.tmp").replace(folder / STATE_FILE)
        for old in folder.glob("round-*.pt"):
            if old.name != keep:
                old.unlink()

    def save_masks(self, strategy: str, seed: int, round_index: int, masks: npt.NDArray[np.uint8], keep: int) -> None:
        """Keep a round's member masks (`members`) for the ensemble measure; drop those `keep` rounds older."""
        folder = self.arm_dir(strategy, seed)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".masks.tmp.npz"
        np.savez_compressed(tmp, masks=masks)
        tmp.replace(folder / f"masks-{round_index:03d}.npz")
        for old in folder.glob("masks-*.npz"):
            if int(old.stem.removeprefix("masks-")) <= round_index - keep:
                old.unlink()

    def load_masks(self, strategy: str, seed: int, round_index: int, keep: int) -> list[npt.NDArray[np.uint8]]:
        """The member masks of rounds round_index − keep + 1 .. round_index that exist, oldest first."""
        folder = self.arm_dir(strategy, seed)
        paths = [folder / f"masks-{r:03d}.npz" for r in range(max(0, round_index - keep + 1), round_index + 1)]
        out = []
        for path in paths:
            if path.is_file():
                with np.load(path) as saved:
                    out.append(saved["masks"])
        return out

    def save_record(self, strategy: str, seed: int, name: str, record: dict[str, object]) -> None:
        """A JSON record beside the arm's state (a `+semi` round's contributions: `semi-<round>.json`)."""
        folder = self.arm_dir(strategy, seed)
        folder.mkdir(parents=True, exist_ok=True)
        _fsync_write(folder / f".{name}.tmp", json.dumps(record, indent=1).encode())
        (folder / f".{name}.tmp").replace(folder / name)

    def rows(self) -> list[ResultRow]:
        """Every finished row of every arm in the folder."""
        rows: list[ResultRow] = []
        for path in sorted((self.root / "state").glob(f"*/{STATE_FILE}")):
            if not path.parent.name.startswith("_"):  # _round0-seedK: shared, copied into each arm
                rows.extend(ArmState.from_json(path.read_text()).rows)
        return rows

    def write_results(self) -> list[ResultRow]:
        """Rebuild results.csv from the states; returns its rows."""
        rows = self.rows()
        write_results(self.results_path, rows)
        return rows
