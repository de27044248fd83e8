"""The compiled training minibatch (crnn._step, src/csrc/net.c) against the same
computation written with crnn.functional and NumPy (functional_training.py), and the
encoder-decoder's decoding in C against a Python loop over functional.forward.

Finite differences check the compiled gradient on their own (test_estimator_gradients.py);
these tests check that every pattern, head, readout, dropout mask, weight and update rule
reaches C as the functional API computes it.
"""

import numpy as np
import pytest
from functional_training import clip_by_global_norm
from functional_training import loss_grad as functional_loss_grad
from sklearn.utils import check_random_state

from crnn import _kernels
from crnn._estimators import RNNClassifier, RNNRegressor
from crnn._step import MinibatchStep
from crnn.functional import forward

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _problem(pattern, classifier, n=6, T=5, seed=0):
    """Variable-length sequences and targets of a pattern."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, T + 1, size=n)
    if pattern == "vec2seq":
        X = rng.normal(size=(n, 3))
    else:
        X = [rng.normal(size=(t, 3)) for t in lengths]
    if pattern == "seq2vec":
        y = rng.integers(0, 3, size=n) if classifier else rng.normal(size=(n, 2))
    elif pattern == "seq2seq":
        y = [rng.integers(0, 3, size=t) if classifier else rng.normal(size=t) for t in lengths]
    else:  # targets of their own lengths
        out = rng.integers(2, 5, size=n)
        y = [rng.integers(0, 3, size=t) if classifier else rng.normal(size=(t, 2)) for t in out]
    return X, y


def _fitted(pattern, classifier, **params):
    Estimator = RNNClassifier if classifier else RNNRegressor
    params = {
        "pattern": pattern,
        "hidden_layer_sizes": (4, 3),
        "dtype": "float64",
        "max_iter": 1,
        "random_state": 0,
        **params,
    }
    est = Estimator(**params)
    X, y = _problem(pattern, classifier)
    weights = np.linspace(0.5, 2.0, len(y))
    est.fit(X, y, sample_weight=weights)
    _, data = est._validate_data(X, y, weights, reset=False)
    batch = data.take(np.arange(len(y)), time_major=True)
    return est, est._network(), batch


def _both(est, network, batch, seed=7):
    """(loss, grad) of the compiled step and of the functional one, from the same masks."""
    batch_weight = float(batch.weights.sum())
    results = []
    for compute in (est._loss_grad, lambda *a: functional_loss_grad(est, *a)):
        est._random_state = check_random_state(seed)
        grad = np.full_like(est.params_, np.nan)
        loss = compute(network, est.params_, grad, batch, batch_weight)
        results.append((loss, grad))
    return results


CASES = [
    dict(cell="lstm", bidirectional=True),
    dict(cell="gru", recurrent_dropout=0.3, input_dropout=0.2),
    dict(cell="rnn", nonlinearity="relu", dropout=0.4, recurrent_dropout=0.2),
    dict(cell="lstm", truncate_bptt=2, recurrent_dropout=0.0),
]


@pytest.mark.parametrize("pattern", ["seq2vec", "seq2seq", "vec2seq", "encdec"])
@pytest.mark.parametrize("classifier", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_compiled_minibatch_matches_the_functional_api(pattern, classifier, case):
    extra = dict(class_weight="balanced") if classifier else {}
    if pattern == "seq2vec":
        extra["readout"] = "last"
    est, network, batch = _fitted(pattern, classifier, **case, **extra)
    (loss, grad), (expected_loss, expected_grad) = _both(est, network, batch)
    assert np.isfinite(loss) and loss > 0
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-13)
    assert np.abs(grad).max() > 0


@pytest.mark.parametrize("readout", ["mean", "max", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_compiled_readouts_match_the_functional_api(readout, bidirectional):
    est, network, batch = _fitted(
        "seq2vec", True, readout=readout, bidirectional=bidirectional, pool_steps=2
    )
    if readout == "attention":  # v starts at zero: make the scores count
        network.readout_params(est.params_)[:] = np.random.default_rng(1).normal(
            size=network.readout_size
        )
    (loss, grad), (expected_loss, expected_grad) = _both(est, network, batch)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-13)


def test_per_step_weights_and_float32():
    """Per-step sample weights (zero weight: the target is not read) and float32."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 6, 2)).astype(np.float32)
    y = rng.normal(size=(5, 6)).astype(np.float32)
    weights = rng.uniform(0, 2, size=(5, 6))
    weights[:, :2] = 0
    est = RNNRegressor(hidden_layer_sizes=(5,), max_iter=1, random_state=0)
    est.fit(X, y, sample_weight=weights)
    _, data = est._validate_data(X, y, weights, reset=False)
    batch = data.take(np.arange(5), time_major=True)
    (loss, grad), (expected_loss, expected_grad) = _both(est, est._network(), batch)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_compiled_update_is_l2_clipping_and_the_optimizer(solver):
    """One training step in C equals the gradient, then the NumPy statements of the L2
    penalty, clipping and the update rule."""
    est, network, batch = _fitted(
        "seq2seq", False, solver=solver, alpha=0.3, clip_norm=0.05, recurrent_dropout=0.0
    )
    params = est.params_.copy()
    batch_weight = float(batch.weights.sum())
    n = 6  # the training set's size: the L2 penalty's share
    decay = (est.alpha / n) * network.weight_mask(params.dtype)
    grad = np.empty_like(params)
    loss = functional_loss_grad(est, network, params, grad, batch, batch_weight)
    grad += decay * params
    loss += 0.5 * np.dot(decay * params, params)
    assert clip_by_global_norm(grad, est.clip_norm) > est.clip_norm  # clipping is exercised
    optimizer = est._make_optimizer()
    expected = params.copy()
    if solver == "adam":
        step = optimizer.learning_rate * np.sqrt(1 - optimizer.beta_2) / (1 - optimizer.beta_1)
        m, v = (1 - optimizer.beta_1) * grad, (1 - optimizer.beta_2) * grad**2
        expected -= step * m / (np.sqrt(v) + optimizer.epsilon)
    else:
        velocity = -optimizer.learning_rate * grad
        expected += optimizer.momentum * velocity - optimizer.learning_rate * grad

    est._optimizer = optimizer
    step = MinibatchStep(est, network, 1, None, est._input_scaling(params.dtype))
    step.set_decay(decay)
    got_loss, updated = step.train(batch, batch_weight)
    assert updated
    np.testing.assert_allclose(got_loss, loss, rtol=1e-12)
    np.testing.assert_allclose(est.params_, expected, rtol=1e-9, atol=1e-14)
    assert not np.array_equal(est.params_, params)


