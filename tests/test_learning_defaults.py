"""What makes the defaults learn: input and target scaling, the stopping rule, alpha's scaling.

Scaling is checked by equivalence: a model that standardizes internally must train and
predict exactly as the same model trained on data standardized beforehand.
"""

import pickle

import numpy as np
import pytest

import crnn
from crnn import RNNClassifier, RNNRegressor
from crnn._training import AUTO_EARLY_STOPPING_MIN_SEQUENCES, MIN_UPDATES_NO_CHANGE
from crnn.preprocessing import SequenceScaler

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(5,), max_iter=4, random_state=0, dtype="float64")


def _ragged(n=30, seed=0):
    """Sequences of 2-8 steps, features on scales 1e-2 and 1e3 with offsets."""
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(k, 2)) * [1e-2, 1e3] + [3.0, -5e3] for k in rng.integers(2, 9, size=n)
    ]


def _targets(X, pattern):
    if pattern == "seq2vec":
        return np.array([x[:, 0].sum() for x in X]) * 1e3 + 40
    if pattern == "seq2seq":
        return [np.cumsum(x[:, 1]) * 0.1 + 7 for x in X]
    return [x[:3, 1] * 2 + 100 for x in X]  # encdec: three steps


def test_input_statistics_are_sequence_scaler_statistics():
    X = _ragged()
    clf = RNNClassifier(**SMALL).fit(X, np.arange(30) % 2)
    scaler = SequenceScaler().fit(X)
    np.testing.assert_allclose(clf.input_mean_, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(clf.input_scale_, scaler.scale_, rtol=1e-12)
    assert clf.input_mean_.shape == clf.input_scale_.shape == (clf.n_features_in_,)
    off = RNNClassifier(scale_inputs=False, **SMALL).fit(X, np.arange(30) % 2)
    assert off.input_mean_ is None and off.input_scale_ is None


@pytest.mark.parametrize("pattern", ["seq2vec", "seq2seq", "encdec"])
def test_internal_scaling_equals_scaling_beforehand(pattern):
    """Inputs and targets standardized inside fit give the model fitted on standardized
    data, and predictions in the original units (the decoder feeds back scaled units)."""
    X = _ragged()
    y = _targets(X, pattern)
    inside = RNNRegressor(pattern=pattern, **SMALL).fit(X, y)
    Z = SequenceScaler().fit_transform(X)
    if pattern == "seq2vec":
        t_mean, t_scale = y.mean(), y.std()
        y_scaled = (y - t_mean) / t_scale
    else:
        flat = np.concatenate(y)
        t_mean, t_scale = flat.mean(), flat.std()
        y_scaled = [(s - t_mean) / t_scale for s in y]
    np.testing.assert_allclose(inside.target_mean_, [t_mean], rtol=1e-12)
    np.testing.assert_allclose(inside.target_scale_, [t_scale], rtol=1e-12)
    outside = RNNRegressor(pattern=pattern, scale_inputs=False, scale_targets=False, **SMALL)
    outside.fit(Z, y_scaled)
    np.testing.assert_allclose(inside.params_, outside.params_, rtol=1e-9, atol=1e-12)
    predicted, reference = inside.predict(X), outside.predict(Z)
    if pattern == "seq2vec":
        np.testing.assert_allclose(predicted, reference * t_scale + t_mean, rtol=1e-9)
    else:
        for p, r in zip(predicted, reference):
            np.testing.assert_allclose(p, r * t_scale + t_mean, rtol=1e-9)
    assert inside.score(X, y) == pytest.approx(outside.score(Z, y_scaled), rel=1e-9)


def test_vec2seq_inputs_are_scaled_over_the_vectors():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(40, 3)) * [1, 10, 100]
    y = rng.normal(size=(40, 4))
    reg = RNNRegressor(pattern="vec2seq", **SMALL).fit(v, y)
    np.testing.assert_allclose(reg.input_mean_, v.mean(axis=0))
    np.testing.assert_allclose(reg.input_scale_, v.std(axis=0))
    ref = RNNRegressor(pattern="vec2seq", scale_inputs=False, **SMALL)
    ref.fit((v - v.mean(axis=0)) / v.std(axis=0), y)
    np.testing.assert_allclose(reg.params_, ref.params_, rtol=1e-9, atol=1e-12)


