"""Synthetic informative samples: mask edits, the mask → image generator, and `+syn` arms in the simulation."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.trainer.data.synth import write_isic
from ceal.trainer.simulate import (
    CEILING,
    ResultRow,
    SimConfig,
    SimData,
    SimulationError,
    load_sim_data,
    parse_strategies,
    read_results,
    run_simulation,
    summarize,
    summary_markdown,
    write_results,
)
from ceal.trainer.simulate import rounds as rounds_mod
from ceal.trainer.simulate.cli import register
from ceal.trainer.simulate.config import registry_name, uses_synthesis
from ceal.trainer.simulate.plot import plot_learning_curves
from ceal.trainer.simulate.rounds import synthetic_weights
from ceal.trainer.simulate.state import RunFolder
from ceal.trainer.simulate.synthesis import edit_mask, generate, synthesize, train_generator
from ceal.trainer.train import Dataset
from tests.support.determinism import deterministic_torch
from tests.unit.trainer.sim_configs import TINY

Masks = npt.NDArray[np.uint8]
Images = npt.NDArray[np.uint8]

SYN = dataclasses.replace(TINY, strategies=("random", "random+syn"), synth_per_image=2, synth_steps=4)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One thread and deterministic kernels: the same generator on any load (and fastest on 2 shared cores)."""
    with deterministic_torch():
        yield


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> Masks:
    yy, xx = np.mgrid[:h, :w]
    mask: Masks = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1).astype(np.uint8)
    return mask


def _discs(n: int, h: int, w: int, seed: int) -> tuple[Images, Masks]:
    """A toy labelled set: a bright disc (the lesion) on dark skin, one per image."""
    rng = np.random.default_rng(seed)
    images, masks = np.full((n, h, w, 3), 40, np.uint8), np.zeros((n, h, w), np.uint8)
    for i in range(n):
        r = rng.uniform(3, min(h, w) / 4)
        masks[i] = _ellipse(h, w, rng.uniform(r, h - r), rng.uniform(r, w - r), r, r)
        images[i][masks[i] == 1] = (220, 180, 160)
    return images, masks


# --- edit_mask -------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(8, 40),
    w=st.integers(8, 40),
    centre=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    radii=st.tuples(st.floats(0.3, 12.0), st.floats(0.3, 12.0)),
    label=st.sampled_from([1, 2, 255]),
    seed=st.integers(0, 2**32 - 1),
)
def test_an_edited_mask_is_a_binary_non_empty_mask_of_the_same_shape(
    h: int, w: int, centre: tuple[float, float], radii: tuple[float, float], label: int, seed: int
) -> None:
    mask = _ellipse(h, w, centre[0] * (h - 1), centre[1] * (w - 1), *radii)
    if not mask.any():
        mask[int(centre[0] * (h - 1)), int(centre[1] * (w - 1))] = 1  # a one-pixel lesion: the hardest to keep
    edited = edit_mask(mask * np.uint8(label), np.random.default_rng(seed))
    assert edited.shape == (h, w) and edited.dtype == np.uint8
    assert set(np.unique(edited).tolist()) <= {0, 1}
    assert edited.any()


def test_most_edits_change_the_mask_and_keep_a_plausible_size() -> None:
    mask = _ellipse(48, 64, 22, 30, 9, 14)
    edits = [edit_mask(mask, np.random.default_rng(seed)) for seed in range(40)]
    assert sum(not np.array_equal(e, mask) for e in edits) >= 38
    ratios = np.array([e.sum() / mask.sum() for e in edits])
    assert ratios.min() > 0.4 and ratios.max() < 2.2  # scale 0.8–1.25 and ±1 px: not a new lesion size class
    assert len({e.tobytes() for e in edits}) >= 38  # different seeds, different masks


def test_an_edit_is_a_function_of_the_generator_state_and_never_wraps_around() -> None:
    mask = _ellipse(32, 32, 16, 29, 6, 6)  # touches the right edge
    a, b = (edit_mask(mask, np.random.default_rng(7)) for _ in range(2))
    assert np.array_equal(a, b)
    for seed in range(20):
        edited = edit_mask(mask, np.random.default_rng(seed))
        assert not edited[:, :3].any()  # shifts never wrap the lesion to the other side


