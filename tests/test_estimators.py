"""Behaviour of RNNClassifier and RNNRegressor: inputs, training options, streaming, errors."""

import re

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from crnn._estimators import RNNClassifier, RNNRegressor
from crnn._step import MinibatchStep
from crnn._training import MIN_UPDATES_NO_CHANGE

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
# The labels of _sequences are the sign of the last step's first feature: read from the
# final state (the classifier's default max pooling cannot tell the last step apart).
LAST = dict(readout="last")


def _sequences(n=40, n_steps=6, n_features=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_steps, n_features))
    return X, X.sum(axis=(1, 2)), (X[:, :, 0] > 0).astype(int)


def _ragged(n=30, n_features=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(k, n_features)) for k in rng.integers(1, 9, size=n)]


def _pad_with_nan(X):
    padded = np.full((len(X), max(len(x) for x in X), X[0].shape[1]), np.nan)
    for i, x in enumerate(X):
        padded[i, : len(x)] = x
    return padded


# --------------------------------------------------------------------------- input forms


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_prediction_does_not_depend_on_batch_or_padding(cell, bidirectional):
    X = _ragged()
    y = np.array([x.sum() for x in X])
    reg = RNNRegressor(cell=cell, bidirectional=bidirectional, dtype="float64", **SMALL)
    reg.fit(X, y)
    together = reg.predict(X)
    alone = np.concatenate([reg.predict([x]) for x in X])
    np.testing.assert_allclose(together, alone, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reg.predict(_pad_with_nan(X)), together, rtol=1e-10, atol=1e-12)


def test_input_forms_agree():
    """A 3D array, a list of 2D arrays and 2D univariate input mean the same sequences."""
    X, y, _ = _sequences(n_features=1)
    reg = RNNRegressor(**SMALL).fit(X, y)
    expected = reg.predict(X)
    np.testing.assert_array_equal(reg.predict(list(X)), expected)
    np.testing.assert_array_equal(reg.predict(X[:, :, 0]), expected)
    np.testing.assert_array_equal(reg.predict([x[:, 0] for x in X]), expected)
    np.testing.assert_array_equal(reg.predict(X.tolist()), expected)
    assert reg.n_features_in_ == 1


def test_fit_on_list_equals_fit_on_nan_padded_array():
    X = _ragged()
    y = np.array([x[-1, 0] for x in X])
    from_list = RNNRegressor(**SMALL).fit(X, y)
    from_array = RNNRegressor(**SMALL).fit(_pad_with_nan(X), y)
    np.testing.assert_array_equal(from_list.params_, from_array.params_)


def test_per_step_predictions_follow_the_lengths():
    X = _ragged()
    y = [x[:, 0] * 2 for x in X]
    reg = RNNRegressor(**SMALL).fit(X, y)
    assert reg.pattern_ == "seq2seq"
    predictions = reg.predict(X)
    assert isinstance(predictions, list)
    assert [p.shape for p in predictions] == [(len(x),) for x in X]
    equal_length = reg.predict(np.stack([x[:1] for x in X]))
    assert equal_length.shape == (len(X), 1)
    np.testing.assert_allclose(equal_length[:, 0], [p[0] for p in predictions], rtol=1e-5)


def test_multiple_outputs_per_step():
    X, _, _ = _sequences()
    y = np.stack([X[:, :, 0], X[:, :, 1] * 2, -X[:, :, 0]], axis=2)
    reg = RNNRegressor(**SMALL).fit(X, y)
    assert reg.pattern_ == "seq2seq"
    assert reg.n_outputs_ == 3
    assert reg.predict(X).shape == (40, 6, 3)


@pytest.mark.parametrize(
    ("X_shape", "y_shape", "pattern"),
    [
        ((10, 6, 2), (10,), "seq2vec"),
        ((10, 6), (10, 3), "seq2vec"),
        ((10, 6), (10, 6), "seq2seq"),
        ((10, 6, 2), (10, 6, 3), "seq2seq"),
        ((10, 6, 2), (10, 4, 3), "encdec"),
        ((10, 6, 2), (10, 4), "seq2vec"),
    ],
)
def test_auto_pattern_table(X_shape, y_shape, pattern):
    rng = np.random.default_rng(0)
    reg = RNNRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    reg.fit(rng.normal(size=X_shape), rng.normal(size=y_shape))
    assert reg.pattern_ == pattern


