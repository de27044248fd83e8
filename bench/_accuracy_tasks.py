"""The tasks of bench/accuracy.py: sequence data generated from published definitions.

Every task is a function ``(seed, quick) -> Task``; ``quick`` shrinks it to seconds for the
smoke test. Arrays are 3D ``(n_sequences, n_steps, n_features)`` or 2D univariate
``(n_sequences, n_steps)``, as a user would pass them, at their raw scale.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Task:
    """Train and test data. ``kind`` is "clf" (one label per sequence), "reg" (one value
    per sequence) or "seq2seq" (one value per step, the next value of a series)."""

    kind: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _split(kind, X, y, n_train):
    return Task(kind, X[:n_train], y[:n_train], X[n_train:], y[n_train:])


def _balanced_labels(rng, n_classes, per_class_train, n_test):
    """Labels of a training set with ``per_class_train`` of each class, then a test set."""
    train = np.repeat(np.arange(n_classes), per_class_train)
    return np.concatenate([rng.permutation(train), rng.integers(0, n_classes, size=n_test)])


def cbf_series(y, rng, n_steps=128):
    """Cylinder-Bell-Funnel (Saito, 1994): a plateau, a rising ramp or a falling ramp of
    height 6 + N(0, 1) between a ~ U{16..32} and b = a + U{32..96}, plus N(0, 1) noise."""
    t = np.arange(n_steps)
    n = len(y)
    a = rng.integers(16, 33, size=(n, 1))
    b = a + rng.integers(32, 97, size=(n, 1))
    height = 6 + rng.normal(size=(n, 1))
    inside = (t >= a) & (t <= b)
    shape = np.select(
        [y[:, None] == 0, y[:, None] == 1],
        [np.ones((n, n_steps)), (t - a) / (b - a)],
        (b - t) / (b - a),
    )
    return height * inside * shape + rng.normal(size=(n, n_steps))


def synthetic_control_series(y, rng, n_steps=60):
    """Synthetic Control (Alcock and Manolopoulos, 1999): m + r s (m = 30, s = 2,
    r ~ U(-3, 3) per step) plus, by class: nothing (normal), a sine of amplitude and
    period U(10, 15) (cyclic), a trend +-g t with g ~ U(0.2, 0.5) (increasing,
    decreasing), a step +-x, x ~ U(7.5, 20), from t3 ~ U(n/3, 2n/3) on (upward and
    downward shift)."""
    n = len(y)
    t = np.arange(n_steps)
    base = 30 + 2 * rng.uniform(-3, 3, size=(n, n_steps))
    amp, period = rng.uniform(10, 15, size=(2, n, 1))
    g = rng.uniform(0.2, 0.5, size=(n, 1))
    x = rng.uniform(7.5, 20, size=(n, 1))
    step = t >= rng.uniform(n_steps / 3, 2 * n_steps / 3, size=(n, 1))
    extra = [
        np.zeros((n, n_steps)),
        amp * np.sin(2 * np.pi * t / period),
        g * t,
        -g * t,
        x * step,
        -x * step,
    ]
    return base + np.choose(y[:, None], extra)


def two_patterns_series(y, rng, n_steps=128):
    """Two Patterns (Geurts, 2002): N(0, 1) noise holding two patterns, each an upward
    step (-5 then +5) or a downward step (+5 then -5) of length U{8..32}, the first in
    the first half and the second in the second half; the class is the pair's order
    (UU, UD, DU, DD)."""
    n = len(y)
    X = rng.normal(size=(n, n_steps))
    half = n_steps // 2
    for i, label in enumerate(y):
        for k, (lo, hi) in enumerate(((0, half), (half, n_steps))):
            length = rng.integers(8, 33)
            start = rng.integers(lo, hi - length + 1)
            up = ((label >> (1 - k)) & 1) == 0
            first, second = (-5.0, 5.0) if up else (5.0, -5.0)
            X[i, start : start + length // 2] = first
            X[i, start + length // 2 : start + length] = second
    return X


def _classes(make, n_classes, per_class, n_test, quick, **kwargs):
    def task(seed, quick=quick):
        rng = np.random.default_rng(seed)
        pc, nt = (min(per_class, 4), 20) if quick else (per_class, n_test)
        y = _balanced_labels(rng, n_classes, pc, nt)
        return _split("clf", make(y, rng, **kwargs), y, n_classes * pc)

    return task


def long_noisy(seed, quick=False):
    """A short shape (24 steps: a rising or a falling triangle, or one period of a sine,
    of amplitude 3) at a random position in 250 steps of N(0, 1) noise; 3 classes."""
    rng = np.random.default_rng(seed)
    steps, width = (60, 12) if quick else (250, 24)
    y = _balanced_labels(rng, 3, 4 if quick else 40, 20 if quick else 300)
    X = rng.normal(size=(len(y), steps))
    u = np.linspace(0, 1, width)
    shapes = 3 * np.stack([1 - np.abs(2 * u - 1), np.abs(2 * u - 1) - 1, np.sin(2 * np.pi * u)])
    for i, label in enumerate(y):
        start = rng.integers(0, steps - width + 1)
        X[i, start : start + width] += shapes[label]
    return _split("clf", X, y, 3 * (4 if quick else 40))


def multiscale(seed, quick=False):
    """Four features on scales 1e-2 to 1e3 with offsets up to 1e4: the class (3) sets
    the frequency of feature 0 and the slope of feature 1; features 2 and 3 are noise."""
    rng = np.random.default_rng(seed)
    steps = 15 if quick else 40
    y = _balanced_labels(rng, 3, 4 if quick else 40, 20 if quick else 300)
    n = len(y)
    t = np.arange(steps)
    freq = np.array([0.25, 0.35, 0.45])[y][:, None] + rng.normal(0, 0.03, size=(n, 1))
    slope = np.array([-0.02, 0.0, 0.02])[y][:, None]
    X = rng.normal(0, 0.7, size=(n, steps, 4))
    X[..., 0] += np.sin(freq * t + rng.uniform(0, 2 * np.pi, size=(n, 1)))
    X[..., 1] += slope * t
    X = X * [1e-2, 1.0, 1e3, 10.0] + [0.0, 5.0, 1e4, -50.0]
    return _split("clf", X, y, 3 * (4 if quick else 40))


def _digits(n_train):
    def digits(seed, quick=False):
        """scikit-learn's digits as 8 steps (rows) of 8 pixels, raw values 0-16; a random
        ``n_train`` of them train, the rest test."""
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        order = np.random.default_rng(seed).permutation(len(y))
        X, y = X[order].reshape(-1, 8, 8), y[order]
        if quick:
            return _split("clf", X[:80], y[:80], 60)
        return _split("clf", X, y, n_train)

    return digits


def amplitude(seed, quick=False):
    """Univariate: a sine of amplitude A ~ U(1, 50), frequency U(0.2, 0.6) and random
    phase in N(0, 3^2) noise, 50 steps; the target is A (1-50)."""
    rng = np.random.default_rng(seed)
    n_train, n_test, steps = (40, 20, 15) if quick else (200, 300, 50)
    n = n_train + n_test
    A = rng.uniform(1, 50, size=n)
    w = rng.uniform(0.2, 0.6, size=(n, 1))
    X = A[:, None] * np.sin(w * np.arange(steps) + rng.uniform(0, 2 * np.pi, size=(n, 1)))
    return _split("reg", X + rng.normal(0, 3, size=X.shape), A, n_train)


def level_1e3(seed, quick=False):
    """Two N(0, 1) features, 30 steps; the target, near 1e3, is
    1000 + 300 mean(x0 over steps 10-19) + 300 mean(x0 x1) + N(0, 10^2)."""
    rng = np.random.default_rng(seed)
    n_train, n_test, steps = (40, 20, 20) if quick else (300, 300, 30)
    n = n_train + n_test
    X = rng.normal(size=(n, steps, 2))
    y = 1000 + 300 * X[:, 10:20, 0].mean(axis=1) + 300 * (X[..., 0] * X[..., 1]).mean(axis=1)
    return _split("reg", X, y + rng.normal(0, 10, size=n), n_train)


def weather(seed, quick=False):
    """crnn's Seattle weather (raw units): the last 14 days of temp_max, temp_min,
    precipitation and wind -> the next day's temp_max (deg C). Train on every window of
    2012-2014 (1082), test on 2015; the seed changes only the models."""
    from crnn.datasets import load_seattle_weather

    weather = load_seattle_weather()
    data = weather.data
    windows = np.lib.stride_tricks.sliding_window_view(data, 15, axis=0).transpose(0, 2, 1)
    X, y = windows[:, :14], windows[:, 14, weather.feature_names.index("temp_max")]
    train = np.flatnonzero(np.arange(len(X)) + 14 < 1096)
    test = np.flatnonzero(np.arange(len(X)) >= 1096)
    if quick:
        train, test = train[:40], test[:20]
    return Task("reg", X[train], y[train], X[test], y[test])


def forecast(seed, quick=False):
    """Seq2seq: the next value at every step of 48-step windows of a series around 50 (a
    daily and a weekly-like cycle, amplitudes 10 and 5, plus AR(1) noise); windows from
    the first 70% of the series train, from the rest test."""
    rng = np.random.default_rng(seed)
    length, window = (400, 16) if quick else (4000, 48)
    t = np.arange(length)
    noise = np.zeros(length)
    e = rng.normal(0, 1.5, size=length)
    for i in range(1, length):
        noise[i] = 0.7 * noise[i - 1] + e[i]
    phase = rng.uniform(0, 2 * np.pi, size=2)
    series = 50 + 10 * np.sin(2 * np.pi * t / 24 + phase[0])
    series += 5 * np.sin(2 * np.pi * t / 7.3 + phase[1]) + noise
    w = np.lib.stride_tricks.sliding_window_view(series, window + 1)
    cut = int(0.7 * len(w))
    train, test = w[: cut - window : 8], w[cut::8]
    return Task("seq2seq", train[:, :-1], train[:, 1:], test[:, :-1], test[:, 1:])


# name -> (task, seeds); tiny tasks are cheap and noisy, so they get more seeds.
TASKS = {
    "cbf (10/class)": (_classes(cbf_series, 3, 10, 300, False), 5),
    "cbf tiny (5/class)": (_classes(cbf_series, 3, 5, 300, False), 5),
    "synthetic control (30/class)": (_classes(synthetic_control_series, 6, 30, 300, False), 3),
    "synthetic control tiny (5/class)": (
        _classes(synthetic_control_series, 6, 5, 300, False),
        5,
    ),
    "two patterns (50/class)": (_classes(two_patterns_series, 4, 50, 400, False), 3),
    "long noisy (250 steps)": (long_noisy, 3),
    "multiscale features": (multiscale, 3),
    "digits (8x8, raw)": (_digits(500), 3),
    "digits large (8x8, raw)": (_digits(1300), 3),
    "amplitude (y in 1-50)": (amplitude, 3),
    "level (y near 1e3)": (level_1e3, 3),
    "weather (next-day temp)": (weather, 3),
    "forecast (seq2seq)": (forecast, 3),
}
