"""Tests of the data sets shipped with crnn."""

import numpy as np

from crnn.datasets import load_seattle_weather


def test_seattle_weather_bunch():
    weather = load_seattle_weather()
    assert weather.data.shape == (1461, 4)
    assert weather.data.dtype == np.float64
    assert np.isfinite(weather.data).all()
    assert weather.feature_names == ["precipitation", "temp_max", "temp_min", "wind"]
    assert weather.target.shape == (1461,)
    assert list(weather.target_names) == ["drizzle", "fog", "rain", "snow", "sun"]
    assert set(weather.target) == set(weather.target_names)
    # The first and last rows of the file, as published.
    np.testing.assert_array_equal(weather.data[0], [0.0, 12.8, 5.0, 4.7])
    np.testing.assert_array_equal(weather.data[-1], [0.0, 5.6, -2.1, 3.5])
    assert weather.target[0] == "drizzle" and weather.target[-1] == "sun"


def test_seattle_weather_is_a_daily_series_without_gaps():
    dates = load_seattle_weather().dates
    assert dates.dtype == np.dtype("datetime64[D]")
    assert dates[0] == np.datetime64("2012-01-01")
    assert dates[-1] == np.datetime64("2015-12-31")
    assert (np.diff(dates) == np.timedelta64(1, "D")).all()


def test_seattle_weather_values_are_physically_plausible():
    weather = load_seattle_weather()
    precipitation, temp_max, temp_min, wind = weather.data.T
    assert (precipitation >= 0).all() and (wind >= 0).all()
    assert (temp_min <= temp_max).all()
    assert -20 < temp_min.min() and temp_max.max() < 45
    # Seattle summers are warmer than its winters.
    month = weather.dates.astype("datetime64[M]").astype(int) % 12 + 1
    assert temp_max[month == 7].mean() > temp_max[month == 1].mean() + 10


def test_seattle_weather_return_X_y():
    weather = load_seattle_weather()
    data, target = load_seattle_weather(return_X_y=True)
    np.testing.assert_array_equal(data, weather.data)
    np.testing.assert_array_equal(target, weather.target)


def test_seattle_weather_returns_fresh_arrays():
    first = load_seattle_weather()
    first.data[:] = 0
    first.feature_names.append("changed")
    second = load_seattle_weather()
    assert second.data[0, 1] == 12.8
    assert len(second.feature_names) == 4


def test_seattle_weather_descr_records_provenance():
    descr = load_seattle_weather().DESCR
    for needed in ("NOAA", "public domain", "vega_datasets", "License", "References"):
        assert needed in descr
