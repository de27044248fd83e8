"""Recurrent (variational) and input dropout of crnn.functional.forward: the NumPy reference
given the drawn masks (one per sequence, the same at every step), finite differences with a
fixed seed, p = 0, float32, batch splits, and the step shortening of pool_steps."""

import numpy as np
import pytest
from harness import assert_results_close, layout_for, random_problem
from reference import Net, run
from test_functional_gradcheck import numerical_gradient

from crnn.functional import backward, forward, pool_steps


def drawn_masks(cache, B):
    """The recurrent masks (per layer, (D, B, H)) and input mask (B, I) a forward call drew,
    in batch order (test-only access to the cache)."""
    recurrent, inputs = None, None
    for part, part_cache in cache.parts:
        masks = part_cache.dropout
        index = slice(None) if part is None else part
        if masks.recurrent is not None:
            if recurrent is None:
                recurrent = [np.zeros((m.shape[0], B, m.shape[2])) for m in masks.recurrent]
            for full, m in zip(recurrent, masks.recurrent):
                full[:, index] = m
        if masks.input is not None:
            if inputs is None:
                inputs = np.zeros((B, masks.input.shape[2]))
            inputs[index] = masks.input[0]
    return recurrent, inputs


def run_with_dropout(p, dtype=np.float64, keep_cache=True, **dropout):
    def cast(a):
        return None if a is None else a.astype(dtype)

    def cast_all(arrays):
        return None if arrays is None else [cast(a) for a in arrays]

    return forward(
        layout_for(p.net),
        cast(p.params),
        cast(p.X),
        p.lengths,
        cast_all(p.h0),
        cast_all(p.c0),
        random_state=0,
        keep_cache=keep_cache,
        **dropout,
    )


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("variable", [False, True], ids=["equal", "variable"])
def test_matches_reference_given_the_masks(cell, bidirectional, variable):
    """The reference applies one mask per sequence at every step: crnn must agree with it on
    outputs, states and every gradient."""
    net = Net(cell[0], 2, (3, 4), bidirectional, cell[1])
    p = random_problem(net, T=5, B=3, variable=variable, init=True, seed=7)
    Y, (h_n, c_n), cache = run_with_dropout(p, recurrent_dropout=0.4, input_dropout=0.3)
    masks, input_mask = drawn_masks(cache, 3)
    dX, dh0, dc0, grad = backward(cache, p.dY, p.dh_n, p.dc_n)
    expected = run(
        net,
        p.params,
        p.X,
        p.lengths,
        p.h0,
        p.c0,
        p.dY,
        p.dh_n,
        p.dc_n,
        recurrent_masks=masks,
        input_mask=input_mask,
    )
    actual = dict(Y=Y, h_n=h_n, c_n=c_n, dX=dX, dh0=dh0, dc0=dc0, grad=grad)
    assert_results_close(actual, expected, 1e-12, 1e-13)
    # inverted dropout: every entry 0 or 1/(1-p)
    for m, rate in ((np.concatenate([m.ravel() for m in masks]), 0.4), (input_mask, 0.3)):
        assert set(np.unique(m)) <= {0.0, 1 / (1 - rate)}


def test_masks_are_not_drawn_per_step():
    """Against the reference with a fresh mask per step (what variational dropout is not)."""
    net = Net("gru", 2, (6,))
    p = random_problem(net, T=6, B=2, seed=8)
    Y, _, cache = run_with_dropout(p, recurrent_dropout=0.5)
    masks, _ = drawn_masks(cache, 2)
    assert np.abs(Y - run(net, p.params, p.X, recurrent_masks=masks)["Y"]).max() < 1e-12
    assert np.abs(Y - run(net, p.params, p.X)["Y"]).max() > 1e-3


def test_zero_rate_is_no_dropout(cell):
    net = Net(cell[0], 2, (3, 2), True, cell[1])
    p = random_problem(net, T=5, B=3, variable=True, init=True, seed=9)
    Y, (h_n, _), cache = run_with_dropout(p, recurrent_dropout=0.0, input_dropout=0.0)
    Y_plain, (h_plain, _), cache_plain = forward(
        layout_for(net), p.params, p.X, p.lengths, p.h0, p.c0
    )
    np.testing.assert_array_equal(Y, Y_plain)
    np.testing.assert_array_equal(h_n[1], h_plain[1])
    np.testing.assert_array_equal(backward(cache, p.dY)[3], backward(cache_plain, p.dY)[3])
    # the masks between layers are drawn as before the recurrent ones existed
    with_between = run_with_dropout(p, dropout=0.3, recurrent_dropout=0.0)[0]
    np.testing.assert_array_equal(
        with_between,
        forward(
            layout_for(net), p.params, p.X, p.lengths, p.h0, p.c0, dropout=0.3, random_state=0
        )[0],
    )


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_gradients_match_finite_differences(cell, bidirectional):
    """A fixed random_state draws the same masks at every call: the loss is smooth in every
    input and parameter."""
    net = Net(cell[0], 2, (3, 2), bidirectional, cell[1])
    p = random_problem(net, T=4, B=3, variable=True, init=True, seed=10)
    rates = dict(recurrent_dropout=0.4, input_dropout=0.3)
    _, _, cache = run_with_dropout(p, **rates)
    dX, dh0, _, grad = backward(cache, p.dY)

    def loss():
        return np.sum(run_with_dropout(p, keep_cache=False, **rates)[0] * p.dY)

    np.testing.assert_allclose(dX, numerical_gradient(loss, p.X), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad, numerical_gradient(loss, p.params), rtol=1e-6, atol=1e-8)
    for layer in range(net.num_layers):
        np.testing.assert_allclose(
            dh0[layer], numerical_gradient(loss, p.h0[layer]), rtol=1e-6, atol=1e-8
        )


