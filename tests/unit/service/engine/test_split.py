"""The prefix/suffix split computes what the whole model computes and samples what it samples.

Reference: the whole exported graph run by onnxruntime with its own Dropout (`LoadedModel.sample_whole`).
MC comparisons are two-sample tests per pixel whose tolerance is the standard error of the difference,
Bonferroni-corrected over pixels; `test_the_mc_comparison_detects_unscaled_masks` shows they have power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceal.service.engine.loaded import LoadedModel, load_model
from ceal.service.engine.split import DropoutSite, SplitModel, draw_masks, split_model
from ceal.service.errors import InvalidInput
from ceal.service.metadata import METADATA_FILE, MODEL_FILE
from ceal.service.runtime import make_session
from ceal.trainer.export import to_onnx_bytes
from ceal.trainer.placements import DropoutPlacement
from ceal.trainer.unet import UNet, UNetConfig
from tests.unit.service.engine.conftest import HEIGHT, THREADS, WIDTH, TinyModel, export_untrained, load

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
SAMPLES = 400
FAMILY_ALPHA = 1e-6  # chance that a correct sampler fails one whole comparison
NOISE = 1e3 * float(np.finfo(np.float32).eps)  # a sample spread (probability units) beyond float rounding


def _dropouts(model_bytes: bytes) -> int:
    return sum(node.op_type == "Dropout" for node in onnx.load_from_string(model_bytes).graph.node)


def _critical_z(tests: int, alpha: float = FAMILY_ALPHA) -> float:
    """Two-sided normal quantile for `tests` comparisons at family-wise error `alpha` (Bonferroni)."""
    return NormalDist().inv_cdf(1.0 - alpha / (2 * tests))


def _z_scores(a: F32, b: F32) -> tuple[F64, F64]:
    """Per-pixel |difference| / standard error of the sample means and of the sample variances.

    a, b: independent samples (T, ...) of the same shape after the first axis. Under the hypothesis that
    they come from one distribution, its moments are estimated from both together, and the sample
    variance's standard error is the exact sqrt((m4 − σ⁴ (T − 3) / (T − 1)) / T): the first-order term
    alone vanishes for a pixel that takes two values half the time each (one dropout unit decides it).
    A floor at float32 resolution keeps pixels whose samples are all equal from dividing by zero.
    """
    x, y = a.astype(np.float64), b.astype(np.float64)
    t = len(x)
    assert len(y) == t
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    var_x, var_y = x.var(axis=0, ddof=1), y.var(axis=0, ddof=1)
    deviations = np.concatenate([x - mean_x, y - mean_y])
    sigma2, m4 = (deviations**2).mean(axis=0), (deviations**4).mean(axis=0)
    se_mean = np.sqrt(2 * sigma2 / t)
    se_var = np.sqrt(2 * np.maximum(m4 - sigma2**2 * (t - 3) / (t - 1), 0) / t)
    resolution = float(np.finfo(np.float32).eps)
    z_mean = np.abs(mean_x - mean_y) / np.maximum(se_mean, resolution)
    z_var = np.abs(var_x - var_y) / np.maximum(se_var, resolution**2)
    return z_mean, z_var


def _mc_mismatch(reference: F32, candidate: F32) -> float:
    """Largest per-pixel z (means and variances) over the critical z: ≥ 1 means the samplers differ.

    reference, candidate: (N, T, C, h, w) Monte-Carlo samples of the same N images.
    """
    z_mean, z_var = _z_scores(np.moveaxis(reference, 1, 0), np.moveaxis(candidate, 1, 0))
    return max(float(z_mean.max()), float(z_var.max())) / _critical_z(2 * z_mean.size)


def _unscaled_samples(model: LoadedModel, x: F32, samples: int, rng: np.random.Generator) -> F32:
    """A broken sampler: the split suffix with 0/1 keep masks (no 1 / (1 − ratio) scale) → (N, T, C, h, w)."""
    features = model.run_prefix(x)
    out = []
    for image in range(len(x)):
        feeds = {
            name: np.repeat(features[name][image : image + 1], samples, axis=0) for name in model.split.prefix_outputs
        }
        masks = draw_masks(model.split.sites, samples, rng)
        feeds.update({name: (mask > 0).astype(np.float32) for name, mask in masks.items()})
        out.append(model.suffix.run([model.split.suffix_output], feeds)[0])
    return np.stack(out)


def _with_outputs(model_bytes: bytes, names: list[str]) -> bytes:
    """The whole model with `names` added as graph outputs."""
    model = onnx.load_from_string(model_bytes)
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    return model.SerializeToString()


def test_prefix_outputs_are_bit_identical_to_the_whole_models(
    tiny_model: TinyModel, loaded_model: LoadedModel, model_inputs: F32
) -> None:
    names = [o.name for o in loaded_model.prefix.get_outputs()]
    assert loaded_model.split.descriptor in names and set(loaded_model.split.prefix_outputs) <= set(names)
    whole = make_session(
        _with_outputs((tiny_model.directory / MODEL_FILE).read_bytes(), names), intra_op_threads=THREADS
    )
    want = whole.run(names, {loaded_model.meta.input_name: model_inputs})
    got = loaded_model.run_prefix(model_inputs)
    assert sorted(got) == sorted(names)
    for name, expected in zip(names, want, strict=True):
        assert got[name].shape == expected.shape, name
        assert np.array_equal(got[name], expected), name


def test_suffix_with_all_ones_masks_equals_the_model_exported_without_dropout(
    tiny_model: TinyModel, loaded_model: LoadedModel, model_inputs: F32
) -> None:
    split = loaded_model.split
    deterministic = make_session(
        to_onnx_bytes(tiny_model.unet, HEIGHT, WIDTH, mc_dropout=False), intra_op_threads=THREADS
    )
    want = deterministic.run(None, {loaded_model.meta.input_name: model_inputs})[0]
    features = loaded_model.run_prefix(model_inputs)
    feeds = {name: features[name] for name in split.prefix_outputs}
    ones = {s.mask_input: np.ones((len(model_inputs), *s.shape), np.float32) for s in split.sites}
    got = loaded_model.suffix.run([split.suffix_output], {**feeds, **ones})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # Drawn masks change the output, so the agreement above is not the masks being ignored.
    drawn = draw_masks(split.sites, len(model_inputs), np.random.default_rng(0))
    assert np.abs(loaded_model.suffix.run([split.suffix_output], {**feeds, **drawn})[0] - want).max() > 1e-4


def test_split_mc_mean_and_variance_match_whole_model_mc(loaded_model: LoadedModel, model_inputs: F32) -> None:
    ort.set_seed(1)  # onnxruntime's Dropout seeded too, so that the test is reproducible
    x = model_inputs[:2]
    whole = loaded_model.sample_whole(x, SAMPLES)
    split = loaded_model.sample(x, SAMPLES, np.random.default_rng(1)).probabilities
    assert split.shape == whole.shape == (len(x), SAMPLES, 1, HEIGHT, WIDTH)
    assert np.sqrt(whole.var(axis=1)).max() > NOISE  # the reference really samples, beyond float rounding
    assert _mc_mismatch(whole, split) < 1.0


def test_the_mc_comparison_detects_unscaled_masks(loaded_model: LoadedModel, model_inputs: F32) -> None:
    """The classic bug, keep masks without the 1 / (1 − ratio) scale, fails the comparison above."""
    x, samples = model_inputs[:2], SAMPLES // 4
    ort.set_seed(2)
    whole = loaded_model.sample_whole(x, samples)
    unscaled = _unscaled_samples(loaded_model, x, samples, np.random.default_rng(3))
    assert _mc_mismatch(whole, unscaled) > 1.0


def test_same_seed_gives_identical_samples_and_different_seeds_differ(
    loaded_model: LoadedModel, model_inputs: F32
) -> None:
    x = model_inputs[:2]
    samples = loaded_model.max_rows + 8  # more than one suffix chunk
    first = loaded_model.sample(x, samples, np.random.default_rng(7))
    again = loaded_model.sample(x, samples, np.random.default_rng(7))
    other = loaded_model.sample(x, samples, np.random.default_rng(8))
    assert np.array_equal(first.probabilities, again.probabilities)
    assert np.array_equal(first.descriptors, again.descriptors)
    assert not np.array_equal(first.probabilities, other.probabilities)
    assert np.abs(first.probabilities[:, 0] - first.probabilities[:, 1]).max() > 0  # samples differ


@settings(deadline=None, max_examples=50)
@given(ratio=st.floats(0.05, 0.95), rows=st.integers(8, 40), seed=st.integers(0, 2**32 - 1))
def test_masks_keep_with_probability_one_minus_ratio_scaled_by_its_inverse(ratio: float, rows: int, seed: int) -> None:
    sites = (DropoutSite("a", (4, 6, 8), ratio), DropoutSite("b", (4, 6, 8), ratio))
    masks = draw_masks(sites, rows, np.random.default_rng(seed))
    assert sorted(masks) == ["a", "b"]
    keep = 1.0 - ratio
    for mask in masks.values():
        assert mask.shape == (rows, 4, 6, 8) and mask.dtype == np.float32
        kept = mask != 0
        np.testing.assert_allclose(mask[kept], 1.0 / keep, rtol=1e-6)
        standard_error = math.sqrt(keep * ratio / mask.size)
        assert abs(kept.mean() - keep) <= _critical_z(1) * standard_error
    assert not np.array_equal(masks["a"], masks["b"])  # each site draws its own mask


def test_sites_carry_the_exported_dropout_ratio() -> None:
    unet = UNet(UNetConfig(base_filters=8, depth=3, dropout=0.2, dropout_placement="decoder"))
    split = split_model(to_onnx_bytes(unet, HEIGHT, WIDTH, mc_dropout=True), HEIGHT, WIDTH, 3)
    assert [s.ratio for s in split.sites] == pytest.approx([0.2] * 4)
    assert [s.shape for s in split.sites] == [(64, 6, 8), (32, 12, 16), (16, 24, 32), (8, 48, 64)]


def test_a_model_without_dropout_is_refused_with_a_clear_message(tiny_model: TinyModel, tmp_path: Path) -> None:
    plain = to_onnx_bytes(tiny_model.unet, HEIGHT, WIDTH, mc_dropout=False)
    assert _dropouts(plain) == 0
    with pytest.raises(InvalidInput, match="no Dropout node: Monte-Carlo sampling needs dropout kept"):
        split_model(plain, HEIGHT, WIDTH, 3)
    folder = tmp_path / "lesion" / "1"
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(plain)
    (folder / METADATA_FILE).write_text((tiny_model.directory / METADATA_FILE).read_text())
    with pytest.raises(InvalidInput, match="no Dropout node"):
        load_model(folder)


EXPECTED_SITES = {"decoder": 4, "encoder_decoder": 7, "last_decoder": 1}


@dataclass(frozen=True)
class Placed:
    placement: str
    directory: Path
    model: LoadedModel


@pytest.fixture(scope="module", params=sorted(EXPECTED_SITES))
def placed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Placed:
    """An untrained U-Net with dropout at `placement`, exported and loaded (random weights suffice here)."""
    placement: DropoutPlacement = request.param
    directory = export_untrained(tmp_path_factory.mktemp(placement), placement)
    return Placed(placement, directory, load(directory))


def test_other_placements_split_and_match_whole_model_mc(placed: Placed, model_inputs: F32) -> None:
    model = placed.model
    split: SplitModel = model.split
    model_bytes = (placed.directory / MODEL_FILE).read_bytes()
    assert len(split.sites) == EXPECTED_SITES[placed.placement] == _dropouts(model_bytes)
    x = model_inputs[:2]
    ort.set_seed(3)
    whole = model.sample_whole(x, SAMPLES)
    sampled = model.sample(x, SAMPLES, np.random.default_rng(4)).probabilities
    assert np.sqrt(whole.var(axis=1)).max() > NOISE
    assert _mc_mismatch(whole, sampled) < 1.0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(1, 3), st.integers(0, 2**31))
def test_masks_do_not_depend_on_how_samples_are_chunked(chunks: list[int], sites_count: int, seed: int) -> None:
    sites = tuple(DropoutSite(f"m{i}", (2, 3 + i), 0.1 * (i + 2)) for i in range(sites_count))
    whole = draw_masks(sites, sum(chunks), np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    parts = [draw_masks(sites, n, rng) for n in chunks]
    for site in sites:
        assert np.array_equal(whole[site.mask_input], np.concatenate([p[site.mask_input] for p in parts]))


def test_last_decoder_dropout_leaves_only_the_head_in_the_suffix(tmp_path: Path) -> None:
    model = load(export_untrained(tmp_path, "last_decoder"))
    (site,) = model.split.sites
    assert site.shape == (8, HEIGHT, WIDTH)  # the last decoder block's output: base_filters × the full image
    assert len(model.split.prefix_outputs) == 1  # nothing else crosses: no skip connection in the suffix
    ops = sorted(n.op_type for n in onnx.load_from_string(model.split.suffix).graph.node)
    assert ops == ["Conv", "Mul", "Sigmoid"]  # mask, 1×1 head, probability


def test_ratio_one_half_masks_keep_half_and_scale_by_two() -> None:
    site = DropoutSite("m", (3, 50, 70), 0.5)
    masks = draw_masks((site,), 40, np.random.default_rng(11))["m"]
    assert set(np.unique(masks)) == {0.0, 2.0}
    kept = float((masks > 0).mean())
    assert abs(kept - 0.5) < 5 * math.sqrt(0.25 / masks.size)
    rng = np.random.default_rng(11)  # one row at a time: the same masks
    rows = np.concatenate([draw_masks((site,), 1, rng)["m"] for _ in range(40)])
    assert np.array_equal(rows, masks)