def test_auto_pattern_from_lists():
    X = _ragged()
    same = [np.ones(len(x)) for x in X]
    other = [np.ones(len(x) + 1) for x in X]
    reg = RNNRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    assert reg.fit(X, same).pattern_ == "seq2seq"
    assert reg.fit(X, other).pattern_ == "encdec"
    assert reg.predict(X, n_steps_out=2).shape == (len(X), 2)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes_train_end_to_end(dtype):
    X, y, labels = _sequences()
    reg = RNNRegressor(
        dtype=dtype, hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=1e-2, random_state=0
    ).fit(X, y)
    clf = RNNClassifier(
        dtype=dtype,
        hidden_layer_sizes=(8,),
        max_iter=30,
        learning_rate_init=1e-2,
        random_state=0,
        **LAST,
    ).fit(X, labels[:, -1])
    assert reg.params_.dtype == np.dtype(dtype) == clf.params_.dtype
    assert reg.loss_curve_[-1] < 0.5 * reg.loss_curve_[0]
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    assert reg.predict(X).dtype == np.float64
    assert clf.predict_proba(X).dtype == np.float64


def test_predict_log_proba_is_the_log_of_predict_proba():
    X, _, labels = _sequences()
    clf = RNNClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, labels)
    log_proba = clf.predict_log_proba(X)
    assert log_proba.shape == clf.predict_proba(X).shape  # per step: (n, n_steps, n_classes)
    np.testing.assert_allclose(np.exp(log_proba), clf.predict_proba(X), rtol=1e-12)
    # far from the decision boundary the log stays finite where log(proba) would not
    clf.params_[-len(clf.classes_) :] = [800.0] + [0.0] * (len(clf.classes_) - 1)
    assert np.all(np.isfinite(clf.predict_log_proba(X)))
    assert not np.all(np.isfinite(np.log(clf.predict_proba(X))))


def test_float32_and_float64_agree_at_initialisation():
    X, y, _ = _sequences()
    params = dict(hidden_layer_sizes=(8,), max_iter=1, learning_rate_init=1e-12, random_state=0)
    single = RNNRegressor(dtype="float32", **params).fit(X, y)
    double = RNNRegressor(dtype="float64", **params).fit(X, y)
    np.testing.assert_allclose(single.predict(X), double.predict(X), rtol=1e-4, atol=1e-5)


def test_fitted_attributes():
    X, y, _ = _sequences()
    reg = RNNRegressor(hidden_layer_sizes=(8, 4), cell="gru", max_iter=4, random_state=0)
    reg.fit(X, y)
    assert reg.n_iter_ == 4 == len(reg.loss_curve_)
    assert reg.t_ == 4 * len(X)
    assert reg.loss_ == reg.loss_curve_[-1]
    assert reg.best_loss_ == min(reg.loss_curve_)
    assert reg.validation_scores_ is None and reg.validation_loss_curve_ is None
    assert reg.params_.ndim == 1 and reg.params_.flags.c_contiguous
    assert reg.n_steps_out_ is None


def test_random_state_makes_fits_reproducible():
    X, y, _ = _sequences()
    params = dict(
        dropout=0.3,
        hidden_layer_sizes=(8, 8),
        max_iter=3,
        early_stopping=True,
        validation_fraction=0.25,
    )
    a = RNNRegressor(random_state=3, **params).fit(X, y)
    b = RNNRegressor(random_state=3, **params).fit(X, y)
    c = RNNRegressor(random_state=4, **params).fit(X, y)
    np.testing.assert_array_equal(a.params_, b.params_)
    assert not np.array_equal(a.params_, c.params_)


def test_partial_fit_learns_online():
    X, _, labels = _sequences(n=200)
    y = labels[:, -1]
    clf = RNNClassifier(hidden_layer_sizes=(8,), learning_rate_init=1e-2, random_state=0, **LAST)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:20], y[:20])
    losses = []
    for _ in range(15):
        for start in range(0, 160, 40):
            clf.partial_fit(X[start : start + 40], y[start : start + 40], classes=[0, 1])
        losses.append(clf.loss_)
    assert clf.n_iter_ == 60
    assert losses[-1] < 0.5 * losses[0]
    assert clf.score(X[160:], y[160:]) > 0.9


def test_partial_fit_continues_a_fit_and_keeps_classes():
    X, _, labels = _sequences()
    clf = RNNClassifier(**SMALL).fit(X, labels[:, -1])
    before = clf.params_.copy()
    clf.partial_fit(X[:10], labels[:10, -1])
    assert not np.array_equal(before, clf.params_)
    with pytest.raises(ValueError, match="not among classes_"):
        clf.partial_fit(X[:10], np.full(10, 7))
    online = RNNClassifier(**SMALL).partial_fit(X, labels[:, -1], classes=[0, 1, 2])
    assert online.predict_proba(X).shape == (40, 3)
    online.partial_fit(X[:5], np.full(5, 2))  # a class first seen in a later call