def test_an_empty_mask_stays_empty_and_a_stack_is_refused() -> None:
    assert not edit_mask(np.zeros((8, 8), np.uint8), np.random.default_rng(0)).any()
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        edit_mask(np.zeros((2, 8, 8), np.uint8), np.random.default_rng(0))


# --- the generator ---------------------------------------------------------------------------------------


def test_the_generator_learns_where_the_lesion_is() -> None:
    images, masks = _discs(12, 32, 32, seed=0)
    generator = train_generator(images, masks, steps=80, seed=1)
    _, new_masks = _discs(6, 32, 32, seed=9)  # masks it has not seen
    drawn = generate(generator, new_masks, seed=2).astype(np.float64)  # (N, h, w, 3)
    lesion, skin = drawn[new_masks == 1], drawn[new_masks == 0]  # (pixels, 3)
    assert lesion.mean() > skin.mean() + 100, (lesion.mean(), skin.mean())  # the real contrast is 187 vs 40
    # The colours, not only the contrast (an untrained generator already sees the mask: ~180 vs ~120).
    assert np.abs(skin - 40).mean() < 12 and np.abs(lesion - (220, 180, 160)).mean() < 35


def test_synthesize_makes_per_image_pairs_for_each_source_deterministically() -> None:
    images, masks = _discs(6, 20, 28, seed=1)  # sides not multiples of 8: padded inside the generator
    sources = np.array([1, 4])
    first = synthesize(images, masks, sources, per_image=3, steps=3, seed=5)
    again = synthesize(images, masks, sources, per_image=3, steps=3, seed=5)
    other = synthesize(images, masks, sources, per_image=3, steps=3, seed=6)
    new_images, new_masks = first
    assert new_images.shape == (6, 20, 28, 3) and new_images.dtype == np.uint8
    assert new_masks.shape == (6, 20, 28) and new_masks.dtype == np.uint8
    assert set(np.unique(new_masks).tolist()) <= {0, 1} and all(m.any() for m in new_masks)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])
    # Pairs come source by source: the first three are edits of mask 1, so they overlap it more than mask 4.
    overlap = [[(m & masks[s]).sum() / masks[s].sum() for s in sources] for m in new_masks]
    assert sum(o[0] >= o[1] for o in overlap[:3]) >= 2 and sum(o[1] >= o[0] for o in overlap[3:]) >= 2


def test_synthesize_with_nothing_to_make_and_bad_arguments() -> None:
    images, masks = _discs(3, 16, 16, seed=2)
    empty_images, empty_masks = synthesize(images, masks, [], per_image=2, steps=3, seed=0)
    assert empty_images.shape == (0, 16, 16, 3) and empty_masks.shape == (0, 16, 16)
    assert synthesize(images, masks, [0], per_image=0, steps=3, seed=0)[0].shape == (0, 16, 16, 3)
    with pytest.raises(SimulationError, match="sources"):
        synthesize(images, masks, [3], per_image=1, steps=3, seed=0)
    with pytest.raises(SimulationError, match="steps"):
        synthesize(images, masks, [0], per_image=1, steps=0, seed=0)


# --- configuration and results ---------------------------------------------------------------------------


def test_the_syn_suffix_names_the_same_strategy_with_synthesis(tmp_path: Path) -> None:
    assert parse_strategies("bald+syn, random, cost+syn") == ("bald+syn", "random", "cost_sensitive+syn")
    assert registry_name("cost+syn") == "cost_sensitive" and registry_name("bald") == "bald"
    assert uses_synthesis("bald+syn") and not uses_synthesis("bald")
    with pytest.raises(SimulationError, match=r"\+syn"):
        parse_strategies("oracle+syn")
    with pytest.raises(SimulationError, match="synth_steps"):
        SimConfig(synth_steps=0)
    # A run saved before the synthesis fields existed still resumes (they only act on +syn arms) ...
    saved = json.loads(SimConfig().to_json())
    del saved["synth_per_image"], saved["synth_steps"], saved["synth_share"]
    assert SimConfig().recipe_differences(saved) == {}
    # ... unless it is resumed with other values for them.
    assert SimConfig(synth_steps=50).recipe_differences(saved) == {"synth_steps": (300, 50)}
    assert SimConfig(synth_share=0.2).recipe_differences(saved) == {"synth_share": (None, 0.2)}
    for share in (0.0, 1.0, -0.1):
        with pytest.raises(SimulationError, match="synth_share"):
            SimConfig(synth_share=share)