def test_a_non_finite_loss_moves_nothing():
    est, network, batch = _fitted("seq2vec", False, recurrent_dropout=0.0)
    est.params_[network.bounds[-2] :] = np.inf  # b_out: every output infinite
    before = est.params_.copy()
    est._optimizer = est._make_optimizer()
    loss, updated = MinibatchStep(est, network, 1).train(batch, float(batch.weights.sum()))
    assert not updated and not np.isfinite(loss)
    np.testing.assert_array_equal(est.params_, before)


def test_the_kernel_refuses_inconsistent_batches():
    est, network, batch = _fitted("seq2vec", True, recurrent_dropout=0.0)
    kernel = MinibatchStep(est, network, 1, est.params_.copy()).kernel  # gradients only
    x, lengths = batch.x, batch.x_lengths.astype(np.intc)
    weights = batch.weights.astype(np.float64)
    with pytest.raises(ValueError, match="class code outside"):
        kernel.gradient(0, x, lengths, np.full(len(lengths), 7), weights, 1.0)
    with pytest.raises(ValueError, match="weights must have one entry per position"):
        kernel.gradient(0, x, lengths, batch.y, weights[:-1], 1.0)
    with pytest.raises(ValueError, match="x must be"):
        kernel.gradient(0, x[:, :, :2].copy(), lengths, batch.y, weights, 1.0)
    with pytest.raises(ValueError, match="sorted"):
        kernel.gradient(0, x, lengths[::-1].copy(), batch.y, weights, 1.0)
    with pytest.raises(ValueError, match="no optimizer state"):
        kernel.step(x, lengths, batch.y, weights, 1.0, 0.1)
    with pytest.raises(ValueError, match="1 to 64 layers"):
        _kernels.Net("seq2vec", 0, 3, (2,) * 65, 1, 0, 0, "linear", 1, 0)


def _decode_loop(network, params, head, h_n, c_n, steps):
    """The decoding as a Python loop over functional.forward, one step a call."""
    _, dec, W, b = network.split(params)
    batch, k = h_n[0].shape[1], network.n_outputs
    h = [np.concatenate(s, axis=1)[np.newaxis] for s in h_n]
    c = None if c_n is None else [np.concatenate(s, axis=1)[np.newaxis] for s in c_n]
    step_input = np.zeros((1, batch, k + 1), dtype=W.dtype)
    step_input[0, :, k] = 1
    out = np.empty((steps, batch, k), dtype=W.dtype)
    for t in range(steps):
        Y, (h, c), _ = forward(network.decoder, dec, step_input, None, h, c, keep_cache=False)
        out[t] = Y[0] @ W + b
        step_input[0, :, :k] = head.feedback(out[t])
        step_input[0, :, k] = 0
    return out


@pytest.mark.parametrize("classifier", [False, True])
@pytest.mark.parametrize(("cell", "bidirectional"), [("lstm", True), ("gru", False)])
def test_decoding_in_c_matches_a_loop_over_forward(classifier, cell, bidirectional):
    est, network, batch = _fitted(
        "encdec", classifier, cell=cell, bidirectional=bidirectional, max_iter=5
    )
    enc = network.split(est.params_)[0]
    _, (h_n, c_n), _ = forward(network.encoder, enc, batch.x, batch.x_lengths, keep_cache=False)
    got = est._pattern.decode(network, est.params_, est._head, h_n, c_n, 7)
    expected = _decode_loop(network, est.params_, est._head, h_n, c_n, 7)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
