"""est.stream(): step-by-step predictions with the output layer, as predict gives them whole."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from crnn import RNNClassifier, RNNRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

rng = np.random.default_rng(0)
X = rng.normal(size=(25, 9, 3))
LABELS = (X.cumsum(axis=1)[..., 0] > 0).astype(int) + (X[..., 1] > 1)  # 3 classes
VALUES = X.sum(axis=2).cumsum(axis=1)


def _tolerance(dtype):
    # float32: the whole-sequence forward runs its products on more rows at once, which
    # BLAS may sum in another order; float64 agrees to a few ulps.
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-13}


def _steps(stream, X):
    """Every step of X ``(n, T, F)`` through a stream of batch size n, as ``(n, T, ...)``."""
    return np.stack([stream.step(X[:, t]) for t in range(X.shape[1])], axis=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_seq2seq_classifier_stream_equals_predict(cell, dtype):
    clf = RNNClassifier(
        cell=cell, hidden_layer_sizes=(8, 6), max_iter=3, random_state=0, dtype=dtype
    ).fit(X, LABELS)
    np.testing.assert_array_equal(_steps(clf.stream(batch_size=25), X), clf.predict(X))
    for method in ("predict_proba", "predict_log_proba"):
        steps = _steps(clf.stream(batch_size=25, method=method), X)
        assert steps.dtype == np.float64
        np.testing.assert_allclose(steps, getattr(clf, method)(X), **_tolerance(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seq2seq_regressor_stream_equals_predict(dtype):
    reg = RNNRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype=dtype)
    reg.fit(X, VALUES)
    steps = _steps(reg.stream(batch_size=25), X)
    assert steps.dtype == np.float64
    np.testing.assert_allclose(steps, reg.predict(X), **_tolerance(dtype))
    two = RNNRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype=dtype)
    two.fit(X, np.stack([VALUES, -VALUES], axis=2))
    np.testing.assert_allclose(
        _steps(two.stream(batch_size=25), X), two.predict(X), **_tolerance(dtype)
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seq2vec_prediction_after_the_last_step(dtype):
    """Ragged sequences, one at a time: the prediction after each one's last step is predict's."""
    ragged = [x[: 3 + i % 6] for i, x in enumerate(X)]
    clf = RNNClassifier(
        hidden_layer_sizes=(8,), readout="last", max_iter=3, random_state=0, dtype=dtype
    )
    clf.fit(ragged, LABELS[:, 0])
    reg = RNNRegressor(
        cell="gru", hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype=dtype
    ).fit(ragged, VALUES[:, 0])
    label_stream, proba_stream, value_stream = (
        clf.stream(),
        clf.stream(method="predict_proba"),
        reg.stream(),
    )
    labels, proba, values = [], [], []
    for sequence in ragged:
        for s in (label_stream, proba_stream, value_stream):
            s.reset()
        for x in sequence:
            last = [s.step(x[np.newaxis]) for s in (label_stream, proba_stream, value_stream)]
        labels.append(last[0][0])
        proba.append(last[1][0])
        values.append(last[2][0])
    np.testing.assert_array_equal(labels, clf.predict(ragged))
    np.testing.assert_allclose(proba, clf.predict_proba(ragged), **_tolerance(dtype))
    np.testing.assert_allclose(values, reg.predict(ragged), **_tolerance(dtype))


def test_state_and_reset_agree_with_predicts_state():
    reg = RNNRegressor(hidden_layer_sizes=(6, 5), max_iter=3, random_state=0, dtype="float64")
    reg.fit(X, VALUES)
    stream = reg.stream(batch_size=25)
    first = _steps(stream, X[:, :4])
    _, state = reg.predict(X[:, :4], return_state=True)
    for a, b in zip(stream.state[0] + stream.state[1], state[0] + state[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    rest = reg.predict(X[:, 4:], initial_state=stream.state)
    np.testing.assert_allclose(_steps(stream, X[:, 4:]), rest, rtol=1e-12, atol=1e-13)
    stream.reset()
    np.testing.assert_array_equal(_steps(stream, X[:, :4]), first)
    stream.reset(state)  # predict's state starts the stream where predict stopped
    np.testing.assert_allclose(_steps(stream, X[:, 4:]), rest, rtol=1e-12, atol=1e-13)


def test_weights_are_copied():
    reg = RNNRegressor(hidden_layer_sizes=(6,), max_iter=2, random_state=0).fit(X, VALUES)
    stream = reg.stream()
    expected = stream.step(X[0, :1])
    reg.fit(X, -VALUES)
    stream.reset()
    np.testing.assert_array_equal(stream.step(X[0, :1]), expected)


def test_what_cannot_stream_is_refused_clearly():
    with pytest.raises(NotFittedError):
        RNNRegressor().stream()
    small = {"hidden_layer_sizes": (4,), "max_iter": 1, "random_state": 0}
    two_way = RNNRegressor(bidirectional=True, **small).fit(X, VALUES)
    with pytest.raises(ValueError, match="needs a one-way .* this one is bidirectional"):
        two_way.stream()
    encdec = RNNRegressor(pattern="encdec", **small).fit(X, VALUES[:, :3, np.newaxis])
    with pytest.raises(ValueError, match="seq2vec or seq2seq model.*'encdec'"):
        encdec.stream()
    vec2seq = RNNRegressor(pattern="vec2seq", **small).fit(X[:, 0], VALUES)
    with pytest.raises(ValueError, match="'vec2seq'"):
        vec2seq.stream()
    for pooled in ({"readout": "mean"}, {"pool_steps": 2}):
        seq2vec = RNNRegressor(**small, **pooled).fit(X, VALUES[:, -1])
        with pytest.raises(
            ValueError,
            match="stream.. carries the final state .* needs readout='last' and pool_steps=None",
        ):
            seq2vec.stream()
    reg = RNNRegressor(**small).fit(X, VALUES)
    with pytest.raises(ValueError, match=r"method must be one of \['predict'\]"):
        reg.stream(method="predict_proba")
    stream = reg.stream(batch_size=2)
    with pytest.raises(
        ValueError, match=r"x must have shape \(batch_size, n_features\) = \(2, 3\)"
    ):
        stream.step(X[0])
    with pytest.raises(ValueError, match="NaN or infinity"):
        stream.step(np.full((2, 3), np.nan))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stream_scales_inputs_and_targets_as_predict_does(dtype):
    """Raw units in, raw units out: the fitted input and target scaling are applied."""
    X_raw, y_raw = X * 10 + 5, VALUES * 100 - 3
    reg = RNNRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype=dtype)
    reg.fit(X_raw, y_raw)
    # The scaling is folded into the weights: equal to rounding in the targets' units.
    tolerance = _tolerance(dtype)
    tolerance["atol"] *= np.abs(y_raw).max()
    assert reg.input_mean_ is not None and reg.target_mean_ is not None
    steps = _steps(reg.stream(batch_size=25), X_raw)
    np.testing.assert_allclose(steps, reg.predict(X_raw), **tolerance)
    unscaled = RNNRegressor(
        hidden_layer_sizes=(8,),
        max_iter=3,
        random_state=0,
        dtype=dtype,
        scale_inputs=False,
        scale_targets=False,
    ).fit(X_raw, y_raw)
    assert unscaled.input_mean_ is None and unscaled.target_mean_ is None
    np.testing.assert_allclose(
        _steps(unscaled.stream(batch_size=25), X_raw),
        unscaled.predict(X_raw),
        **_tolerance(dtype),
    )
    clf = RNNClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, dtype=dtype)
    clf.fit(X_raw, LABELS)
    assert clf.input_mean_ is not None
    np.testing.assert_array_equal(_steps(clf.stream(batch_size=25), X_raw), clf.predict(X_raw))