def test_float32_matches_float64(cell):
    net = Net(cell[0], 2, (4,), True, cell[1])
    p = random_problem(net, T=5, B=3, variable=True, seed=11)
    rates = dict(recurrent_dropout=0.3, input_dropout=0.2)
    Y64, _, c64 = run_with_dropout(p, **rates)
    Y32, _, c32 = run_with_dropout(p, np.float32, **rates)
    np.testing.assert_allclose(Y32, Y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        backward(c32, p.dY.astype(np.float32))[3], backward(c64, p.dY)[3], rtol=1e-3, atol=1e-4
    )


def test_masks_do_not_depend_on_the_batch_split():
    net = Net("lstm", 3, (64,))
    p = random_problem(net, T=3, B=32, variable=True, seed=12)
    rates = dict(recurrent_dropout=0.3, input_dropout=0.3, random_state=0)
    one = forward(layout_for(net), p.params, p.X, p.lengths, **rates)
    two = forward(layout_for(net), p.params, p.X, p.lengths, n_threads=2, **rates)
    assert len(two[2].parts) == 2
    masks, input_mask = drawn_masks(one[2], 32)
    assert abs(np.mean(masks[0] == 0) - 0.3) < 0.02  # 2048 units
    assert 0.15 < np.mean(input_mask == 0) < 0.45  # 96 features
    np.testing.assert_allclose(two[0], one[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        backward(two[2], p.dY)[3], backward(one[2], p.dY)[3], rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("name", ["recurrent_dropout", "input_dropout"])
def test_rate_outside_0_1_is_refused(name):
    net = Net("rnn", 2, (3,))
    p = random_problem(net, seed=13)
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\)"):
        forward(layout_for(net), p.params, p.X, **{name: 1.0})


# ---------------------------------------------------------------------------- pool_steps


def pooled_reference(X, lengths, k, mode):
    T, B, I = X.shape
    steps = -(-T // k)
    out = np.zeros((steps, B, I))
    for b, L in enumerate(lengths):
        for j in range(-(-L // k)):
            block = X[j * k : min((j + 1) * k, L), b]
            out[j, b] = block.mean(axis=0) if mode == "mean" else block[0]
    return out


@pytest.mark.parametrize("mode", ["mean", "stride"])
@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_pool_steps_matches_reference(mode, k):
    X = np.random.default_rng(14).normal(size=(10, 4, 2))
    lengths = np.array([10, 4, 1, 7])
    X[np.arange(10)[:, None] >= lengths] = np.nan  # padding is never read
    pooled, new_lengths = pool_steps(X, k, lengths, mode)
    np.testing.assert_array_equal(new_lengths, -(-lengths // k))
    assert pooled.shape == (-(-10 // k), 4, 2)
    np.testing.assert_allclose(pooled, pooled_reference(X, lengths, k, mode), rtol=1e-14)


def test_pool_steps_keeps_float32_and_refuses_bad_input():
    X = np.ones((5, 2, 3), np.float32)
    assert pool_steps(X, 2)[0].dtype == np.float32
    with pytest.raises(ValueError, match="k must be a positive int"):
        pool_steps(X, 0)
    with pytest.raises(ValueError, match="mode must be"):
        pool_steps(X, 2, mode="max")
    with pytest.raises(ValueError, match=r"length must be in \[1, T=5\]"):
        pool_steps(X, 2, [6, 1])


def test_kernel_glue_checks_the_mask():
    from crnn import _kernels as K

    T, B, I, H = 3, 2, 2, 4
    cell = K.CELLS["gru"]
    plain, masked = K.buffer_sizes(cell, T, B, I, H), K.buffer_sizes(cell, T, B, I, H, True)
    assert masked[0] == plain[0] + T * B * H  # the masked states every step multiplied
    args = (
        cell,
        np.zeros((T, B, I)),
        np.full(B, T, np.intc),
        np.zeros((I, 3 * H)),
        np.zeros((H, 3 * H)),
        np.zeros(3 * H),
        np.zeros(H),
        None,
        None,
        np.zeros((T, B, H)),
        0,
        np.zeros((B, H)),
        None,
        np.empty(masked[0]),
        np.empty(masked[1]),
        False,
    )
    with pytest.raises(ValueError, match=r"mask must be \(B, H\)"):
        K.forward(*args, np.ones((B, H + 1)))
    with pytest.raises(ValueError, match="reserve too small"):
        K.forward(*args[:13], np.empty(plain[0]), np.empty(masked[1]), False, np.ones((B, H)))
    K.forward(*args, np.ones((B, H)))