def test_partial_fit_uses_sample_weight():
    X, y, _ = _sequences()
    weights = np.linspace(0, 2, len(X))
    plain = RNNRegressor(**SMALL).partial_fit(X, y)
    weighted = RNNRegressor(**SMALL).partial_fit(X, y, sample_weight=weights)
    doubled = RNNRegressor(**SMALL).partial_fit(X, y, sample_weight=2 * weights)
    assert not np.allclose(plain.params_, weighted.params_)
    # The loss is a weighted mean: scaling every weight changes nothing.
    np.testing.assert_allclose(weighted.params_, doubled.params_, rtol=1e-5, atol=1e-6)


def test_warm_start_continues_from_the_fitted_weights():
    X, y, _ = _sequences()
    cold = RNNRegressor(hidden_layer_sizes=(8,), max_iter=6, random_state=0).fit(X, y)
    warm = RNNRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0, warm_start=True)
    warm.fit(X, y)
    first = warm.params_.copy()
    warm.fit(X, y)
    assert len(warm.loss_curve_) == 6
    assert warm.n_iter_ == 3
    assert warm.loss_curve_[3] < warm.loss_curve_[0]
    assert not np.array_equal(first, warm.params_)
    # Without warm_start, a second fit starts over: it equals a single fit.
    again = RNNRegressor(hidden_layer_sizes=(8,), max_iter=6, random_state=0)
    np.testing.assert_array_equal(again.fit(X, y).fit(X, y).params_, cold.params_)


def test_warm_start_refuses_another_architecture():
    X, y, _ = _sequences()
    reg = RNNRegressor(warm_start=True, **SMALL).fit(X, y)
    reg.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match="do not match the current hyper-parameters"):
        reg.fit(X, y)


def test_sample_weight_selects_what_is_learned():
    """Two contradicting labellings; the weighted one wins."""
    X, _, labels = _sequences(n=120)
    y = labels[:, -1]
    X2 = np.concatenate([X, X])
    y2 = np.concatenate([y, 1 - y])
    weights = np.concatenate([np.ones(120), np.full(120, 0.01)])
    clf = RNNClassifier(
        hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=1e-2, random_state=0, **LAST
    )
    assert clf.fit(X2, y2, sample_weight=weights).score(X, y) > 0.9
    assert clf.fit(X2, y2, sample_weight=weights[::-1]).score(X, 1 - y) > 0.9


def test_invalid_sample_weight():
    X, y, labels = _sequences()
    with pytest.raises(ValueError, match="at least one non-zero"):
        RNNRegressor(**SMALL).fit(X, y, sample_weight=np.zeros(len(X)))
    with pytest.raises(ValueError, match="sum to zero"):
        RNNClassifier(class_weight={0: 0.0, 1: 0.0}, **SMALL).fit(X, labels[:, -1])
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(40,\), expected \(4,\)"):
        RNNRegressor(**SMALL).fit(X[:4], y[:4], sample_weight=np.ones(40))
    with pytest.raises(ValueError, match="Negative values"):
        RNNRegressor(**SMALL).fit(X, y, sample_weight=-np.ones(len(X)))


def test_class_weight_balanced_favours_the_rare_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5, 1))
    y = (X[:, :, 0].mean(axis=1) > 0.6).astype(int)  # about 10% positives
    params = dict(hidden_layer_sizes=(8,), max_iter=15, learning_rate_init=1e-2, random_state=0)
    plain = RNNClassifier(**params).fit(X, y)
    balanced = RNNClassifier(class_weight="balanced", **params).fit(X, y)
    as_dict = RNNClassifier(class_weight={1: 9.0}, **params).fit(X, y)
    positives = [model.predict(X).sum() for model in (plain, balanced, as_dict)]
    assert positives[1] > positives[0] and positives[2] > positives[0]
    with pytest.raises(ValueError, match="not supported by partial_fit"):
        RNNClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not in y's classes"):
        RNNClassifier(class_weight={5: 2.0}, **SMALL).fit(X, y)


