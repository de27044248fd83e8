"""crnn's RNNForecaster against naive, seasonal naive, drift, ETS and (S)ARIMA forecasts.

Every series is generated here (several seeds) or shipped with crnn (Seattle weather), split
into a training part and a test part. Every model is fit once on the training part, then
forecasts ``H`` steps from origins spread over the test part, each from the whole history up
to its origin (the statistical peers are re-filtered on it with the parameters fit on the
training part). Errors:
RMSE, MAE and MASE (MAE over the in-sample MAE of the seasonal naive forecast, period 1 for
the weather), of the one-step forecasts and of the whole-horizon ones (steps 1..H pooled).

    python bench/forecast.py            # every series, 3 seeds, about two minutes
    python bench/forecast.py --quick    # one seed, short series: a smoke test

statsmodels (the ETS and SARIMA peers) is optional: without it those rows are left out.
The Markdown table goes to stdout; bench/FORECAST.md holds a full run and its reading.
"""

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np

from crnn import RNNForecaster
from crnn.datasets import load_seattle_weather


@dataclass
class Series:
    name: str
    values: np.ndarray
    n_train: int
    period: int  # the season of the seasonal naive forecast and of the seasonal peers
    horizon: int
    stride: int  # steps between forecast origins in the test part
    seasonal_period: int | None  # what a user tells RNNForecaster (None: no season to tell)


def _ar_noise(rng, n, phi, sigma):
    noise = np.zeros(n)
    for i, shock in enumerate(sigma * rng.standard_normal(n)):
        noise[i] = phi * noise[i - 1] + shock
    return noise


def _season(t, period, rng):
    """A seasonal shape of two harmonics with random phases, amplitude about 1."""
    phases = rng.uniform(0, 2 * np.pi, size=2)
    return np.sin(2 * np.pi * t / period + phases[0]) + 0.4 * np.sin(
        4 * np.pi * t / period + phases[1]
    )


def synthetic(seed, scale=1.0):
    """The generated series of one seed; ``scale`` < 1 shortens them (smoke tests)."""
    rng = np.random.default_rng(seed)
    out = []
    n = int(288 * scale)  # 24 "years" of monthly data; the last 4 are the test part
    t = np.arange(n)
    out.append(
        Series(
            "trend + additive season (monthly)",
            50 + 0.3 * t + 8 * _season(t, 12, rng) + _ar_noise(rng, n, 0.5, 1.5),
            n_train=n - 48,
            period=12,
            horizon=12,
            stride=3,
            seasonal_period=12,
        )
    )
    # Airline-like: growth, seasonal swings proportional to the level, multiplicative noise.
    level = 100 * np.exp(0.006 * t)
    out.append(
        Series(
            "multiplicative season (monthly)",
            level * (1 + 0.25 * _season(t, 12, rng)) * np.exp(_ar_noise(rng, n, 0.3, 0.03)),
            n_train=n - 48,
            period=12,
            horizon=12,
            stride=3,
            seasonal_period=12,
        )
    )
    n = int(800 * scale)  # daily, weekly cycle; the last 140 days are the test part
    t = np.arange(n)
    jumps = rng.random(n) < 1 / 120
    shifts = np.cumsum(jumps * rng.choice([-1, 1], size=n) * rng.uniform(4, 8, size=n))
    out.append(
        Series(
            "level shifts + weekly season (daily)",
            100 + 4 * _season(t, 7, rng) + shifts + rng.normal(0, 1, n),
            n_train=n - 140,
            period=7,
            horizon=14,
            stride=2,
            seasonal_period=7,
        )
    )
    out.append(
        Series(
            "weekly season + AR(1) noise (daily)",
            20 + 5 * _season(t, 7, rng) + _ar_noise(rng, n, 0.9, 0.5),
            n_train=n - 140,
            period=7,
            horizon=14,
            stride=2,
            seasonal_period=7,
        )
    )
    return out


def weather(scale=1.0):
    data = load_seattle_weather()
    temp_max = data.data[:, data.feature_names.index("temp_max")]
    n_train = 1096  # 2012-2014; forecast 2015
    if scale < 1:
        temp_max, n_train = temp_max[-int(500 * scale) - 100 :], int(500 * scale)
    # The season is a year: seasonal naive uses it, but there is too little data to difference it.
    return Series(
        "Seattle temp_max (daily)", temp_max, n_train, 365 if scale == 1 else 7, 7, 7, None
    )


