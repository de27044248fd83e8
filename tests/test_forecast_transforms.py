"""The transforms RNNForecaster models through, and the "auto" tests that choose them."""

import warnings

import numpy as np
import pytest

from crnn._forecast import _transforms as tf


def random_walk(n, seed):
    return np.cumsum(np.random.default_rng(seed).normal(size=n))


def ar1(n, phi, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i, shock in enumerate(rng.normal(size=n)):
        x[i] = phi * x[i - 1] + shock
    return x


@pytest.mark.parametrize("seed", range(5))
def test_kpss_and_adf_match_statsmodels(seed):
    stattools = pytest.importorskip("statsmodels.tsa.stattools", reason="statsmodels is optional")
    for x in (random_walk(400, seed), ar1(300, 0.5, seed), np.arange(150.0) + ar1(150, 0, seed)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels warns when p is off its table
            expected_kpss = stattools.kpss(x, nlags="auto")[0]
            lags = min(int(12 * (len(x) / 100) ** 0.25), (len(x) - 2) // 3)
            expected_adf = stattools.adfuller(x, maxlag=lags, autolag=None)[0]
        assert tf.kpss_statistic(x) == pytest.approx(expected_kpss, rel=1e-10)
        assert tf.adf_statistic(x) == pytest.approx(expected_adf, rel=1e-8)


def test_adf_critical_value_is_mackinnons():
    adfvalues = pytest.importorskip("statsmodels.tsa.adfvalues", reason="statsmodels is optional")
    for n in (50, 200, 1000):
        assert tf.adf_critical_5pct(n) == pytest.approx(adfvalues.mackinnoncrit(1, "c", n)[1])


def test_difference_rule_on_series_with_known_answers():
    t = np.arange(400)
    counts = {"walk": 0, "trend": 0, "noise": 0, "ar": 0}
    n_seeds = 50
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        # Unit roots and trends: difference.
        counts["walk"] += tf.wants_difference(random_walk(400, seed))
        counts["trend"] += tf.wants_difference(0.05 * t + rng.normal(size=400))
        # Stationary, even persistent (KPSS alone rejects the AR(1) about half the time): don't.
        counts["noise"] += tf.wants_difference(rng.normal(size=400))
        ar = ar1(400, 0.9, seed) + 3 * np.sin(2 * np.pi * t / 7)
        counts["ar"] += tf.wants_difference(ar)
    rates = {name: count / n_seeds for name, count in counts.items()}
    assert rates["trend"] == 1
    assert rates["walk"] >= 0.8  # about 0.9 at 400 steps: some walks look mean-reverting
    assert rates["noise"] <= 0.05 and rates["ar"] <= 0.1, rates


def test_seasonal_strength():
    rng = np.random.default_rng(0)
    t = np.arange(240)
    assert tf.seasonal_strength(np.sin(2 * np.pi * t / 12) + 0.1 * rng.normal(size=240), 12) > 0.9
    assert tf.seasonal_strength(rng.normal(size=240), 12) < 0.2
    # Odd periods use a plain moving average; a trend does not count as a season.
    assert tf.seasonal_strength(0.1 * t + np.sin(2 * np.pi * t / 7), 7) > 0.95
    assert tf.seasonal_strength(0.1 * t + rng.normal(size=240), 7) < 0.2
    assert tf.seasonal_strength(np.ones(10), 12) == 0.0  # shorter than two seasons


def test_log_rule():
    rng = np.random.default_rng(0)
    t = np.arange(240)
    season = np.sin(2 * np.pi * t / 12)
    level = 100 * np.exp(0.01 * t)
    multiplicative = level * (1 + 0.3 * season) * np.exp(0.02 * rng.normal(size=240))
    additive = level + 10 * season + rng.normal(size=240)
    assert tf.wants_log([multiplicative], 12)
    assert not tf.wants_log([additive], 12)
    assert not tf.wants_log([multiplicative - 200], 12)  # not positive
    assert not tf.wants_log([100 + (1 + 0.3 * season)], 12)  # a level that does not move


@pytest.mark.parametrize("d, D", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_integration_undoes_differencing(d, D):
    z = np.random.default_rng(0).normal(size=(3, 40, 2)).cumsum(axis=1)
    coef = tf.difference_coefficients(d, D, 5)
    assert len(coef) - 1 == d + 5 * D
    w = tf.apply_difference(z, coef)
    lag = len(coef) - 1
    rebuilt = z[:, :lag]
    for j in range(w.shape[1]):
        step = tf.integrate_step(rebuilt, w[:, j], coef)
        rebuilt = np.concatenate([rebuilt, step[:, None]], axis=1)
    np.testing.assert_allclose(rebuilt, z, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transform", ["log", 0, 0.5, -0.5, None])
def test_box_cox_round_trips(transform):
    y = np.linspace(0.1, 50, 30)
    np.testing.assert_allclose(
        tf.inverse_transform(tf.forward_transform(y, transform), transform), y, rtol=1e-12
    )