def test_partial_fit_keeps_the_first_call_statistics():
    X = _ragged()
    y = _targets(X, "seq2vec")
    reg = RNNRegressor(**SMALL).partial_fit(X[:10], y[:10])
    first = (reg.input_mean_.copy(), reg.input_scale_.copy(), reg.target_mean_.copy())
    np.testing.assert_allclose(first[0], SequenceScaler().fit(X[:10]).mean_)
    reg.partial_fit([x * 10 + 1 for x in X[10:]], y[10:] * 5)
    for kept, now in zip(first, (reg.input_mean_, reg.input_scale_, reg.target_mean_)):
        np.testing.assert_array_equal(kept, now)
    reg.set_params(warm_start=True).fit(X[10:], y[10:])
    np.testing.assert_array_equal(first[0], reg.input_mean_)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scaling_statistics_round_trip_bit_for_bit(tmp_path, dtype):
    X = _ragged()
    y = _targets(X, "seq2seq")
    reg = RNNRegressor(**{**SMALL, "dtype": dtype}).fit(X, y)
    path = tmp_path / "model.npz"
    crnn.save(reg, path)
    for copy in (crnn.load(path), pickle.loads(pickle.dumps(reg))):
        for name in ("input_mean_", "input_scale_", "target_mean_", "target_scale_"):
            a, b = getattr(reg, name), getattr(copy, name)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
        for p, q in zip(reg.predict(X), copy.predict(X)):
            np.testing.assert_array_equal(p, q)
    off = RNNRegressor(scale_inputs=False, scale_targets=False, **SMALL).fit(X, y)
    crnn.save(off, path)
    loaded = crnn.load(path)
    assert loaded.input_mean_ is None and loaded.target_scale_ is None


def test_large_raw_targets_are_learned():
    """A target near 1e3 from raw inputs: the defaults beat the mean by far; unscaled
    targets leave the model near the mean (the failure this default removes)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 8, 2)) * [1.0, 50.0]
    y = 1000 + 200 * X[:, -3:, 0].mean(axis=1)
    params = dict(hidden_layer_sizes=(16,), max_iter=40, learning_rate_init=1e-2, random_state=0)
    scaled = RNNRegressor(**params).fit(X[:150], y[:150])
    raw = RNNRegressor(scale_inputs=False, scale_targets=False, **params)
    raw.fit(X[:150], y[:150])
    assert scaled.score(X[150:], y[150:]) > 0.8
    assert raw.score(X[150:], y[150:]) < 0.5


# ---------------------------------------------------------------- the stopping rule


@pytest.mark.parametrize(
    ("n", "batch_size", "updates_per_epoch", "epochs"),
    [(5, "auto", 1, 501), (36, "auto", 2, 251), (100, "auto", 4, 126), (400, 8, 50, 12)],
)
def test_no_stop_before_the_minimum_number_of_updates(n, batch_size, updates_per_epoch, epochs):
    """A plateau from epoch 2 on (tol=0.5: no epoch halves the best loss): the fit stops
    after max(n_iter_no_change + 1 epochs, 500 updates) of it."""
    assert MIN_UPDATES_NO_CHANGE == 500
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3, 1))
    reg = RNNRegressor(
        hidden_layer_sizes=(2,), tol=0.5, batch_size=batch_size, max_iter=2000, random_state=0
    ).fit(X, X[:, -1, 0])
    patience = max(reg.n_iter_no_change + 1, -(-MIN_UPDATES_NO_CHANGE // updates_per_epoch))
    assert reg.n_iter_ == 1 + patience == epochs
    assert (reg.n_iter_ - 1) * updates_per_epoch >= MIN_UPDATES_NO_CHANGE


@pytest.mark.parametrize("Estimator", [RNNClassifier, RNNRegressor])
def test_default_fits_run_the_minimum_number_of_updates(Estimator):
    """36 sequences (two minibatches an epoch): the default fit, whatever its loss does,
    makes at least MIN_UPDATES_NO_CHANGE updates or runs all max_iter epochs."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(36, 6, 2))
    y = rng.integers(0, 3, size=36) if Estimator is RNNClassifier else rng.normal(size=36)
    model = Estimator(hidden_layer_sizes=(4,), random_state=0).fit(X, y)
    assert model.n_iter_ * 2 >= 500 or model.n_iter_ == model.max_iter


