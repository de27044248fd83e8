"""RNNForecaster's trends, covariates, intervals, scikit-learn tools and persistence."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_validate

import crnn
from crnn import RNNForecaster, RNNRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def regressor(**params):
    defaults = {
        "cell": "gru",
        "hidden_layer_sizes": (16,),
        "max_iter": 60,
        "learning_rate_init": 3e-3,
        "learning_rate": "adaptive",
        "random_state": 0,
    }
    return RNNRegressor(**{**defaults, **params})


def ar1(n, phi, sigma, rng):
    x = np.zeros(n)
    for i, shock in enumerate(sigma * rng.standard_normal(n)):
        x[i] = phi * x[i - 1] + shock
    return x


def mae(a, b):
    return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))


# Trends and seasons ------------------------------------------------------------------------


def trending(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 0.5 * t + 3 * np.sin(2 * np.pi * t / 7) + ar1(n, 0.3, 0.5, rng)


def test_a_trend_carries_on_past_the_training_range():
    series = trending()
    train, future = series[:300], series[300:]
    forecaster = RNNForecaster(regressor(), window=14).fit(train)
    assert forecaster.difference_ == 1 and forecaster.context_ == 15
    forecast = forecaster.predict(train, steps=100)
    # 100 steps ahead the truth is 50 above anything seen in training; so is the forecast.
    assert forecast[-1] > train.max() + 40
    assert mae(forecast, future) < 3
    # Modelling the level instead, the forecast goes flat near the top of the training range.
    level = RNNForecaster(regressor(), window=14, difference=0).fit(train)
    assert mae(level.predict(train, steps=100), future) > 5 * mae(forecast, future)


def test_recursion_past_the_horizon_integrates_differences():
    series = trending(seed=1)
    forecaster = RNNForecaster(regressor(), window=14, horizon=3).fit(series[:300])
    history = series[:300]
    seven = forecaster.predict(history, steps=7)
    np.testing.assert_allclose(seven[:3], forecaster.predict(history), rtol=1e-12)
    np.testing.assert_allclose(
        seven[3:6], forecaster.predict(np.append(history, seven[:3])), rtol=1e-12
    )
    assert np.all(np.diff(forecaster.predict(history, steps=60)[::7]) > 0)  # week on week


def test_growing_seasonal_swings_are_modelled_in_logs():
    rng = np.random.default_rng(0)
    t = np.arange(288)
    series = 100 * np.exp(0.006 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    series *= np.exp(0.02 * rng.standard_normal(288))
    forecaster = RNNForecaster(regressor(), window=24, seasonal_period=12).fit(series[:240])
    assert forecaster.transform_ == "log" and forecaster.difference_ == 1
    assert not forecaster.seasonal_difference_ and forecaster.context_ == 25
    forecast = forecaster.predict(series[:240], steps=48)
    seasonal_naive = np.tile(series[228:240], 4)
    assert mae(forecast, series[240:]) < 0.5 * mae(seasonal_naive, series[240:])
    # Asked to decide, the seasonal-strength rule takes seasonal differences of this one.
    seasonal = RNNForecaster(
        regressor(max_iter=1), window=24, seasonal_period=12, seasonal_difference="auto"
    ).fit(series[:240])
    assert seasonal.seasonal_difference_ and seasonal.context_ == 24 + 12 + seasonal.difference_
    assert seasonal.predict(series[:240], steps=13).shape == (13,)
    with pytest.raises(ValueError, match="transform_='log'.*strictly positive"):
        forecaster.predict(series[:240] - 500)


def test_explicit_transforms_and_their_errors():
    series = 5 + np.abs(np.sin(np.arange(200.0)))
    forecaster = RNNForecaster(
        regressor(max_iter=2), transform=0.5, difference=1, seasonal_difference=False
    ).fit(series)
    assert (forecaster.transform_, forecaster.difference_) == (0.5, 1)
    assert forecaster.predict(series, steps=3).shape == (3,)
    with pytest.raises(ValueError, match="transform='log' needs a strictly positive series"):
        RNNForecaster(regressor(max_iter=1), transform="log").fit(series - 10)
    with pytest.raises(ValueError, match="seasonal_difference=True needs a seasonal_period"):
        RNNForecaster(seasonal_difference=True).fit(series)
    with pytest.raises(ValueError, match="series has 20 steps; .* need at least 22"):
        RNNForecaster(window=14, seasonal_period=7, seasonal_difference=True).fit(series[:20])


# Covariates ---------------------------------------------------------------------------------


def with_events(n, seed=0):
    """A series that jumps by 4 on event days: unforecastable unless the events are known."""
    rng = np.random.default_rng(seed)
    events = (rng.random(n) < 0.2).astype(float)
    t = np.arange(n)
    series = 10 + 2 * np.sin(2 * np.pi * t / 7) + 4 * events + ar1(n, 0.5, 0.3, rng)
    return series, np.column_stack([events, np.sin(2 * np.pi * t / 7)])


def test_known_future_covariates_are_used():
    series, X = with_events(700)
    fit = {"window": 14, "difference": 0, "transform": None}
    blind = RNNForecaster(regressor(), **fit).fit(series[:600])
    informed = RNNForecaster(regressor(), **fit).fit(series[:600], X[:600])
    assert informed.n_covariates_ == 2 and informed.regressor_.n_features_in_ == 3
    origins = range(600, 695)
    truth = np.stack([series[t : t + 5] for t in origins])
    blind_forecast = blind.predict([series[:t] for t in origins], steps=5)
    informed_forecast = informed.predict(
        [series[:t] for t in origins],
        steps=5,
        X=[X[:t] for t in origins],
        X_future=[X[t : t + 5] for t in origins],
    )
    assert mae(informed_forecast, truth) < 0.5 * mae(blind_forecast, truth)
    # One history: the same forecast as in the batch, and the same as one step at a time.
    one = informed.predict(series[:600], steps=2, X=X[:600], X_future=X[600:602])
    np.testing.assert_allclose(one, informed_forecast[0, :2], rtol=1e-5)
    first = informed.predict(series[:600], X=X[:600], X_future=X[600:601])
    second = informed.predict(np.append(series[:600], first), X=X[:601], X_future=X[601:602])
    np.testing.assert_allclose(one, np.append(first, second), rtol=1e-12)


def test_covariates_with_a_horizon_and_several_series():
    pairs = [with_events(300, seed) for seed in range(3)]
    forecaster = RNNForecaster(regressor(max_iter=20), window=10, horizon=4, difference=0)
    forecaster.fit([s for s, _ in pairs], [x for _, x in pairs])
    assert forecaster.n_windows_ == 3 * (300 - 10 - 4 + 1)
    series, X = pairs[0]
    # 6 steps with a horizon of 4 take two blocks, so 8 future rows.
    forecast = forecaster.predict(series[:250], steps=6, X=X[:250], X_future=X[250:258])
    assert forecast.shape == (6,)
    with pytest.raises(ValueError, match="X_future has 6 rows; it needs ceil.* = 8 rows"):
        forecaster.predict(series[:250], steps=6, X=X[:250], X_future=X[250:256])
    with pytest.raises(ValueError, match="pass those of the history as X .* as X_future"):
        forecaster.predict(series[:250])
    with pytest.raises(ValueError, match="X has 1 columns; this forecaster was fit with 2"):
        forecaster.predict(series[:250], X=X[:250, :1], X_future=X[250:258, :1])
    with pytest.raises(ValueError, match="one row per step of its series: got 299 rows"):
        RNNForecaster().fit(series, X[:-1])
    with pytest.raises(ValueError, match="list of 3 series, X must be a list of as many"):
        RNNForecaster().fit([s for s, _ in pairs], X)
    blind = RNNForecaster(regressor(max_iter=1), difference=0).fit(series)
    with pytest.raises(ValueError, match="fit without covariates"):
        blind.predict(series, X=X, X_future=X)


# Intervals ----------------------------------------------------------------------------------


def test_interval_coverage_on_held_out_data():
    # AR(1) around a weekly cycle, Gaussian shocks: the residuals are a fair sample of the errors.
    rng = np.random.default_rng(0)
    n = 2400
    t = np.arange(n)
    series = 20 + 3 * np.sin(2 * np.pi * t / 7) + ar1(n, 0.7, 1.0, rng)
    forecaster = RNNForecaster(regressor(), window=14, random_state=0).fit(series[:1800])
    origins = range(1800, n - 5, 3)
    histories = [series[:t] for t in origins]
    truth = np.stack([series[t : t + 5] for t in origins])
    lower, upper = forecaster.predict_interval(histories, steps=5, coverage=0.9, n_paths=400)
    inside = (lower <= truth) & (truth <= upper)
    # 200 origins x 5 steps; the binomial standard error of a 0.9 rate over 200 is 0.02.
    assert abs(inside.mean() - 0.9) < 0.04, inside.mean(axis=0)
    for step in range(5):
        assert abs(inside[:, step].mean() - 0.9) < 0.06
    # Errors accumulate: the interval widens with the steps ahead, around the forecast.
    widths = (upper - lower).mean(axis=0)
    assert np.all(np.diff(widths) > 0)
    forecast = forecaster.predict(histories, steps=5)
    assert np.all((lower <= forecast) & (forecast <= upper))
    lower50, upper50 = forecaster.predict_interval(histories[:20], steps=5, coverage=0.5)
    assert np.all(upper50 - lower50 < (upper - lower)[:20])


def test_intervals_are_seeded_and_checked():
    series = trending()
    forecaster = RNNForecaster(regressor(max_iter=5), random_state=3).fit(series)
    a = forecaster.predict_interval(series, steps=4, n_paths=50)
    b = forecaster.predict_interval(series, steps=4, n_paths=50)
    np.testing.assert_array_equal(a, b)
    assert a[0].shape == (4,)
    with pytest.raises(ValueError, match=r"coverage must be a float in \(0, 1\), got 90"):
        forecaster.predict_interval(series, coverage=90)
    with pytest.raises(ValueError, match="n_paths must be an int >= 1"):
        forecaster.predict_interval(series, n_paths=0)


def test_intervals_of_several_columns_and_histories():
    t = np.arange(300)
    series = np.column_stack([trending(300), 50 - 0.2 * t + np.sin(t)])
    forecaster = RNNForecaster(regressor(max_iter=5), window=10, horizon=2).fit(series)
    assert forecaster.difference_ == 1  # both columns trend
    lower, upper = forecaster.predict_interval(series, steps=5, n_paths=30)
    assert lower.shape == upper.shape == (5, 2) and np.all(lower <= upper)
    batch = forecaster.predict_interval([series[:200], series], steps=3, n_paths=30)
    assert batch[0].shape == (2, 3, 2)


# scikit-learn's tools -----------------------------------------------------------------------


def seasonal_ar(n, period, seed=0):
    """y[t] = 0.9 y[t - period] + noise: only a window of at least ``period`` steps can see it."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for i, shock in enumerate(rng.standard_normal(n)):
        y[i] = 0.9 * y[i - period] + shock if i >= period else shock
    return y


