"""
=============================================
Forecasting a daily series with RNNForecaster
=============================================

:class:`~crnn.RNNForecaster` learns to continue a series from its last ``window`` steps.
Here it learns Seattle's daily maximum temperature of 2012-2014 (data shipped with crnn,
:func:`crnn.datasets.load_seattle_weather`) and forecasts 2015, which it has not seen:

- every week of 2015 forecast 7 days ahead from the 28 days before it (one forecast per
  history, all in one call), with a 90% forecast interval;
- the first four weeks of 2015 from the end of 2014 alone, the forecasts past the first
  week fed back recursively.

The forecaster standardizes the series itself, so it is given raw degrees Celsius.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from crnn import RNNForecaster, RNNRegressor, make_windows
from crnn.datasets import load_seattle_weather

weather = load_seattle_weather()
temp_max = weather.data[:, weather.feature_names.index("temp_max")]
dates = weather.dates
n_train = int(np.sum(dates < np.datetime64("2015-01-01")))  # 2012-2014: 1096 days
window, horizon = 28, 7
# 30 epochs keep the example fast; the loss is still falling slowly when they end.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

regressor = RNNRegressor(cell="gru", hidden_layer_sizes=(32,), max_iter=30, random_state=0)
forecaster = RNNForecaster(regressor, window=window, horizon=horizon)
forecaster.fit(temp_max[:n_train])
print(f"trained on {forecaster.n_windows_} windows of {window} days")

# %%
# A week ahead, every week of 2015
# --------------------------------
# :func:`~crnn.make_windows` cuts the year into histories of 28 days and the 7 days that
# follow each; taking every 7th gives back-to-back weeks. ``predict`` on a batch of
# histories returns one 7-day forecast per history. The baseline repeats the last observed
# day ("tomorrow is like today"), which is hard to beat a few days ahead. The band is a
# 90% interval from ``predict_interval``: it widens over each week as errors accumulate.

histories, truth = make_windows(temp_max[n_train - window :], window=window, horizon=horizon)
histories, truth = histories[::horizon], truth[::horizon]
forecast = forecaster.predict(histories)  # (n_weeks, 7)
persistence = np.repeat(histories[:, -1:], horizon, axis=1)
# Intervals from simulated futures: the network's errors on held-out training windows,
# resampled and fed back through the forecast (RNNForecaster.predict_interval).
lower, upper = forecaster.predict_interval(histories, coverage=0.9, random_state=0)


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


print(
    f"{len(forecast)} weeks of 2015; RMSE over the 7 days ahead: "
    f"forecaster {rmse(forecast, truth):.2f} °C, last day repeated "
    f"{rmse(persistence, truth):.2f} °C"
)
inside = (lower <= truth) & (truth <= upper)
print(f"the 90% intervals hold {inside.mean():.0%} of the observed days")

days = dates[n_train : n_train + forecast.size]
fig, ax = plt.subplots(figsize=(9, 3.8))
ax.plot(days, truth.ravel(), color="0.3", lw=1, label="observed")
for week, start in enumerate(range(0, forecast.size, horizon)):
    ax.fill_between(
        days[start : start + horizon],
        lower[week],
        upper[week],
        color="C1",
        alpha=0.2,
        lw=0,
        label="90% interval" if week == 0 else None,
    )
    ax.plot(
        days[start : start + horizon],
        forecast[week],
        color="C1",
        lw=1.5,
        label="forecast 7 days ahead" if week == 0 else None,
    )
ax.set_ylabel("daily maximum (°C)")
ax.set_title("Seattle 2015, each week forecast from the 28 days before it")
ax.legend(loc="upper left")
fig.autofmt_xdate()
fig.tight_layout()

# %%
# Four weeks from the end of 2014
# -------------------------------
# With ``steps`` larger than ``horizon``, the forecaster appends each 7-day forecast to the
# window and forecasts again. Errors accumulate, and a recursive forecast tends towards
# the smooth seasonal course while the weather keeps varying around it.

steps = 28
recursive = forecaster.predict(temp_max[:n_train], steps=steps)  # (28,)
fig, ax = plt.subplots(figsize=(9, 3.8))
past = slice(n_train - 2 * window, n_train)
ahead = slice(n_train, n_train + steps)
ax.plot(dates[past], temp_max[past], color="0.3", lw=1, label="history (end of 2014)")
ax.plot(dates[ahead], temp_max[ahead], color="0.3", lw=1, ls="--", label="observed")
ax.plot(dates[ahead], recursive, color="C1", lw=1.5, label="forecast")
ax.axvspan(
    dates[n_train - window],
    dates[n_train - 1],
    color="C0",
    alpha=0.1,
    label=f"the window read ({window} days)",
)
for block in range(1, steps // horizon):
    ax.axvline(dates[n_train + block * horizon], color="C1", lw=0.6, ls=":")
ax.set_ylabel("daily maximum (°C)")
ax.set_title("A 28-day forecast: one 7-day block, then three fed back")
ax.legend(loc="upper left", fontsize=8)
fig.autofmt_xdate()
fig.tight_layout()
print(f"RMSE of the 28-day forecast: {rmse(recursive, temp_max[ahead]):.2f} °C")
