"""The estimators' training gradients, losses and optimizers, against independent references.

Finite differences check the whole training gradient of every pattern (output
layer, final-state features, the encoder-decoder bridge); the optimizers are
compared with scikit-learn's list-of-arrays implementations.
"""

import numpy as np
import pytest
from functional_training import clip_by_global_norm
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from crnn._estimators import RNNClassifier, RNNRegressor
from crnn._loss import softmax_cross_entropy, squared_error
from crnn._optim import SGD, Adam

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _problem(pattern, classifier, seed=0):
    rng = np.random.default_rng(seed)
    lengths = [4, 2, 3]
    if pattern == "vec2seq":
        X = rng.normal(size=(3, 2))
    else:
        X = [rng.normal(size=(n, 2)) for n in lengths]
    if pattern == "seq2vec":
        y = rng.integers(0, 3, size=3) if classifier else rng.normal(size=(3, 2))
    else:
        steps = lengths if pattern == "seq2seq" else [3, 1, 2]
        y = [rng.integers(0, 3, size=n) if classifier else rng.normal(size=(n, 2)) for n in steps]
    return X, y


def _numerical_gradient(f, params, indices=None, eps=1e-6):
    """Central differences of ``f`` at ``params`` along the coordinates ``indices`` (all)."""
    indices = range(len(params)) if indices is None else indices
    grad = np.empty(len(indices))
    for j, i in enumerate(indices):
        step = np.zeros_like(params)
        step[i] = eps
        grad[j] = (f(params + step) - f(params - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("pattern", ["seq2vec", "seq2seq", "vec2seq", "encdec"])
@pytest.mark.parametrize("classifier", [False, True])
@pytest.mark.parametrize(("cell", "bidirectional"), [("lstm", True), ("gru", False)])
def test_training_gradient_matches_finite_differences(pattern, classifier, cell, bidirectional):
    Estimator = RNNClassifier if classifier else RNNRegressor
    est = Estimator(
        pattern=pattern,
        cell=cell,
        bidirectional=bidirectional,
        hidden_layer_sizes=(3, 2),
        readout="last",  # the final-state features (the pooled ones: the test below)
        recurrent_dropout=0.0,  # a deterministic loss (dropout: test_recurrent_dropout.py)
        dtype="float64",
        max_iter=1,
        random_state=0,
    )
    X, y = _problem(pattern, classifier)
    weights = np.array([1.0, 0.5, 2.0])
    est.fit(X, y, sample_weight=weights)
    _, data = est._validate_data(X, y, weights, reset=False)
    network = est._network()
    batch = data.take(np.arange(3), time_major=True)
    batch_weight = float(batch.weights.sum())
    grad = np.empty_like(est.params_)

    def loss(params):
        return est._loss_grad(network, params, np.empty_like(params), batch, batch_weight)

    est._loss_grad(network, est.params_, grad, batch, batch_weight)
    # 150 random coordinates (every one for the small networks) cover every block.
    n_params = len(grad)
    indices = np.random.default_rng(0).permutation(n_params)[:150]
    expected = _numerical_gradient(loss, est.params_.copy(), indices)
    np.testing.assert_allclose(grad[indices], expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("readout", ["mean", "max", "attention"])
@pytest.mark.parametrize(("cell", "bidirectional"), [("lstm", True), ("gru", False)])
def test_seq2vec_readout_gradients_match_finite_differences(readout, cell, bidirectional):
    """The pooled readouts' gradient reaches the encoder through every step's output, and
    the attention parameters (between the encoder and the head) get theirs."""
    est = RNNClassifier(
        cell=cell,
        bidirectional=bidirectional,
        hidden_layer_sizes=(3, 2),
        readout=readout,
        pool_steps=2,
        recurrent_dropout=0.0,  # a deterministic loss
        dtype="float64",
        max_iter=1,
        random_state=0,
    )
    X, y = _problem("seq2vec", True)
    est.fit(X, y)
    network = est._network()
    if readout == "attention":  # the scoring layer's v starts at zero: make it count
        network.readout_params(est.params_)[:] = np.random.default_rng(1).normal(
            size=network.readout_size
        )
    _, data = est._validate_data(X, y, None, reset=False)
    batch = data.take(np.arange(3), time_major=True)
    grad = np.empty_like(est.params_)

    def loss(params):
        return est._loss_grad(network, params, np.empty_like(params), batch, 3.0)

    est._loss_grad(network, est.params_, grad, batch, 3.0)
    expected = _numerical_gradient(loss, est.params_.copy())
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)
    # L2 applies to the scoring layer's weights W_a and v, not to its bias b_a
    mask = network.readout_params(network.weight_mask(np.float64))
    F = network.encoder.output_size
    A = network.readout_size // (F + 2)
    assert mask.tolist() == [1.0] * (F * A) + [0.0] * A + [1.0] * A


def test_losses_are_weighted_means_with_exact_gradients():
    rng = np.random.default_rng(0)
    logits, codes = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    weights = rng.uniform(size=5)
    weights /= weights.sum()
    loss, grad = softmax_cross_entropy(logits.copy(), codes, weights)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-np.dot(weights, log_p[np.arange(5), codes]))
    numerical = _numerical_gradient(
        lambda z: softmax_cross_entropy(z.reshape(5, 3), codes, weights)[0], logits.ravel()
    )
    np.testing.assert_allclose(grad.ravel(), numerical, rtol=1e-6, atol=1e-10)

    outputs, targets = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    loss, grad = squared_error(outputs, targets, weights)
    assert loss == pytest.approx(np.dot(weights, ((outputs - targets) ** 2).mean(axis=1)) / 2)
    np.testing.assert_allclose(grad, weights[:, None] * (outputs - targets) / 2)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss, grad = softmax_cross_entropy(np.array([[1e4, 0.0]]), np.array([1]), np.ones(1))
    assert loss == pytest.approx(1e4)
    np.testing.assert_allclose(grad, [[1.0, -1.0]])


@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_matches_scikit_learn(nesterov):
    rng = np.random.default_rng(0)
    params = rng.normal(size=7)
    reference = [params.copy()]
    ours = SGD(params, 0.1, momentum=0.9, nesterov=nesterov)
    theirs = SGDOptimizer(reference, 0.1, momentum=0.9, nesterov=nesterov)
    for _ in range(5):
        grad = rng.normal(size=7)
        ours.update(params, grad)
        theirs.update_params(reference, [grad])
    np.testing.assert_allclose(params, reference[0], rtol=1e-14)


def test_adam_matches_scikit_learn():
    rng = np.random.default_rng(0)
    params = rng.normal(size=7)
    reference = [params.copy()]
    ours, theirs = Adam(params, 0.01), AdamOptimizer(reference, 0.01)
    for _ in range(5):
        grad = rng.normal(size=7)
        ours.update(params, grad)
        theirs.update_params(reference, [grad])
    np.testing.assert_allclose(params, reference[0], rtol=1e-14)


def test_adam_keeps_float32():
    params = np.ones(4, dtype=np.float32)
    Adam(params, 0.01).update(params, np.ones(4, dtype=np.float32))
    assert params.dtype == np.float32


@pytest.mark.parametrize("solver", ["adam", "sgd", "sgd-nesterov"])
def test_float32_updates_follow_their_rule(solver):
    # The C loops against the rules written out in NumPy float64, over a length that is not
    # a multiple of any vector width.
    rng = np.random.default_rng(1)
    params = rng.normal(size=1003).astype(np.float32)
    expected = params.astype(np.float64)
    if solver == "adam":
        ours = Adam(params, 0.01)
    else:
        ours = SGD(params, 0.1, momentum=0.9, nesterov=solver == "sgd-nesterov")
    m = np.zeros(1003)
    v = np.zeros(1003)
    for t in range(1, 6):
        grad = rng.normal(size=1003).astype(np.float32)
        ours.update(params, grad)
        g = grad.astype(np.float64)
        if solver == "adam":
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            expected -= 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-8)
        else:
            m = 0.9 * m - 0.1 * g
            expected += 0.9 * m - 0.1 * g if solver == "sgd-nesterov" else m
    np.testing.assert_allclose(params, expected, rtol=1e-5, atol=1e-6)