def test_score_is_negative_mae_of_horizon_forecasts():
    series = trending()
    forecaster = RNNForecaster(regressor(max_iter=10), window=14, horizon=2).fit(series[:300])
    test = series[300:]
    n_origins = len(test) - forecaster.context_ - 2 + 1
    forecasts = forecaster.predict([test[: forecaster.context_ + i] for i in range(n_origins)])
    truth = np.stack(
        [test[forecaster.context_ + i : forecaster.context_ + i + 2] for i in range(n_origins)]
    )
    assert forecaster.score(test) == pytest.approx(-mae(forecasts, truth), rel=1e-10)
    with pytest.raises(ValueError, match="score needs at least context_ \\+ horizon = 17 steps"):
        forecaster.score(test[:16])


def test_grid_search_selects_the_window_that_sees_the_season():
    series = seasonal_ar(1200, period=8)
    forecaster = RNNForecaster(regressor(max_iter=40), difference=0, transform=None)
    search = GridSearchCV(
        forecaster, {"window": [4, 12]}, cv=TimeSeriesSplit(3), error_score="raise"
    ).fit(series)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_params_ == {"window": 12}
    # A window of 4 cannot see y[t - 8]: its error is that of the mean, about 1.8 (vs 0.8).
    assert scores[1] > 1.5 * scores[0]
    assert search.best_estimator_.predict(series, steps=8).shape == (8,)