def test_tol_is_relative_to_the_best_loss():
    """Replay the rule on the loss curve: the fit stops at the first epoch where more than
    n_iter_no_change epochs (and the update minimum) passed without a loss below
    (1 - tol) * best. Targets near 1e-3 unscaled: an absolute tol would stop at once."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(64, 4, 1))
    tol, patience = 0.05, 3
    reg = RNNRegressor(
        hidden_layer_sizes=(4,),
        tol=tol,
        n_iter_no_change=patience,
        batch_size=1,
        scale_targets=False,
        alpha=0,
        max_iter=300,
        random_state=0,
    ).fit(X, 1e-3 * X[:, -1, 0])
    best, count, expected = np.inf, 0, None
    for epoch, loss in enumerate(reg.loss_curve_, start=1):
        count = 0 if loss < best * (1 - tol) else count + 1
        best = min(best, loss)
        if count > patience and count * 64 >= MIN_UPDATES_NO_CHANGE:
            expected = epoch
            break
    assert reg.loss_curve_[5] < 1e-3  # an absolute tol=1e-4 would stop in a few epochs
    assert expected is not None and reg.n_iter_ == expected > patience + 2


def test_early_stopping_auto_needs_enough_sequences():
    rng = np.random.default_rng(5)
    n = AUTO_EARLY_STOPPING_MIN_SEQUENCES
    X, y = rng.normal(size=(n, 2, 1)), rng.normal(size=n)
    params = dict(hidden_layer_sizes=(2,), max_iter=2, random_state=0)
    large = RNNRegressor(**params).fit(X, y)
    assert len(large.validation_scores_) == 2 and large.t_ == 2 * (n - n // 10)
    small = RNNRegressor(**params).fit(X[:-1], y[:-1])
    assert small.validation_scores_ is None and small.t_ == 2 * (n - 1)
    small.partial_fit(X, y)  # "auto" is off in partial_fit
    with pytest.raises(ValueError, match="early_stopping=True"):
        RNNRegressor(early_stopping=True, **params).partial_fit(X, y)


# ---------------------------------------------------------------- alpha


def _penalty_of_one_epoch(X, y, alpha, batch_size):
    """loss_ after one SGD epoch at a learning rate so small the weights do not move."""
    reg = RNNRegressor(
        hidden_layer_sizes=(3,),
        solver="sgd",
        momentum=0,
        alpha=alpha,
        learning_rate_init=1e-300,
        batch_size=batch_size,
        max_iter=1,
        shuffle=False,
        dtype="float64",
        random_state=0,
    )
    return reg.fit(X, y)


@pytest.mark.parametrize("batch_size", [1, 7, 40])
def test_alpha_is_the_penalty_of_the_whole_training_set(batch_size):
    """loss_ = mean loss + alpha / (2 n) ||W||^2 whatever the batch size, so the penalty's
    weight against the data falls as 1 / n (here n = 40 and n = 80)."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 4, 2))
    y = X[:, -1, 0]
    alpha = 10.0
    for data_x, data_y in ((X, y), (np.concatenate([X, X]), np.concatenate([y, y]))):
        n = len(data_x)
        free = _penalty_of_one_epoch(data_x, data_y, 0.0, batch_size)
        penalized = _penalty_of_one_epoch(data_x, data_y, alpha, batch_size)
        network = penalized._network()
        w = penalized.params_ * network.weight_mask(np.float64)
        expected = alpha / (2 * n) * float(w @ w)
        assert penalized.loss_ - free.loss_ == pytest.approx(expected, rel=1e-9)
