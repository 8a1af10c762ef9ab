"""Suffix rows of several requests in one engine run (`merged.run_merged`): each request gets the samples it
would get alone (same seed, same masks, same stopping point), and a request that fails leaves the others be.

Seeded throughout; nothing is timed.
"""

from __future__ import annotations

from concurrent.futures import CancelledError

import numpy as np
import numpy.typing as npt
import pytest

from ceal.service.engine.adaptive import AdaptiveRule, run_samples
from ceal.service.engine.loaded import LoadedModel
from ceal.service.engine.merged import SuffixJob, run_merged
from ceal.service.errors import DeadlineExceeded
from tests.unit.service.engine.hand_model import SIZE, hand_model

F32 = npt.NDArray[np.float32]
RULE = AdaptiveRule(tolerance=1e-3, min_samples=4)


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    m = hand_model(out_weight=1.0, out_bias=-4.0)  # the mask moves p across 0.5: samples differ
    m.max_rows = 8  # several chunks and rounds even for a few samples
    return m


def _inputs(n: int) -> F32:
    return np.random.default_rng(42).normal(size=(n, 1, SIZE, SIZE)).astype(np.float32)


def _alone(model: LoadedModel, x: F32, samples: int, seed: int, rule: AdaptiveRule | None) -> F32:
    features = model.run_prefix(x)
    return run_samples(model, features, samples, np.random.default_rng(seed), rule)


@pytest.mark.parametrize("rules", [(None, None, None, None), (RULE, RULE, RULE), (None, RULE, None, RULE, RULE)])
def test_merged_requests_get_the_samples_they_get_alone(model: LoadedModel, rules: tuple[AdaptiveRule | None]) -> None:
    n = len(rules)
    x = _inputs(n)
    samples = [20, 12, 7, 16, 9][:n]
    jobs = [SuffixJob(samples[i], np.random.default_rng(100 + i), rules[i]) for i in range(n)]
    drawn = run_merged(model, model.run_prefix(x), jobs)
    assert drawn == sum(int(job.result.shape[1]) for job in jobs if job.result is not None)
    for i, job in enumerate(jobs):
        want = _alone(model, x[i : i + 1], samples[i], 100 + i, rules[i])
        assert job.error is None and job.result is not None
        assert job.result.shape == want.shape
        np.testing.assert_allclose(job.result, want, rtol=0, atol=1e-6)  # same masks: the same samples
    firsts = [job.result[0, 0] for job in jobs if job.result is not None]
    assert not np.allclose(firsts[0], firsts[1])  # different images and seeds: a mix-up would show


def test_merged_rows_equal_separate_runs_row_for_row(model: LoadedModel) -> None:
    x = _inputs(3)
    features = model.run_prefix(x)
    counts = [5, 0, 11]
    merged = model.run_suffix_rows(features, counts, [np.random.default_rng(s) for s in (1, 2, 3)])
    assert [len(m) for m in merged] == counts
    for i, k in enumerate(counts):
        if k:
            alone = model.run_suffix({n: v[i : i + 1] for n, v in features.items()}, k, np.random.default_rng(i + 1))
            np.testing.assert_allclose(merged[i], alone[0], rtol=0, atol=1e-6)


def test_adaptive_requests_stop_where_they_stop_alone(model: LoadedModel) -> None:
    x = _inputs(4)
    jobs = [SuffixJob(40, np.random.default_rng(7 + i), AdaptiveRule(tolerance=2e-3, min_samples=4)) for i in range(4)]
    run_merged(model, model.run_prefix(x), jobs)
    stops = [int(job.result.shape[1]) for job in jobs if job.result is not None]
    alone = [_alone(model, x[i : i + 1], 40, 7 + i, jobs[i].rule).shape[1] for i in range(4)]
    assert stops == alone and len(stops) == 4


def test_a_late_or_cancelled_request_fails_alone(model: LoadedModel) -> None:
    x = _inputs(3)
    now = [0.0]
    cancelled = [False]
    jobs = [
        SuffixJob(24, np.random.default_rng(1), deadline=5.0),
        SuffixJob(24, np.random.default_rng(2), abandoned=lambda: cancelled[0]),
        SuffixJob(24, np.random.default_rng(3)),
    ]

    def clock() -> float:  # after the first round: the first job's deadline passes, the second is cancelled
        value = now[0]
        now[0] = 10.0
        cancelled[0] = True
        return value

    run_merged(model, model.run_prefix(x), jobs, clock=clock)
    assert isinstance(jobs[0].error, DeadlineExceeded) and "of 24" in str(jobs[0].error)
    assert isinstance(jobs[1].error, CancelledError) and jobs[0].result is None and jobs[1].result is None
    assert jobs[2].error is None and jobs[2].result is not None
    np.testing.assert_allclose(jobs[2].result, _alone(model, x[2:3], 24, 3, None), rtol=0, atol=1e-6)
