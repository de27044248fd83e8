"""The crnn demo: ``python -m crnn`` trains RNN, LSTM and GRU models on real data.

Two tasks, both on data that is installed with crnn or scikit-learn (nothing is
downloaded):

1. Digits: scikit-learn's 8x8 images of handwritten digits, each read row by row
   as a sequence of 8 steps with 8 features, classified by an RNNClassifier.
2. Seattle weather: the daily maximum temperature shipped in
   :mod:`crnn.datasets`, forecast a week ahead from the last four weeks by an
   RNNForecaster, against the persistence and climatology baselines.

Every model is trained on one part of the data and scored on a held-out part;
the training time of each is printed. ``--quick`` runs a reduced version in a
few seconds (used by the test suite).
"""

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.model_selection import train_test_split

from . import __version__
from ._estimators import RNNClassifier, RNNRegressor
from ._forecast import RNNForecaster, make_windows
from .datasets import load_seattle_weather

CELLS = ("rnn", "lstm", "gru")
# Per task, the network settings of the full demo and of --quick.
DIGITS = {
    False: {"hidden_layer_sizes": (64,), "max_iter": 40, "learning_rate_init": 0.01},
    True: {"hidden_layer_sizes": (32,), "max_iter": 5, "learning_rate_init": 0.01},
}
WEATHER = {
    False: {"hidden_layer_sizes": (32,), "max_iter": 30, "learning_rate_init": 0.001},
    True: {"hidden_layer_sizes": (16,), "max_iter": 3, "learning_rate_init": 0.01},
}


def _print(*args, **kwargs):
    print(*args, **kwargs, flush=True)


def _fit_timed(estimator, *args):
    """Fit, and return the wall-clock seconds it took."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The epoch budgets are fixed on purpose; stopping before convergence is expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(*args)
    return time.perf_counter() - start


def digits(quick):
    """Classify the digits read row by row; return {cell: test accuracy}."""
    X, y = load_digits(return_X_y=True)
    # Image rows become time steps; the raw intensities (0..16) need no scaling.
    X = X.reshape(-1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    if quick:
        X_train, y_train = X_train[:300], y_train[:300]
    _print(
        "\nDigits (scikit-learn): 8x8 images read row by row as 8 steps of 8 features;\n"
        f"  {len(X_train)} training and {len(X_test)} held-out test images"
    )
    _print(f"  {'model':<6} {'hidden':>8} {'epochs':>7} {'train time':>11} {'test accuracy':>14}")
    scores = {}
    for cell in CELLS:
        model = RNNClassifier(cell=cell, random_state=0, **DIGITS[quick])
        _print(f"  {cell.upper():<6}", end="")  # the row is finished once the model is trained
        seconds = _fit_timed(model, X_train, y_train)
        scores[cell] = accuracy_score(y_test, model.predict(X_test))
        _print(
            f" {model.hidden_layer_sizes!s:>8} {model.n_iter_:>7} {seconds:>9.1f} s "
            f"{scores[cell]:>14.3f}"
        )
    return scores


def weather(quick):
    """Forecast Seattle's daily maximum temperature a week ahead; return {name: test MAE}."""
    data = load_seattle_weather()
    temp_max = data.data[:, data.feature_names.index("temp_max")]
    window, horizon = 28, 7
    n_train = int(np.searchsorted(data.dates, np.datetime64("2015-01-01")))
    train, test = temp_max[:n_train], temp_max[n_train - window :]
    X_test, y_test = make_windows(test, window, horizon)
    _print(
        "\nSeattle daily maximum temperature (NOAA, shipped with crnn): forecast the next "
        f"{horizon} days\n  from the last {window}; trained on 2012-2014 ({n_train} days), "
        f"tested on every {horizon}-day forecast\n  in 2015 ({len(X_test)} forecasts); "
        "mean absolute error in degrees C"
    )
    errors = {
        "persistence": mean_absolute_error(y_test, np.repeat(X_test[:, -1:], horizon, axis=1))
    }
    # Climatology: the training years' mean of the same calendar days, +-15 days.
    day = (data.dates - data.dates.astype("datetime64[Y]")).astype(int)
    distance = np.abs((day[:n_train, np.newaxis] - np.arange(366) + 183) % 366 - 183)
    normal = (train[:, np.newaxis] * (distance <= 15)).sum(0) / (distance <= 15).sum(0)
    future_days = np.lib.stride_tricks.sliding_window_view(day[n_train:], horizon)
    errors["climatology"] = mean_absolute_error(y_test, normal[future_days])
    _print(f"  {'model':<12} {'train time':>11} {'test MAE':>9} {'vs persistence':>15}")
    _print(f"  {'persistence':<12} {'':>11} {errors['persistence']:>9.2f}")
    gain = errors["climatology"] / errors["persistence"] - 1
    _print(f"  {'climatology':<12} {'':>11} {errors['climatology']:>9.2f} {gain:>+15.0%}")
    for cell in CELLS:
        forecaster = RNNForecaster(
            RNNRegressor(cell=cell, random_state=0, **WEATHER[quick]),
            window=window,
            horizon=horizon,
        )
        _print(f"  {cell.upper():<12}", end="")
        seconds = _fit_timed(forecaster, train)
        errors[cell] = mean_absolute_error(y_test, forecaster.predict(X_test))
        gain = errors[cell] / errors["persistence"] - 1
        _print(f" {seconds:>9.1f} s {errors[cell]:>9.2f} {gain:>+15.0%}")
    return errors


def main(argv=None):
    """Run the demo; ``argv`` defaults to the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m crnn",
        description="Train RNN, LSTM and GRU models on real data shipped with crnn and "
        "scikit-learn, and print held-out scores and training times.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller models, fewer epochs and less data: a smoke test in a few seconds",
    )
    args = parser.parse_args(argv)
    _print(f"crnn {__version__} demo{' (quick)' if args.quick else ''}")
    start = time.perf_counter()
    digits(args.quick)
    weather(args.quick)
    _print(f"\nDone in {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
