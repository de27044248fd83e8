"""pandas in, pandas out: dated series, forecasts indexed by dates, the weather as a frame."""

import numpy as np
import pytest

from crnn import RNNForecaster, RNNRegressor
from crnn.datasets import load_seattle_weather

pd = pytest.importorskip("pandas", reason="pandas is optional")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def small():
    return RNNRegressor(cell="gru", hidden_layer_sizes=(8,), max_iter=3, random_state=0)


def test_seattle_weather_as_frame():
    weather = load_seattle_weather(as_frame=True)
    frame = weather.frame
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.freqstr == "D"
    assert list(frame.columns) == ["precipitation", "temp_max", "temp_min", "wind", "weather"]
    assert frame.index[0] == pd.Timestamp("2012-01-01") and len(frame) == 1461
    assert frame.loc["2012-01-01", "temp_max"] == 12.8
    assert list(weather.data.columns) == weather.feature_names
    assert weather.target.name == "weather" and weather.target.iloc[0] == "drizzle"
    np.testing.assert_array_equal(weather.data.to_numpy(), load_seattle_weather().data)
    data, target = load_seattle_weather(as_frame=True, return_X_y=True)
    assert isinstance(data, pd.DataFrame) and isinstance(target, pd.Series)
    assert data.index.equals(target.index)


def test_dated_series_in_dated_forecasts_out():
    temp_max = load_seattle_weather(as_frame=True).data["temp_max"]
    forecaster = RNNForecaster(small(), window=14).fit(temp_max[:"2014"])
    forecast = forecaster.predict(temp_max[:"2014"], steps=3)
    assert isinstance(forecast, pd.Series) and forecast.name == "temp_max"
    assert list(forecast.index) == list(pd.date_range("2015-01-01", periods=3, freq="D"))
    np.testing.assert_array_equal(
        forecast.to_numpy(), forecaster.predict(temp_max[:"2014"].to_numpy(), steps=3)
    )
    lower, upper = forecaster.predict_interval(temp_max[:"2014"], steps=3, n_paths=20)
    assert lower.index.equals(forecast.index) and (lower <= upper).all()
    assert np.isfinite(forecaster.score(temp_max["2015"]))


def test_monthly_frames_and_covariates():
    index = pd.date_range("2000-01-01", periods=120, freq="MS")
    t = np.arange(120)
    frame = pd.DataFrame({"a": 10 + np.sin(t / 2), "b": 5 + np.cos(t / 3)}, index=index)
    calendar = pd.DataFrame({"month": index.month}, index=index)
    forecaster = RNNForecaster(small(), window=12).fit(frame, calendar)
    future = pd.DataFrame(
        {"month": [1, 2]}, index=pd.date_range("2010-01-01", periods=2, freq="MS")
    )
    forecast = forecaster.predict(frame, steps=2, X=calendar, X_future=future)
    assert isinstance(forecast, pd.DataFrame) and list(forecast.columns) == ["a", "b"]
    assert list(forecast.index) == list(future.index)


def test_integer_and_undated_indexes():
    series = pd.Series(np.sin(np.arange(50.0)), index=np.arange(100, 150))
    forecaster = RNNForecaster(small(), window=5).fit(series)
    assert list(forecaster.predict(series, steps=2).index) == [150, 151]
    irregular = pd.DatetimeIndex(
        ["2020-01-01", "2020-01-02", "2020-01-05", "2020-01-06", "2020-01-09", "2020-01-30"]
    )
    with pytest.raises(ValueError, match="no frequency .* series.asfreq"):
        forecaster.predict(pd.Series(np.arange(6.0), index=irregular))
