"""Tests of forecasting: make_windows and RNNForecaster."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crnn._estimators import RNNRegressor
from crnn._forecast import RNNForecaster, make_windows
from crnn.datasets import load_seattle_weather

# The small networks here train for a fixed, short budget on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# make_windows ------------------------------------------------------------------------------


def test_make_windows_one_step():
    X, y = make_windows(np.arange(6.0), window=3)
    np.testing.assert_array_equal(X, [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(y, [3, 4, 5])


def test_make_windows_horizon():
    X, y = make_windows(np.arange(6.0), window=2, horizon=3)
    np.testing.assert_array_equal(X, [[0, 1], [1, 2]])
    np.testing.assert_array_equal(y, [[2, 3, 4], [3, 4, 5]])


def test_make_windows_multivariate_series():
    series = np.arange(12.0).reshape(6, 2)
    X, y = make_windows(series, window=4)
    assert X.shape == (2, 4, 2) and y.shape == (2, 2)
    np.testing.assert_array_equal(X[1], series[1:5])
    np.testing.assert_array_equal(y[1], series[5])
    X, y = make_windows(series, window=2, horizon=2)
    assert X.shape == (3, 2, 2) and y.shape == (3, 2, 2)
    np.testing.assert_array_equal(y[2], series[4:6])


def test_make_windows_pools_a_list_of_series():
    first, second = np.arange(5.0), 100 + np.arange(7.0)
    X, y = make_windows([first, list(second)], window=3, horizon=2)
    assert X.shape == (1 + 3, 3) and y.shape == (4, 2)
    np.testing.assert_array_equal(X[0], first[:3])
    np.testing.assert_array_equal(X[1], second[:3])
    np.testing.assert_array_equal(y[-1], second[5:])


def test_make_windows_returns_writable_copies():
    series = np.arange(10.0)
    X, y = make_windows(series, window=4)
    X[0, 0] = -1
    assert series[0] == 0 and X.flags.c_contiguous and y.flags.c_contiguous


@pytest.mark.parametrize(
    "series, window, horizon, message",
    [
        (
            np.arange(4.0),
            3,
            2,
            "series has 4 steps; windows of 3 steps with a horizon of 2 need at least 5",
        ),
        ([np.arange(9.0), np.arange(3.0)], 3, 1, r"series\[1\] has 3 steps"),
        (np.arange(9.0), 0, 1, "window must be an int >= 1, got 0"),
        (np.arange(9.0), 2.5, 1, "window must be an int >= 1"),
        (np.arange(9.0), 2, True, "horizon must be an int >= 1"),
        (np.array([0, 1, np.nan, 3, 4]), 2, 1, "NaN"),
        (np.zeros((5, 2, 2)), 2, 1, "must be 1D .* or 2D"),
        ([np.zeros((5, 2)), np.zeros((5, 3))], 2, 1, "same number of columns"),
    ],
)
def test_make_windows_errors(series, window, horizon, message):
    with pytest.raises(ValueError, match=message):
        make_windows(series, window, horizon)


# RNNForecaster -----------------------------------------------------------------------------


def seasonal_series(n_steps, level=20.0, amplitude=5.0, noise=0.5, seed=0):
    """A daily-like series: a level, a weekly cycle and persistent AR(1) fluctuations.

    The cycle defeats the persistence baseline (the last value), the fluctuations
    the seasonal-naive one (the value a week ago); a model must combine both.
    """
    rng = np.random.RandomState(seed)
    t = np.arange(n_steps)
    weekly = np.sin(2 * np.pi * t / 7) + 0.5 * np.cos(4 * np.pi * t / 7)
    fluctuation = np.zeros(n_steps)
    for i, shock in enumerate(noise * rng.standard_normal(n_steps)):
        fluctuation[i] = 0.9 * fluctuation[i - 1] + shock
    return level + amplitude * weekly + fluctuation


def fast_regressor(**params):
    defaults = {
        "cell": "gru",
        "hidden_layer_sizes": (32,),
        "max_iter": 100,
        "learning_rate_init": 3e-3,
        "learning_rate": "adaptive",
        "random_state": 0,
    }
    return RNNRegressor(**{**defaults, **params})


def mae(a, b):
    return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.fixture(scope="module")
def weekly():
    """A fitted one-step forecaster of a weekly-seasonal series, with the series and split."""
    series = seasonal_series(500)
    forecaster = RNNForecaster(fast_regressor(), window=14).fit(series[:400])
    return forecaster, series


def test_one_step_forecasts_beat_the_baselines(weekly):
    forecaster, series = weekly
    X, y = make_windows(series[400 - 14 :], window=14)
    predicted = forecaster.predict(X)[:, 0]
    error = mae(predicted, y)
    persistence = mae(X[:, -1], y)
    seasonal_naive = mae(X[:, -7], y)
    # The best possible MAE, from the AR(1) shocks alone, is about 0.4.
    assert error < 0.3 * persistence
    assert error < 0.7 * seasonal_naive


def test_recursive_forecast_continues_the_series(weekly):
    forecaster, series = weekly
    assert forecaster.predict(series[:400], steps=7).shape == (7,)
    # A week ahead, one step at a time, from every origin of the held-out part.
    origins = range(400, len(series) - 7)
    forecasts = forecaster.predict([series[:t] for t in origins], steps=7)
    future = np.stack([series[t : t + 7] for t in origins])
    persistence = np.stack([np.full(7, series[t - 1]) for t in origins])
    seasonal_naive = np.stack([series[t - 7 : t] for t in origins])
    assert mae(forecasts, future) < 0.3 * mae(persistence, future)
    assert mae(forecasts, future) < 0.9 * mae(seasonal_naive, future)


def test_recursive_forecast_feeds_its_own_forecasts_back(weekly):
    forecaster, series = weekly
    history = series[:300]
    two = forecaster.predict(history, steps=2)
    first = forecaster.predict(history)
    assert first.shape == (1,)
    second = forecaster.predict(np.append(history, first))
    np.testing.assert_allclose(two, np.append(first, second), rtol=1e-12)


def test_predict_reads_only_the_last_window(weekly):
    forecaster, series = weekly
    histories = [series[:100], series[200:260], series[386:400]]
    batch = forecaster.predict(histories, steps=3)
    assert batch.shape == (3, 3)
    for history, forecast in zip(histories, batch):
        # float32 products may round differently in another batch size.
        np.testing.assert_allclose(forecaster.predict(history[-14:], steps=3), forecast, rtol=1e-5)
    stacked = forecaster.predict(np.stack([series[i : i + 20] for i in range(5)]), steps=2)
    assert stacked.shape == (5, 2)


def test_forecaster_scales_raw_series():
    # Counts in the thousands with a strong weekly cycle: hopeless for a tanh network unscaled.
    series = seasonal_series(400, level=5000.0, amplitude=800.0, noise=30.0, seed=1)
    forecaster = RNNForecaster(fast_regressor(), window=14).fit(series[:330])
    assert forecaster.mean_[0] == pytest.approx(series[:330].mean())
    assert forecaster.scale_[0] == pytest.approx(series[:330].std())
    X, y = make_windows(series[330 - 14 :], window=14)
    assert mae(forecaster.predict(X)[:, 0], y) < 0.4 * mae(X[:, -1], y)


def test_direct_multi_step_and_recursion_past_the_horizon():
    series = seasonal_series(400, seed=2)
    forecaster = RNNForecaster(fast_regressor(), window=14, horizon=3).fit(series[:330])
    assert forecaster.regressor_.n_outputs_ == 3
    history = series[:330]
    seven = forecaster.predict(history, steps=7)
    np.testing.assert_allclose(seven[:3], forecaster.predict(history), rtol=1e-12)
    np.testing.assert_allclose(
        seven[3:6], forecaster.predict(np.append(history, seven[:3])), rtol=1e-12
    )
    future = series[330:337]
    assert mae(seven, future) < 0.5 * mae(np.full(7, history[-1]), future)


def test_multivariate_series_are_forecast_jointly():
    # Column 1 follows column 0 with a lag of two steps: knowing both helps both.
    base = seasonal_series(402, seed=3)
    series = np.column_stack([base[2:], 10 + 2 * base[:-2]])
    forecaster = RNNForecaster(fast_regressor(), window=14).fit(series[:330])
    assert forecaster.n_series_ == 2 and forecaster.series_ndim_ == 2
    X, y = make_windows(series[330 - 14 :], window=14)
    forecast = forecaster.predict(X)
    assert forecast.shape == (len(X), 1, 2)
    for column in range(2):
        assert mae(forecast[:, 0, column], y[:, column]) < 0.4 * mae(
            X[:, -1, column], y[:, column]
        )
    assert forecaster.predict(series[:330], steps=5).shape == (5, 2)


def test_a_list_of_series_trains_one_model():
    series = [
        seasonal_series(200, level=level, seed=seed)
        for seed, level in enumerate((10.0, 20.0, 30.0))
    ]
    forecaster = RNNForecaster(fast_regressor(), window=14).fit([s[:150] for s in series])
    assert forecaster.n_windows_ == 3 * (150 - 14)
    assert forecaster.predict([s[:150] for s in series], steps=7).shape == (3, 7)
    for s in series:
        X, y = make_windows(s[150 - 14 :], window=14)
        assert mae(forecaster.predict(X)[:, 0], y) < 0.5 * mae(X[:, -1], y)


def test_shipped_daily_temperatures_beat_persistence_a_week_ahead():
    weather = load_seattle_weather()
    temp_max = weather.data[:, weather.feature_names.index("temp_max")]
    train, test = temp_max[:1096], temp_max[1096 - 28 :]  # 2012-2014 | 2015
    forecaster = RNNForecaster(
        fast_regressor(hidden_layer_sizes=(16,), max_iter=15), window=28, horizon=7
    ).fit(train)
    X, y = make_windows(test, window=28, horizon=7)
    forecast_error = mae(forecaster.predict(X), y)
    persistence_error = mae(np.repeat(X[:, -1:], 7, axis=1), y)
    # Day-to-day weather is nearly a random walk; the model gains from day 2 on.
    assert forecast_error < 0.9 * persistence_error


@pytest.mark.parametrize(
    "history, message",
    [
        (
            np.zeros((20, 2, 1)),
            r"fit on 1D series, so it expects \(n_steps,\) .*got shape \(20, 2, 1\)",
        ),
        (np.zeros(10), "A history has 10 steps; .* window=14 .* at least 14"),
        ([np.zeros(30), np.zeros((30, 2))], "got shape"),
    ],
)
def test_predict_errors(weekly, history, message):
    forecaster, _ = weekly
    with pytest.raises(ValueError, match=message):
        forecaster.predict(history)


def test_predict_steps_must_be_positive(weekly):
    forecaster, series = weekly
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        forecaster.predict(series, steps=0)


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        RNNForecaster().predict(np.zeros(20))


def test_the_network_always_maps_a_window_to_a_vector():
    # With horizon == window, pattern="auto" would read the targets as per-step (seq2seq).
    forecaster = RNNForecaster(fast_regressor(max_iter=1), window=4, horizon=4)
    assert forecaster.fit(np.sin(np.arange(30.0))).regressor_.pattern_ == "seq2vec"
    with pytest.raises(ValueError, match="pattern='seq2vec'; its regressor has pattern='seq2seq'"):
        RNNForecaster(fast_regressor(pattern="seq2seq")).fit(np.zeros(30))


def test_invalid_parameters_raise_at_fit():
    with pytest.raises(ValueError, match="window"):
        RNNForecaster(window=0).fit(np.zeros(20))


def test_forecaster_is_a_scikit_learn_estimator():
    forecaster = RNNForecaster(fast_regressor(max_iter=3), window=5)
    assert forecaster.get_params()["regressor__max_iter"] == 3
    copy = clone(forecaster).set_params(regressor__max_iter=7, horizon=2)
    assert copy.regressor.max_iter == 7 and forecaster.regressor.max_iter == 3
    copy.fit(np.sin(np.arange(40.0)))
    assert copy.regressor_ is not copy.regressor and not hasattr(copy.regressor, "n_iter_")