def test_cross_validate_passes_covariates_and_refuses_short_folds():
    series, X = with_events(300)
    forecaster = RNNForecaster(regressor(max_iter=5), window=7, difference=0)
    scores = cross_validate(forecaster, series, X, cv=TimeSeriesSplit(2), error_score="raise")
    assert np.all(np.isfinite(scores["test_score"]))
    with pytest.raises(ValueError, match="score needs at least"):
        cross_validate(
            forecaster, series[:60], X[:60], cv=TimeSeriesSplit(10), error_score="raise"
        )
    # With scikit-learn's default error_score=nan, the NaN comes with the reason.
    with pytest.warns(UserWarning, match="score needs at least"):
        scores = cross_validate(forecaster, series[:60], X[:60], cv=TimeSeriesSplit(10))
    assert np.isnan(scores["test_score"]).all()


# Persistence ---------------------------------------------------------------------------------


def test_save_and_load_round_trip_the_new_attributes(tmp_path):
    series, X = with_events(300)
    positive = series + 10
    forecaster = RNNForecaster(
        regressor(max_iter=3),
        window=14,
        horizon=2,
        transform="log",
        difference=1,
        seasonal_period=7,
        seasonal_difference=True,
        random_state=1,
    ).fit(positive, X)
    path = tmp_path / "forecaster.npz"
    crnn.save(forecaster, path)
    loaded = crnn.load(path)
    for name in (
        "transform_",
        "difference_",
        "seasonal_difference_",
        "context_",
        "n_covariates_",
        "n_series_",
        "series_ndim_",
        "n_windows_",
    ):
        assert getattr(loaded, name) == getattr(forecaster, name), name
    for name in ("mean_", "scale_", "covariate_mean_", "covariate_scale_", "residuals_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(forecaster, name))
    args = (positive[:250], 5)
    kwargs = {"X": X[:250], "X_future": X[250:256]}
    np.testing.assert_array_equal(
        loaded.predict(*args, **kwargs), forecaster.predict(*args, **kwargs)
    )
    np.testing.assert_array_equal(
        loaded.predict_interval(*args, **kwargs, n_paths=20),
        forecaster.predict_interval(*args, **kwargs, n_paths=20),
    )
    assert loaded.score(positive, X) == forecaster.score(positive, X)