def test_early_stopping_restores_the_best_weights():
    """The kept weights are those of the epoch with the lowest validation loss.

    Training is deterministic, so a fit stopped at that epoch must give the same weights.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5, 1))
    y = X[:, -1, 0] + rng.normal(scale=1.0, size=60)  # small and noisy: it overfits
    params = dict(
        hidden_layer_sizes=(16,),
        learning_rate_init=3e-2,
        early_stopping=True,
        validation_fraction=0.3,
        n_iter_no_change=5,
        batch_size=8,
        alpha=0,
        random_state=0,
    )
    reg = RNNRegressor(max_iter=200, **params).fit(X, y)
    curve = reg.validation_loss_curve_
    best_epoch = int(np.argmin(curve)) + 1
    assert best_epoch < reg.n_iter_ < 200
    assert reg.best_loss_ == min(curve)
    assert reg.best_validation_score_ == reg.validation_scores_[best_epoch - 1]
    stopped = RNNRegressor(max_iter=best_epoch, **params).fit(X, y)
    np.testing.assert_array_equal(reg.params_, stopped.params_)


def test_adaptive_learning_rate_reduces_on_plateau(capsys):
    X, y, _ = _sequences()
    reg = RNNRegressor(
        learning_rate="adaptive",
        n_iter_no_change=1,
        tol=0.999,  # relative: only a 1000-fold drop of the loss would count
        verbose=True,
        hidden_layer_sizes=(4,),
        max_iter=8,
        random_state=0,
    ).fit(X, y)
    out = capsys.readouterr().out
    assert "Epoch 1, loss = " in out
    assert "Setting learning rate to 0.0002" in out
    assert reg._optimizer.learning_rate < reg.learning_rate_init


def test_constant_learning_rate_stops_on_plateau(capsys):
    X, y, _ = _sequences()
    reg = RNNRegressor(
        n_iter_no_change=2,
        tol=0.999,  # relative: only a 1000-fold drop of the loss would count
        batch_size=4,
        verbose=True,
        hidden_layer_sizes=(4,),
        max_iter=200,
        random_state=0,
    ).fit(X, y)
    # As in MLPRegressor, the first epoch improves on nothing, then stopping comes after
    # n_iter_no_change + 1 epochs without improvement, but not before MIN_UPDATES_NO_CHANGE
    # updates without improvement: 500 at 10 updates per epoch.
    assert MIN_UPDATES_NO_CHANGE == 500
    assert reg.n_iter_ == 1 + 50
    assert "(500 updates). Stopping." in capsys.readouterr().out


def test_diverging_training_stops_and_keeps_finite_weights():
    X, y, _ = _sequences()
    reg = RNNRegressor(
        solver="sgd",
        learning_rate_init=1e12,
        clip_norm=None,
        max_iter=20,
        hidden_layer_sizes=(8,),
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="became NaN or infinite"):
        reg.fit(X * 1e3, y * 1e6)
    assert reg.n_iter_ < 20
    assert np.isfinite(reg.params_).all()
    assert np.isfinite(reg.predict(X)).all()
    reg.partial_fit(X, y)  # a fresh optimizer: training can go on


def test_gradient_clipping_bounds_every_update():
    X, y, _ = _sequences()
    params = dict(
        solver="sgd",
        momentum=0,
        learning_rate_init=1.0,
        max_iter=1,
        batch_size=40,
        hidden_layer_sizes=(8,),
        alpha=0,
        random_state=0,
    )
    start = RNNRegressor(**{**params, "learning_rate_init": 1e-30}).fit(X, y).params_
    # Unscaled targets far from unit scale: a gradient far above the clipping norm.
    clipped = RNNRegressor(clip_norm=0.5, scale_targets=False, **params).fit(X, y * 100).params_
    assert np.linalg.norm(clipped.astype(np.float64) - start) == pytest.approx(0.5, rel=1e-3)


def test_truncated_bptt_changes_the_gradient_only_for_long_sequences():
    X, y, _ = _sequences(n_steps=6)
    params = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0, dtype="float64")
    full = RNNRegressor(**params).fit(X, y).params_
    long_window = RNNRegressor(truncate_bptt=6, **params).fit(X, y).params_
    short_window = RNNRegressor(truncate_bptt=2, **params).fit(X, y).params_
    np.testing.assert_array_equal(full, long_window)
    assert not np.allclose(full, short_window)


def test_keyboard_interrupt_keeps_the_last_finished_epoch(monkeypatch):
    X, y, _ = _sequences()
    params = dict(hidden_layer_sizes=(8,), batch_size=10, random_state=0)
    one_epoch = RNNRegressor(max_iter=1, **params).fit(X, y)
    reg = RNNRegressor(max_iter=5, **params)
    calls = []
    original = MinibatchStep.train

    def interrupt_in_second_epoch(self, *args):
        calls.append(1)
        if len(calls) == 6:  # 4 minibatches per epoch
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(MinibatchStep, "train", interrupt_in_second_epoch)
    with pytest.warns(UserWarning, match="interrupted by the user in epoch 2"):
        reg.fit(X, y)
    np.testing.assert_array_equal(reg.params_, one_epoch.params_)
    assert reg.n_iter_ == 1
    assert reg.predict(X).shape == (40,)


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_streaming_in_chunks_equals_the_whole_stream(cell):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 30, 2))
    y = np.cumsum(X[:, :, 0], axis=1)
    reg = RNNRegressor(
        cell=cell, hidden_layer_sizes=(6, 5), dtype="float64", max_iter=3, random_state=0
    ).fit(X, y)
    whole = reg.predict(X)
    pieces, state = [], None
    for start, stop in [(0, 1), (1, 12), (12, 13), (13, 30)]:
        out, state = reg.predict(X[:, start:stop], initial_state=state, return_state=True)
        pieces.append(out)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, rtol=1e-12, atol=1e-12)


def test_streaming_seq2vec_classifier_with_ragged_chunks():
    X, _, labels = _sequences(n_steps=12)
    clf = RNNClassifier(**SMALL, **LAST).fit(X, labels[:, -1])  # streaming needs "last"
    whole = clf.predict_proba(X[:2])
    _, state = clf.predict_proba([X[0, :5], X[1, :9]], return_state=True)
    rest, state = clf.predict_proba([X[0, 5:], X[1, 9:]], initial_state=state, return_state=True)
    np.testing.assert_allclose(rest, whole, rtol=1e-5)
    assert isinstance(state, tuple) and len(state[0]) == 1


# --------------------------------------------------------------------------- bad input


def test_predict_before_fit():
    for est in (RNNClassifier(), RNNRegressor()):
        with pytest.raises(NotFittedError):
            est.predict(np.zeros((2, 3)))


def test_a_failed_fit_leaves_the_estimator_unfitted():
    reg = RNNRegressor(**SMALL)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        reg.fit(np.zeros((4, 3)), np.zeros(5))  # fails after reading X
    with pytest.raises(NotFittedError):
        reg.predict(np.zeros((4, 3)))


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros(5), r"X is 1D, of shape \(5,\), which could be read two ways. Reshape"),
        (np.zeros((3, 2, 2, 2)), "must be 2D .* or 3D"),
        (np.zeros((0, 4)), "0 sample"),
        (np.zeros((3, 0, 2)), "at least one step and one feature"),
        ([np.zeros((2, 1)), np.zeros((0, 1))], "X\\[1\\] is an empty sequence"),
        ([np.zeros((2, 1)), np.zeros((3, 2))], "X\\[1\\] has 2 features but X\\[0\\] has 1"),
        ([np.zeros((2, 1)), np.zeros((3, 1, 1))], "X\\[1\\] has shape \\(3, 1, 1\\)"),
        ([np.zeros(2), ["a", "b", "c"]], "X\\[1\\] could not be converted"),
        ([np.zeros(2), [np.nan, 1.0, 1.0]], "X\\[1\\] contains NaN or infinity"),
        (np.array([[1.0, np.nan, 2.0]]), "NaN in sequence 0 at step 1, before later"),
        (np.array([[[1.0, np.nan], [2.0, 3.0]]]), "NaN in sequence 0 at step 0 where"),
        (np.array([[np.nan, np.nan]]), "sequence 0 is all NaN"),
        (np.array([[1.0, np.inf]]), "infinity"),
    ],
)
def test_bad_X_is_refused_clearly(X, message):
    y = np.zeros(len(X))
    with pytest.raises(ValueError, match=message):
        RNNRegressor(**SMALL).fit(X, y)


def test_sparse_X_is_refused():
    from scipy import sparse

    with pytest.raises(TypeError, match="dense data is required"):
        RNNRegressor(**SMALL).fit(sparse.csr_matrix(np.ones((3, 4))), np.zeros(3))


def test_bad_y_is_refused_clearly():
    X, y, labels = _sequences()
    reg, clf = RNNRegressor(**SMALL), RNNClassifier(**SMALL)
    with pytest.raises(ValueError, match="requires y to be passed"):
        reg.fit(X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        reg.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Input y contains NaN"):
        reg.fit(X, np.where(y > 0, np.nan, y))
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="Multi-output classification is not supported"):
        clf.fit(X, labels[:, :3])
    with pytest.raises(ValueError, match="one label per step"):
        clf.fit(X, labels[:, :, np.newaxis].repeat(2, axis=2))
    with pytest.raises(ValueError, match="y holds 39 sequences but X holds 40"):
        reg.fit(X, X[:-1, :, 0])
    with pytest.raises(ValueError, match="NaN is accepted only as trailing padding"):
        reg.fit(X, np.where(X[:, :, 0] > 0, np.nan, 0.0))
    ragged = _ragged()
    too_long = [np.ones(len(x) + 1) for x in ragged]
    with pytest.raises(ValueError, match="y\\[0\\] has .* steps but X\\[0\\] has"):
        RNNRegressor(pattern="seq2seq", **SMALL).fit(ragged, too_long)
    with pytest.raises(ValueError, match="y has 4 steps per sequence but X has 6"):
        RNNRegressor(pattern="seq2seq", **SMALL).fit(X, y[:, np.newaxis].repeat(4, axis=1))


def test_bad_predict_input_is_refused_clearly():
    X, y, _ = _sequences()
    reg = RNNRegressor(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but RNNRegressor is expecting 2"):
        reg.predict(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="n_steps_out applies to the vec2seq and encdec"):
        reg.predict(X, n_steps_out=3)
    with pytest.raises(ValueError, match="initial_state must be the state returned"):
        reg.predict(X, initial_state=("not", "a state"))
    _, state = reg.predict(X[:2], return_state=True)
    with pytest.raises(ValueError, match="for 3 sequences"):
        reg.predict(X[:3], initial_state=state)
    two_way = RNNRegressor(bidirectional=True, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="needs a one-way"):
        two_way.predict(X, return_state=True)
    vec2seq = RNNRegressor(pattern="vec2seq", **SMALL).fit(X[:, 0], X[:, :, 0])
    for bad in (0, [1, 2], 2.5):
        with pytest.raises(ValueError, match="n_steps_out must be a positive int"):
            vec2seq.predict(X[:, 0], n_steps_out=bad)


@pytest.mark.parametrize(
    "params",
    [
        dict(cell="lstmx"),
        dict(hidden_layer_sizes=0),
        dict(solver="lbfgs"),
        dict(dropout=1.0),
        dict(clip_norm=0),
        dict(truncate_bptt=0),
        dict(pattern="seq2tree"),
        dict(dtype="float16"),
        dict(validation_fraction=1.0),
    ],
)
def test_invalid_hyper_parameters(params):
    X, y, _ = _sequences()
    with pytest.raises(InvalidParameterError):
        RNNRegressor(**params).fit(X, y)


@pytest.mark.parametrize("sizes", [(), (4, 0), (4, 2.5), ("8",)])
def test_invalid_hidden_layer_sizes(sizes):
    X, y, _ = _sequences()
    with pytest.raises(ValueError, match=re.escape("hidden_layer_sizes must be a positive")):
        RNNRegressor(hidden_layer_sizes=sizes).fit(X, y)


def test_partial_fit_refuses_early_stopping():
    X, y, _ = _sequences()
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        RNNRegressor(early_stopping=True).partial_fit(X, y)


def test_too_small_validation_set():
    X, y, _ = _sequences(n=10)
    with pytest.raises(ValueError, match="validation set is too small"):
        RNNRegressor(early_stopping=True, **SMALL).fit(X, y)


def test_n_jobs_splits_minibatches_and_agrees_with_one_thread(monkeypatch):
    parts = []
    original = MinibatchStep._parts

    def split(self, lengths):
        result = original(self, lengths)
        parts.append(len(result))
        return result

    monkeypatch.setattr(MinibatchStep, "_parts", split)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 5, 3)), rng.normal(size=64)
    params = dict(
        cell="lstm",
        hidden_layer_sizes=(128,),
        batch_size=64,
        max_iter=2,
        random_state=0,
        dtype="float64",
    )
    one = RNNRegressor(**params).fit(X, y)
    assert set(parts) == {1}
    parts.clear()
    two = RNNRegressor(n_jobs=2, **params).fit(X, y)
    assert set(parts) == {2}  # 32 sequences x 4 x 128 x 128 per part: worth a thread
    np.testing.assert_allclose(two.params_, one.params_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(two.predict(X), one.predict(X), rtol=1e-9, atol=1e-12)
