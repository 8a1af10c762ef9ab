"""Fixed-step training: the same number of updates for any labelled set, a one-cycle schedule, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ceal.trainer.steps import StepSchedule, batch_indices, fit_steps
from ceal.trainer.train import Dataset
from ceal.trainer.unet import UNet, UNetConfig


def _data(n: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 16, 16), np.uint8)
    masks[:, 4:12, 4:12] = 1
    images = (rng.random((n, 16, 16, 3)) * 60 + masks[..., None] * 150).astype(np.uint8)
    return Dataset([f"i{i}" for i in range(n)], images, masks)


def _model() -> UNet:
    torch.manual_seed(0)
    return UNet(UNetConfig(base_filters=4, depth=2))


def test_the_step_count_does_not_depend_on_the_number_of_labels() -> None:
    assert len(fit_steps(_model(), _data(1), StepSchedule(steps=7, batch_size=4))) == 7  # fewer images than a batch
    assert len(fit_steps(_model(), _data(40), StepSchedule(steps=7, batch_size=4))) == 7


def test_training_lowers_the_loss_and_leaves_eval_mode() -> None:
    model = _model()
    losses = fit_steps(model, _data(16), StepSchedule(steps=60, max_lr=1e-2, batch_size=8))
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert not model.training


def test_the_schedule_warms_up_then_decays(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    step = torch.optim.Adam.step

    def recording(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        seen.append(float(self.param_groups[0]["lr"]))
        return step(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    fit_steps(_model(), _data(8), StepSchedule(steps=50, max_lr=1e-2, batch_size=4, warmup=0.2))
    peak = int(np.argmax(seen))
    assert 8 <= peak <= 11 and seen[peak] == pytest.approx(1e-2)
    assert seen[0] < 1e-3 and seen[-1] < 1e-4  # starts low, ends near zero: converged, not mid-descent


def test_same_seed_same_weights() -> None:
    a, b = _model(), _model()
    fit_steps(a, _data(8), StepSchedule(steps=5, batch_size=4, seed=3))
    fit_steps(b, _data(8), StepSchedule(steps=5, batch_size=4, seed=3))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"batch_size": 1}, {"max_lr": 0.0}, {"warmup": 1.0}])
def test_bad_schedules_say_what_to_change(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need steps >= 1"):
        StepSchedule(**kwargs)  # type: ignore[arg-type]


def test_an_empty_labelled_set_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        fit_steps(_model(), _data(0), StepSchedule(steps=2))


def test_weighted_batches_follow_the_weights() -> None:
    """Zero-weight rows are never drawn; the others in proportion (χ² over 8,000 draws)."""
    gen = torch.Generator().manual_seed(0)
    weights = torch.tensor([0.0, 1.0, 3.0, 0.0, 4.0], dtype=torch.float64)
    draws = torch.cat([batch_indices(5, 8, gen, weights) for _ in range(1000)])
    counts = np.bincount(draws.numpy(), minlength=5)
    assert counts[0] == counts[3] == 0
    expected = 8000 * np.array([1.0, 3.0, 4.0]) / 8
    assert float(((counts[[1, 2, 4]] - expected) ** 2 / expected).sum()) < 13.8  # 2 dof, p = 0.001
    uniform = batch_indices(5, 8, torch.Generator().manual_seed(1))  # no weights: the unweighted draw
    assert torch.equal(uniform, torch.randint(0, 5, (8,), generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("weights", [np.zeros(4), np.ones(3), np.array([1.0, -1.0, 1.0, 1.0]), np.full(4, np.nan)])
def test_bad_weights_are_refused(weights: np.ndarray) -> None:
    with pytest.raises(ValueError, match="weights must be 4 finite values"):
        fit_steps(_model(), _data(4), StepSchedule(steps=2, batch_size=2), weights)