def test_synthetic_weights_hold_the_synthetic_share_of_the_draws() -> None:
    weights = synthetic_weights(50, 40, 0.2)  # 10 real, 40 synthetic
    assert weights is not None and weights.shape == (50,)
    assert weights[:10].sum() == pytest.approx(0.8) and weights[10:].sum() == pytest.approx(0.2)
    assert np.ptp(weights[:10]) == 0 and np.ptp(weights[10:]) == 0
    assert synthetic_weights(50, 40, None) is None and synthetic_weights(50, 0, 0.2) is None
    assert synthetic_weights(40, 40, 0.2) is None  # nothing real to weigh against
    with pytest.raises(ValueError, match="41 synthetic pairs in a training set of 40"):
        synthetic_weights(40, 41, 0.2)


def test_a_synthetic_share_weights_the_round_s_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[np.ndarray | None] = []
    monkeypatch.setattr(
        rounds_mod, "fit_steps", lambda model, train, schedule, weights=None, unlabelled=None: seen.append(weights)
    )
    pairs = Dataset([f"i{i}" for i in range(6)], np.zeros((6, 8, 8, 3), np.uint8), np.zeros((6, 8, 8), np.uint8))
    model = torch.nn.Identity()
    rounds_mod._train(model, pairs, dataclasses.replace(SYN, synth_share=0.25), 0, 1, 4)  # type: ignore[arg-type]
    rounds_mod._train(model, pairs, SYN, 0, 1, 4)  # type: ignore[arg-type]
    capped, uniform = seen
    assert capped is not None and capped[:2].sum() == pytest.approx(0.75) and capped[2:].sum() == pytest.approx(0.25)
    assert uniform is None


def test_the_cli_passes_the_synthesis_options() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    common = ["simulate", "--images", "i", "--masks", "m", "--out", "o"]
    args = parser.parse_args(
        [
            *common,
            *("--strategies", "random,random+syn", "--synth-per-image", "3", "--synth-steps", "7"),
            *("--synth-share", "0.25"),
        ]
    )
    assert args.strategies == ("random", "random+syn") and args.synth_per_image == 3 and args.synth_steps == 7
    assert args.synth_share == 0.25
    defaults = parser.parse_args(common)
    assert (defaults.synth_per_image, defaults.synth_steps) == (SimConfig().synth_per_image, SimConfig().synth_steps)
    assert defaults.synth_share is None


def test_results_without_the_synthetic_column_still_read(tmp_path: Path) -> None:
    row = ResultRow("bald+syn", 0, 1, 40, 0, 600.0, 0.5, 300, 40)
    write_results(tmp_path / "results.csv", [row])
    assert read_results(tmp_path / "results.csv") == [row]
    header = "strategy,seed,round,human_labels,pseudo_labels,annotation_seconds,test_dice,pool_size"
    old = f"{header}\nbald,0,1,40,0,600,0.5,300\n"
    (tmp_path / "old.csv").write_text(old)
    assert read_results(tmp_path / "old.csv") == [ResultRow("bald", 0, 1, 40, 0, 600.0, 0.5, 300, 0)]


# --- a tiny simulation with a +syn arm -------------------------------------------------------------------


@dataclasses.dataclass
class SynRun:
    data: SimData
    rows: list[ResultRow]
    out: Path
    trained: dict[tuple[str, int], Dataset]  # (arm, round) → its training set, for the strategy arms
    synthetic: dict[tuple[str, int], int]  # (arm, round) → how many of those pairs _train was told are synthetic