def test_optimizer_arrays_of_different_lengths_are_refused():
    params = np.ones(4)
    with pytest.raises(ValueError, match="one length"):
        Adam(params, 0.01).update(params, np.ones(3))
    with pytest.raises(ValueError, match="one length"):
        SGD(params, 0.01).update(params, np.ones(5))


def test_clip_by_global_norm():
    grad = np.array([3.0, 4.0])
    assert clip_by_global_norm(grad, 10.0) == 5.0
    np.testing.assert_array_equal(grad, [3.0, 4.0])
    assert clip_by_global_norm(grad, 1.0) == 5.0
    np.testing.assert_allclose(grad, [0.6, 0.8])
    assert clip_by_global_norm(grad, None) == pytest.approx(1.0)
    big = np.full(4, 1e30, dtype=np.float32)  # its float32 sum of squares overflows
    assert clip_by_global_norm(big, 1.0) == pytest.approx(2e30)
    np.testing.assert_allclose(big, 0.5, rtol=1e-6)
    assert not np.isfinite(clip_by_global_norm(np.array([np.nan, 1.0]), 1.0))
    assert clip_by_global_norm(np.array([np.inf, 1.0]), None) == np.inf
    assert clip_by_global_norm(np.zeros(0), 1.0) == 0.0
    # Summed in double: the norm of many float32 entries is exact to float64 rounding.
    many = np.random.default_rng(0).normal(size=10_001).astype(np.float32)
    expected = np.linalg.norm(many.astype(np.float64))
    assert clip_by_global_norm(many, None) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("Optimizer", [SGD, Adam])
def test_the_plateau_rule_divides_the_learning_rate_by_5_down_to_1e_6(Optimizer, capsys):
    # As scikit-learn's _stochastic_optimizers.py trigger_stopping: the loop only asks.
    assert Optimizer(np.ones(2), 1e-3).trigger_stopping("Plateau.", verbose=False)
    optimizer = Optimizer(np.ones(2), 1e-3, schedule="adaptive")
    rates = []
    while not optimizer.trigger_stopping("Plateau.", verbose=True):
        rates.append(optimizer.learning_rate)
    np.testing.assert_allclose(rates, [2e-4, 4e-5, 8e-6, 1.6e-6])
    assert optimizer.learning_rate == pytest.approx(1.6e-6)
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0] == "Plateau. Setting learning rate to 0.0002." and out[-1] == "Plateau. Stopping."
    )