# Forecasters: each maps (train, histories, H) to forecasts (n_origins, H) -------------------


def naive(series, train, histories, H):
    return np.stack([np.full(H, h[-1]) for h in histories])


def seasonal_naive(series, train, histories, H):
    m = series.period
    return np.stack(
        [np.resize(h[-m:], H) if m >= H else np.tile(h[-m:], -(-H // m))[:H] for h in histories]
    )


def drift(series, train, histories, H):
    steps = np.arange(1, H + 1)
    return np.stack([h[-1] + steps * (h[-1] - h[0]) / (len(h) - 1) for h in histories])


def ets(series, train, histories, H):
    """Holt-Winters ETS; trend (damped or none) and season (additive or multiplicative) by AICc."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal_options = [None] if series.period > 52 else ["add", "mul"]
    if np.any(train <= 0):
        seasonal_options = [s for s in seasonal_options if s != "mul"]
    best, best_aicc = None, np.inf
    for trend in (None, "add"):
        for seasonal in seasonal_options:
            spec = {
                "trend": trend,
                "damped_trend": trend is not None,
                "seasonal": seasonal,
                "seasonal_periods": series.period if seasonal else None,
            }
            fit = ExponentialSmoothing(train, **spec).fit()
            if fit.aicc < best_aicc:
                best, best_aicc = spec, fit.aicc
    params = ExponentialSmoothing(train, **best).fit().params
    known = {"initialization_method": "known", "initial_level": params["initial_level"]}
    smoothing = {"smoothing_level": params["smoothing_level"]}
    if best["trend"]:
        known["initial_trend"] = params["initial_trend"]
        smoothing.update(
            smoothing_trend=params["smoothing_trend"], damping_trend=params["damping_trend"]
        )
    if best["seasonal"]:
        known["initial_seasonal"] = params["initial_seasons"]
        smoothing["smoothing_seasonal"] = params["smoothing_seasonal"]

    def forecast(history):  # the training fit's parameters, filtered over the history
        model = ExponentialSmoothing(history, **best, **known)
        return model.fit(**smoothing, optimized=False).forecast(H)

    return np.stack([forecast(h) for h in histories])


def sarima(series, train, histories, H, quick=False):
    """(S)ARIMA by AIC over a small grid (its first model only if quick); short seasons only."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    m = series.period
    if m <= 52:
        # The airline model, and a stationary ARMA around a seasonal unit root with drift.
        grid = [((0, 1, 1), (0, 1, 1, m), "n"), ((1, 0, 1), (0, 1, 1, m), "c")]
    else:
        grid = [((2, 0, 1), (0, 0, 0, 0), "c"), ((1, 1, 1), (0, 0, 0, 0), "n")]
    best, best_aic = None, np.inf
    for order, seasonal, trend in grid[:1] if quick else grid:
        fit = SARIMAX(train, order=order, seasonal_order=seasonal, trend=trend).fit(disp=False)
        if fit.aic < best_aic:
            best, best_aic = fit, fit.aic
    return np.stack([best.apply(h).forecast(H) for h in histories])


CRNN_VARIANTS = {
    # name: RNNForecaster parameters ("H": the bench horizon; "2m": two seasons, at least 14)
    "crnn": {},
    "crnn, no transforms": {"transform": None, "difference": 0},
    "crnn, seasonal difference auto": {"seasonal_difference": "auto"},
    "crnn, direct H": {"horizon": "H"},
    "crnn, window 2m": {"window": "2m"},
}


def crnn_forecaster(params, seed):
    def forecast(series, train, histories, H):
        kwargs = dict(params)
        if kwargs.get("horizon") == "H":
            kwargs["horizon"] = H
        if kwargs.get("window") == "2m":
            kwargs["window"] = max(14, 2 * series.period) if series.period <= 52 else 28
        model = RNNForecaster(seasonal_period=series.seasonal_period, random_state=seed, **kwargs)
        model.fit(train)
        return model.predict(list(histories), steps=H)

    return forecast


def _errors(forecasts, truth, scale):
    one, whole = (forecasts[:, :1] - truth[:, :1]), (forecasts - truth)
    return {
        "rmse1": np.sqrt(np.mean(one**2)),
        "mae1": np.mean(np.abs(one)),
        "mase1": np.mean(np.abs(one)) / scale,
        "rmseH": np.sqrt(np.mean(whole**2)),
        "maeH": np.mean(np.abs(whole)),
        "maseH": np.mean(np.abs(whole)) / scale,
    }


def evaluate(series, models):
    train = series.values[: series.n_train]
    H = series.horizon
    origins = range(series.n_train, len(series.values) - H + 1, series.stride)
    histories = [series.values[:t] for t in origins]
    truth = np.stack([series.values[t : t + H] for t in origins])
    m = series.period if series.period <= 52 else 1
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    rows = {}
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            forecasts = model(series, train, histories, H)
        rows[name] = {**_errors(forecasts, truth, scale), "seconds": time.perf_counter() - start}
        print(
            f"{series.name:40s} {name:22s} {rows[name]['rmseH']:8.3g} "
            f"{rows[name]['seconds']:6.1f}s",
            file=sys.stderr,
            flush=True,
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, short series")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=None, help="series length factor")
    parser.add_argument("--variants", action="store_true", help="also run the crnn variants")
    args = parser.parse_args(argv)
    scale = args.scale or (0.5 if args.quick else 1.0)
    seeds = range(1 if args.quick else args.seeds)
    try:
        import statsmodels  # noqa: F401

        peers = {"ETS": ets, "SARIMA": partial(sarima, quick=args.quick)}
    except ImportError:
        peers = {}
        print("statsmodels is not installed: the ETS and SARIMA peers are left out.\n")
    variants = CRNN_VARIANTS if args.variants else {"crnn": {}}
    results = {}  # series name -> model -> list of error dicts (one per seed)
    for seed in seeds:
        cases = synthetic(seed, scale) + ([weather(scale)] if seed == 0 else [])
        for series in cases:
            models = {"naive": naive, "seasonal naive": seasonal_naive, "drift": drift, **peers}
            models.update({k: crnn_forecaster(v, seed) for k, v in variants.items()})
            for name, row in evaluate(series, models).items():
                results.setdefault(series.name, {}).setdefault(name, []).append(row)
    print(render(results, len(seeds)))
    return results


def render(results, n_seeds):
    lines = [
        (
            f"Means over {n_seeds} seed(s) (the weather: one series). MASE: MAE over the "
            "in-sample MAE of the seasonal naive forecast. Seconds: to fit and forecast "
            "every origin."
        ),
        "",
    ]
    header = "| series | model | RMSE 1 | MAE 1 | MASE 1 | RMSE H | MAE H | MASE H | seconds |"
    lines += [header, "|---" * 9 + "|"]
    for name, models in results.items():
        for model, rows in models.items():
            mean = {k: np.mean([r[k] for r in rows]) for k in rows[0]}
            lines.append(
                f"| {name} | {model} | {mean['rmse1']:.3g} | {mean['mae1']:.3g} | "
                f"{mean['mase1']:.3g} | {mean['rmseH']:.3g} | {mean['maeH']:.3g} | "
                f"{mean['maseH']:.3g} | {mean['seconds']:.2f} |"
            )
    lines += [
        "",
        (
            "Summary (whole-horizon RMSE): crnn / best of naive and seasonal naive, crnn / "
            "best of ETS and SARIMA."
        ),
        "",
        "| series | crnn / naive best | crnn / stat best |",
        "|---|---|---|",
    ]
    for name, models in results.items():
        rmse = {k: np.mean([r["rmseH"] for r in v]) for k, v in models.items()}
        naive_best = min(rmse["naive"], rmse["seasonal naive"])
        stat = [rmse[k] for k in ("ETS", "SARIMA") if k in rmse]
        stat_ratio = f"{rmse['crnn'] / min(stat):.2f}" if stat else "n/a"
        lines.append(f"| {name} | {rmse['crnn'] / naive_best:.2f} | {stat_ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
