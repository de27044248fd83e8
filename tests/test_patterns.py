"""Each sequence pattern learns something it cannot fake.

Small networks and few epochs keep these fast; every threshold is well above
what a model without the pattern's ability (memory, the future, the decoder)
could reach.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from crnn._estimators import RNNClassifier, RNNRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_seq2vec_digits_rows_as_steps_lstm():
    """Digits read row by row (8 steps of 8 pixels): test accuracy >= 0.95."""
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 8, 8) / 16
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    clf = RNNClassifier(
        cell="lstm",
        hidden_layer_sizes=(48,),
        learning_rate_init=5e-3,
        max_iter=30,
        random_state=0,
    )
    clf.fit(X_train, y_train)
    assert clf.pattern_ == "seq2vec"
    assert clf.score(X_test, y_test) >= 0.95


def _series(n_steps, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    return np.sin(0.3 * t) + 0.5 * np.sin(0.77 * t + 1) + 0.05 * rng.normal(size=n_steps)


def test_seq2seq_forecast_beats_persistence():
    """The next value at every step: a quarter of the persistence baseline's error or less."""
    windows = np.lib.stride_tricks.sliding_window_view(_series(6000, seed=0), 41)[::5]
    X, y = windows[:, :-1], windows[:, 1:]
    reg = RNNRegressor(
        hidden_layer_sizes=(24,), learning_rate_init=1e-2, max_iter=15, random_state=0
    )
    reg.fit(X[:800], y[:800])
    assert reg.pattern_ == "seq2seq"
    X_test, y_test = X[900:], y[900:]
    # Skip the first steps, where the network has seen too little of the series.
    model_mse = np.mean((reg.predict(X_test)[:, 5:] - y_test[:, 5:]) ** 2)
    persistence_mse = np.mean((X_test[:, 5:] - y_test[:, 5:]) ** 2)
    assert model_mse < 0.25 * persistence_mse


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_seq2seq_tagging_needs_memory(cell):
    """Tag each step with the previous step's symbol (chance: 1/3 without memory)."""
    rng = np.random.default_rng(1)
    symbols = rng.integers(0, 3, size=(400, 12))
    X = np.eye(3)[symbols]
    y = np.concatenate([np.full((400, 1), 3), symbols[:, :-1]], axis=1)  # 3 = "no previous"
    clf = RNNClassifier(
        cell=cell, hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=20, random_state=0
    )
    clf.fit(X[:300], y[:300])
    assert clf.pattern_ == "seq2seq"
    proba = clf.predict_proba(X[300:])
    assert proba.shape == (100, 12, 4)
    np.testing.assert_allclose(proba.sum(axis=2), 1.0)
    assert clf.score(X[300:], y[300:]) >= 0.95


def test_bidirectional_tagging_sees_the_future():
    """Tag each step with the next step's symbol: only a bidirectional network can."""
    rng = np.random.default_rng(2)
    symbols = rng.integers(0, 2, size=(400, 10))
    X = np.eye(2)[symbols]
    y = np.concatenate([symbols[:, 1:], np.full((400, 1), 2)], axis=1)  # 2 = "no next"
    params = dict(hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=20, random_state=0)
    both = RNNClassifier(bidirectional=True, **params).fit(X[:300], y[:300])
    forward_only = RNNClassifier(**params).fit(X[:300], y[:300])
    assert both.score(X[300:], y[300:]) >= 0.95
    assert forward_only.score(X[300:], y[300:]) < 0.7


def test_seq2vec_regression_on_variable_length_lists():
    """The mean of sequences of 3 to 15 steps given as a list, predicted from their own end."""
    rng = np.random.default_rng(3)
    X = [rng.uniform(-1, 1, size=(n, 1)) for n in rng.integers(3, 16, size=500)]
    y = np.array([x.mean() for x in X])
    reg = RNNRegressor(
        hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=25, random_state=0
    )
    reg.fit(X[:400], y[:400])
    assert reg.score(X[400:], y[400:]) >= 0.95


def test_vec2seq_generates_sequences_from_vectors():
    """Amplitude and phase in, ten samples of the sine wave out: R^2 >= 0.95."""
    rng = np.random.default_rng(4)
    v = rng.uniform(-1, 1, size=(1000, 2))
    y = v[:, :1] * np.sin(0.5 * np.arange(10) + 3 * v[:, 1:])
    reg = RNNRegressor(
        pattern="vec2seq",
        hidden_layer_sizes=(32,),
        learning_rate_init=1e-2,
        max_iter=40,
        random_state=0,
    )
    reg.fit(v[:800], y[:800])
    assert reg.n_steps_out_ == 10
    assert reg.predict(v[800:]).shape == (200, 10)
    assert reg.score(v[800:], y[800:]) >= 0.95
    assert reg.predict(v[800:803], n_steps_out=4).shape == (3, 4)


def test_encdec_reverses_variable_length_sequences():
    """Reverse sequences of 3 to 6 symbols, decoding from the encoder's final state only."""
    rng = np.random.default_rng(5)
    lengths = rng.integers(3, 7, size=1500)
    symbols = [rng.integers(0, 4, size=n) for n in lengths]
    X = [np.eye(4)[s] for s in symbols]
    y = [s[::-1] for s in symbols]
    clf = RNNClassifier(
        pattern="encdec",
        hidden_layer_sizes=(48,),
        learning_rate_init=1e-2,
        max_iter=25,
        random_state=0,
    )
    clf.fit(X[:1200], y[:1200])
    predicted = clf.predict(X[1200:], n_steps_out=lengths[1200:])
    assert [len(p) for p in predicted] == list(lengths[1200:])
    step_accuracy = np.mean(np.concatenate(predicted) == np.concatenate(y[1200:]))
    assert step_accuracy >= 0.95
    assert clf.score(X[1200:], y[1200:]) == pytest.approx(step_accuracy)