@pytest.fixture(scope="module")
def syn_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynRun]:
    root = tmp_path_factory.mktemp("lesions")
    write_isic(root, 30, seed=3, height=40, width=40, progress=False)
    data = load_sim_data(root / "images", root / "masks", SYN, progress=False)
    out = tmp_path_factory.mktemp("run")
    trained: dict[tuple[str, int], Dataset] = {}
    synthetic: dict[tuple[str, int], int] = {}
    real = rounds_mod.run_arm

    def recording_arm(run, data_, cfg, strategy, seed, *, on_round=None):  # type: ignore[no-untyped-def]
        def train(model, dataset, cfg_, seed_, round_index, made=0, unlabelled=None):  # type: ignore[no-untyped-def]
            trained[strategy, round_index], synthetic[strategy, round_index] = dataset, made
            return real_train(model, dataset, cfg_, seed_, round_index, made, unlabelled)

        with pytest.MonkeyPatch.context() as inner:
            inner.setattr(rounds_mod, "_train", train)
            return real(run, data_, cfg, strategy, seed, on_round=on_round)

    real_train = rounds_mod._train
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rounds_mod, "run_arm", recording_arm)
        rows = run_simulation(out, data, SYN, progress=False)
    yield SynRun(data, rows, out, trained, synthetic)


def test_a_syn_arm_trains_on_its_synthetic_pairs_and_records_them(syn_run: SynRun) -> None:
    by_key = {(r.strategy, r.round): r for r in syn_run.rows}
    assert set(by_key) == {(s, r) for s in ("random", "random+syn", CEILING) for r in range(3)}
    for r in range(3):
        queried = SYN.per_round * r  # the initial set gets no synthetic pairs
        assert by_key["random+syn", r].synthetic_labels == SYN.synth_per_image * queried
        assert by_key["random", r].synthetic_labels == 0 and by_key[CEILING, r].synthetic_labels == 0
        assert by_key["random+syn", r].human_labels == by_key["random", r].human_labels  # never human labels
    for r in (1, 2):
        syn, plain = syn_run.trained["random+syn", r], syn_run.trained["random", r]
        made = [i for i in syn.ids if i.startswith("synthetic-")]
        assert len(made) == by_key["random+syn", r].synthetic_labels and len(syn.ids) == len(plain.ids) + len(made)
        assert syn_run.synthetic["random+syn", r] == len(made) and syn_run.synthetic["random", r] == 0
        assert syn.ids[-len(made) :] == made  # the synthetic pairs come last, as synthetic_weights assumes
        # random chooses by seed alone, so the arms are paired: the same human labels, plus the pairs.
        assert syn.ids[: len(plain.ids)] == plain.ids
        assert np.array_equal(syn.images[: len(plain.ids)], plain.images)
        extra = syn.masks[len(plain.ids) :]
        assert extra.shape[1:] == (SYN.height, SYN.width) and all(m.any() for m in extra)


def test_a_crashed_syn_run_resumes_to_the_same_rows(syn_run: SynRun, tmp_path: Path) -> None:
    class Crash(RuntimeError):
        pass

    def crash(row: ResultRow) -> None:
        if (row.strategy, row.round) == ("random+syn", 1):
            raise Crash

    only_syn = dataclasses.replace(SYN, strategies=("random+syn",))
    with pytest.raises(Crash):
        run_simulation(tmp_path, syn_run.data, only_syn, progress=False, on_round=crash)
    resumed: list[tuple[str, int]] = []
    rows = run_simulation(
        tmp_path, syn_run.data, only_syn, progress=False, on_round=lambda r: resumed.append((r.strategy, r.round))
    )
    assert resumed == [("random+syn", 2)]
    assert rows == [r for r in syn_run.rows if r.strategy != "random"]
    state = RunFolder(tmp_path, only_syn).load("random+syn", 0)
    assert state is not None and state[0].human == RunFolder(syn_run.out, SYN).load("random", 0)[0].human  # type: ignore[index]


def test_summary_and_plot_show_the_syn_arm(syn_run: SynRun) -> None:
    text = summary_markdown(summarize(syn_run.rows))
    pairs = SYN.synth_per_image * SYN.per_round * SYN.rounds
    assert f"| 0 / {pairs} |" in text and "| random+syn |" in text
    plot_learning_curves(syn_run.rows, syn_run.out / "learning_curves.png")
    assert (syn_run.out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
