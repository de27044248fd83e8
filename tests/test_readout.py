"""Sequence-to-vector readouts (crnn.functional.readout_forward / readout_backward): the NumPy
reference, central finite differences, float32, padding, bidirectional layers, bad input."""

import numpy as np
import pytest
from harness import numerical_gradient
from reference import readout as reference_readout

from crnn.functional import (
    READOUTS,
    RNNLayout,
    forward,
    init_params,
    init_readout_params,
    readout_backward,
    readout_forward,
    readout_params_size,
)

LENGTHS = np.array([3, 5, 1, 4])  # unsorted, covering 1 and T


def problem(kind, D=1, H=3, T=5, lengths=LENGTHS, A=4, seed=0):
    """Y (T, B, D*H) zero past each length, the attention params (non-zero v), and R."""
    rng = np.random.default_rng(seed)
    B, F = len(lengths), D * H
    Y = rng.normal(size=(T, B, F))
    Y[np.arange(T)[:, None] >= lengths] = 0
    params = None
    if kind == "attention":
        params = init_readout_params(kind, F, A, random_state=seed)
        params[F * A :] = rng.normal(size=2 * A)  # b_a and v start at zero: make them count
    return Y, params, rng.normal(size=(B, F))


@pytest.mark.parametrize("D", [1, 2], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", READOUTS)
@pytest.mark.parametrize("lengths", [LENGTHS, np.full(4, 5)], ids=["variable", "equal"])
def test_matches_reference(kind, D, lengths):
    Y, params, R = problem(kind, D, lengths=lengths)
    features, cache = readout_forward(kind, Y, lengths, params, num_directions=D)
    dY, dparams = readout_backward(cache, R)
    expected, dY_ref, dparams_ref = reference_readout(kind, Y, lengths, D, params, R)
    np.testing.assert_allclose(features, expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dY, dY_ref, rtol=1e-12, atol=1e-13)
    if kind == "attention":
        np.testing.assert_allclose(dparams, dparams_ref, rtol=1e-12, atol=1e-13)
    else:
        assert dparams is None
    assert not dY[np.arange(5)[:, None] >= lengths].any()  # nothing flows to padding


@pytest.mark.parametrize("D", [1, 2], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", READOUTS)
def test_gradients_match_finite_differences(kind, D):
    Y, params, R = problem(kind, D, seed=1)
    _, cache = readout_forward(kind, Y, LENGTHS, params, num_directions=D)
    dY, dparams = readout_backward(cache, R)

    def loss():
        return np.sum(readout_forward(kind, Y, LENGTHS, params, num_directions=D)[0] * R)

    np.testing.assert_allclose(dY, numerical_gradient(loss, Y), rtol=1e-6, atol=1e-8)
    if params is not None:
        np.testing.assert_allclose(dparams, numerical_gradient(loss, params), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", READOUTS)
def test_float32_matches_float64(kind):
    Y, params, R = problem(kind, 2, seed=2)
    f64, c64 = readout_forward(kind, Y, LENGTHS, params, num_directions=2)
    f32, c32 = readout_forward(
        kind,
        Y.astype(np.float32),
        LENGTHS,
        None if params is None else params.astype(np.float32),
        2,
    )
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, f64, rtol=1e-5, atol=1e-6)
    for g32, g64 in zip(readout_backward(c32, R.astype(np.float32)), readout_backward(c64, R)):
        if g64 is not None:
            assert g32.dtype == np.float32
            np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", READOUTS)
def test_padding_never_counts(kind):
    """A sequence reads the same alone as in a padded batch, whatever the padding holds."""
    Y, params, R = problem(kind, 2, seed=3)
    Y[np.arange(5)[:, None] >= LENGTHS] = np.nan
    features, cache = readout_forward(kind, Y, LENGTHS, params, num_directions=2)
    dY, dparams = readout_backward(cache, R)
    total = np.zeros_like(dparams) if dparams is not None else None
    for b, L in enumerate(LENGTHS):
        alone, c = readout_forward(kind, Y[:L, b : b + 1], None, params, num_directions=2)
        dY_alone, dp = readout_backward(c, R[b : b + 1])
        np.testing.assert_allclose(features[b], alone[0], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(dY[:L, b], dY_alone[:, 0], rtol=1e-13, atol=1e-14)
        if dp is not None:
            total += dp
    assert np.isfinite(features).all() and np.isfinite(dY).all()
    if dparams is not None:
        np.testing.assert_allclose(dparams, total, rtol=1e-12, atol=1e-13)


def test_last_is_each_directions_final_state():
    layout = RNNLayout("gru", 2, (3,), bidirectional=True)
    X = np.random.default_rng(4).normal(size=(5, 4, 2))
    Y, (h_n, _), _ = forward(layout, init_params(layout, random_state=0), X, LENGTHS)
    features, _ = readout_forward("last", Y, LENGTHS, num_directions=2)
    np.testing.assert_array_equal(features, np.concatenate([h_n[0][0], h_n[0][1]], axis=1))


def test_max_gradient_goes_to_the_first_maximum():
    Y = np.array([[[1.0]], [[2.0]], [[2.0]], [[0.5]]])  # (T=4, B=1, F=1), tie at t = 1, 2
    features, cache = readout_forward("max", Y)
    dY, _ = readout_backward(cache, np.ones((1, 1)))
    assert features[0, 0] == 2.0
    np.testing.assert_array_equal(dY[:, 0, 0], [0, 1, 0, 0])


def test_attention_starts_as_mean_pooling():
    Y, _, _ = problem("mean", 1, seed=5)
    params = init_readout_params("attention", 3, 4, random_state=0)
    assert params.shape == (readout_params_size("attention", 3, 4),) == (20,)
    np.testing.assert_allclose(
        readout_forward("attention", Y, LENGTHS, params)[0],
        readout_forward("mean", Y, LENGTHS)[0],
        rtol=1e-13,
    )
    assert readout_params_size("mean", 3) == 0 and init_readout_params("max", 3).size == 0
    assert readout_params_size("attention", 3) == 5  # attention_size max(1, F // 4)
    assert readout_params_size("attention", 64) == 66 * 16


def test_attention_weights_follow_the_scores():
    """v along one feature: the step where it is largest dominates the pooled vector."""
    Y = np.zeros((6, 1, 2))
    Y[:, 0, 0] = [0, 0, 3, 0, 0, 0]
    Y[:, 0, 1] = np.arange(6)
    params = np.concatenate([[10.0, 0.0], [0.0], [20.0]])  # W_a (2, 1), b_a, v: A = 1
    features, _ = readout_forward("attention", Y, None, params)
    np.testing.assert_allclose(features[0], Y[2, 0], atol=1e-3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda Y: readout_forward("median", Y), "readout must be one of"),
        (lambda Y: readout_forward("mean", Y, [3, 9]), r"length must be in \[1, T=5\]"),
        (lambda Y: readout_forward("mean", Y, [3]), "lengths must have shape"),
        (lambda Y: readout_forward("attention", Y), "needs params"),
        (lambda Y: readout_forward("attention", Y, None, np.ones(7)), r"\(F \+ 2\) \* A"),
        (lambda Y: readout_forward("mean", Y, None, np.ones(8)), "has no parameters"),
        (lambda Y: readout_forward("last", Y, None, None, num_directions=3), "num_directions"),
        (lambda Y: readout_forward("attention", Y, None, np.ones(8, np.float32)), "float32"),
        (
            lambda Y: readout_backward(readout_forward("max", Y)[1], np.ones((2, 3))),
            r"dfeatures must have shape \(2, 2\)",
        ),
    ],
)
def test_bad_input_is_refused(call, message):
    Y = np.random.default_rng(6).normal(size=(5, 2, 2))
    with pytest.raises((ValueError, TypeError), match=message):
        call(Y)


def test_nan_and_cache_reuse_are_refused():
    Y = np.ones((3, 2, 2))
    Y[1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity within the sequences' lengths"):
        readout_forward("mean", Y)
    _, cache = readout_forward("mean", Y, [3, 1])  # NaN at t=1 of a length-1 sequence: padding
    readout_backward(cache, np.ones((2, 2)))
    with pytest.raises(ValueError, match="already used"):
        readout_backward(cache, np.ones((2, 2)))


def test_kernel_glue_refuses_inconsistent_buffers():
    from crnn import _kernels as K

    Y = np.zeros((4, 2, 6))
    lengths = np.array([4, 2], np.intc)
    out = np.empty((2, 6))
    attention, mean = K.READOUTS["attention"], K.READOUTS["mean"]
    with pytest.raises(ValueError, match="params has the wrong size"):
        K.readout_forward(attention, Y, lengths, 1, np.zeros(9), out, np.empty(100))
    with pytest.raises(ValueError, match="reserve too small"):
        K.readout_forward(attention, Y, lengths, 1, np.zeros(8), out, np.empty(3))
    with pytest.raises(ValueError, match="sorted non-increasing"):
        K.readout_forward(mean, Y, lengths[::-1].copy(), 1, None, out, None)
    with pytest.raises(ValueError, match="num_directions equal halves"):
        K.readout_forward(mean, Y, lengths, 4, None, out, None)
    with pytest.raises(ValueError, match="out must be"):
        K.readout_forward(mean, Y, lengths, 1, None, np.empty((2, 5)), None)
    assert K.readout_sizes(attention, 4, 2, 2, 3, 5) == (8 * 5, 4 * 2 * 6 + 2 * 7)
    assert K.readout_sizes(K.READOUTS["max"], 4, 2, 2, 3, 0) == (0, 2 * 6)
