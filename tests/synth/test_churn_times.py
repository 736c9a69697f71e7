"""Churn times under the planted piecewise-constant hazard, checked against closed-form
survival ``S(t) = exp(-∫ hazard)`` rather than against the inversion itself."""

from __future__ import annotations

import numpy as np

from loupe.synth.catalog import YEAR
from loupe.synth.people import NEVER, churn_times

N = 200_000


def _draws(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 10 * int(YEAR), N)
    return start, np.full(N, 0.5), rng.exponential(1.0, N)


def test_without_incidents_churn_is_exponential_from_the_start() -> None:
    start, hazard, e = _draws()
    never = np.full(N, NEVER)
    got = churn_times(start, hazard, [(never, 3.0), (never, 2.0)], e)
    np.testing.assert_allclose(got, start + e / 0.5 * YEAR, atol=1.0)


def test_an_incident_before_the_start_counts_from_the_start() -> None:
    start, hazard, e = _draws()
    got = churn_times(start, hazard, [(start - int(YEAR), 1.0), (np.full(N, NEVER), 2.0)], e)
    np.testing.assert_allclose(got, start + e / (0.5 * np.e) * YEAR, atol=1.0)


def test_survival_matches_the_integrated_hazard() -> None:
    start, hazard, e = _draws(1)
    one, half = start + int(YEAR), start + int(YEAR) // 2
    got = (churn_times(start, hazard, [(one, 1.0), (half, 2.0)], e) - start) / YEAR
    # hazard 0.5 until 0.5 y, 0.5 e^2 until 1 y, 0.5 e^3 after
    e2, e3 = np.exp(2), np.exp(3)
    h = {0.25: 0.125, 0.75: 0.25 + 0.125 * e2, 2.0: 0.25 + 0.25 * e2 + 0.5 * e3}
    for t, cumulative in h.items():
        expected = np.exp(-cumulative)
        se = np.sqrt(expected * (1 - expected) / N)
        assert abs((got > t).mean() - expected) < 5 * se + 1e-6, t
    # the order in which incidents are listed does not matter
    again = churn_times(start, hazard, [(half, 2.0), (one, 1.0)], e)
    np.testing.assert_array_equal((again - start) / YEAR, got)
