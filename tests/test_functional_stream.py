"""functional.Stream: step by step with carried state equals forward over the whole sequence."""

import numpy as np
import pytest

from crnn.functional import RNNLayout, Stream, forward, init_params


def _setup(cell, nonlinearity="tanh", dtype=np.float64, B=3, T=7):
    layout = RNNLayout(cell, 4, (5, 3), nonlinearity=nonlinearity)
    params = init_params(layout, random_state=1, dtype=dtype)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(T, B, 4)).astype(dtype)
    h0 = [rng.normal(size=(1, B, H)).astype(dtype) for H in layout.hidden_sizes]
    c0 = [rng.normal(size=(1, B, H)).astype(dtype) for H in layout.hidden_sizes]
    return layout, params, X, h0, c0 if cell == "lstm" else None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_steps_equal_whole_sequence(cell, dtype):
    name, nonlinearity = cell
    layout, params, X, h0, c0 = _setup(name, nonlinearity, dtype)
    Y, (h_n, c_n), _ = forward(layout, params, X, h0=h0, c0=c0, keep_cache=False)
    stream = Stream(layout, params, batch_size=X.shape[1], h0=h0, c0=c0)
    steps = np.stack([stream.step(x) for x in X])
    np.testing.assert_array_equal(steps, Y)
    h, c = stream.state
    for a, b in zip(h, h_n):
        np.testing.assert_array_equal(a, b)
    if name == "lstm":
        for a, b in zip(c, c_n):
            np.testing.assert_array_equal(a, b)
    else:
        assert c is None


def test_state_resumes_forward_and_reset_starts_over():
    layout, params, X, h0, c0 = _setup("lstm")
    stream = Stream(layout, params, batch_size=3)
    first = [stream.step(x) for x in X[:4]]
    h, c = stream.state
    Y_rest, _, _ = forward(layout, params, X[4:], h0=h, c0=c, keep_cache=False)
    np.testing.assert_array_equal(np.stack([stream.step(x) for x in X[4:]]), Y_rest)
    stream.reset()
    np.testing.assert_array_equal(np.stack([stream.step(x) for x in X[:4]]), np.stack(first))


def test_params_are_copied():
    layout, params, X, _, _ = _setup("gru")
    stream = Stream(layout, params, batch_size=3)
    expected = stream.step(X[0])
    params[:] = 0
    stream.reset()
    np.testing.assert_array_equal(stream.step(X[0]), expected)


def test_bad_use_is_refused():
    layout, params, X, _, _ = _setup("gru")
    bi = RNNLayout("gru", 4, (5,), bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        Stream(bi, init_params(bi))
    with pytest.raises(ValueError, match="batch_size"):
        Stream(layout, params, batch_size=0)
    stream = Stream(layout, params, batch_size=3)
    with pytest.raises(ValueError, match=r"x must have shape \(3, 4\)"):
        stream.step(X[0, :2])
    with pytest.raises(ValueError, match="2 dimensions"):
        stream.step(X[:2])
    with pytest.raises(TypeError, match="float64"):
        stream.step(X[0].astype(np.float32))
    bad = X[0].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        stream.step(bad)
    with pytest.raises(ValueError, match="c0 is the LSTM"):
        stream.reset(c0=[np.zeros((1, 3, 5)), np.zeros((1, 3, 3))])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_single_sequence_path_agrees_with_batched_path(cell, dtype, rtol):
    # One active sequence goes through GEMV, several through GEMM: they must agree.
    name, nonlinearity = cell
    layout, params, X, h0, c0 = _setup(name, nonlinearity, dtype)
    Y, _, _ = forward(layout, params, X, h0=h0, c0=c0, keep_cache=False)
    stream = Stream(
        layout,
        params,
        batch_size=1,
        h0=[h[:, :1] for h in h0],
        c0=None if c0 is None else [c[:, :1] for c in c0],
    )
    steps = np.stack([stream.step(x[:1]) for x in X])
    np.testing.assert_allclose(steps, Y[:, :1], rtol=rtol, atol=rtol)


def test_refused_step_leaves_the_state_unchanged():
    layout, params, X, _, _ = _setup("lstm")
    stream, clean = Stream(layout, params, batch_size=3), Stream(layout, params, batch_size=3)
    stream.step(X[0]), clean.step(X[0])
    for bad_value in (np.nan, np.inf, -np.inf):
        bad = X[1].copy()
        bad[2, 3] = bad_value
        with pytest.raises(ValueError, match="NaN or infinity"):
            stream.step(bad)
    np.testing.assert_array_equal(stream.step(X[1]), clean.step(X[1]))


def test_unchecked_stream_lets_nan_through():
    layout, params, X, _, _ = _setup("gru")
    stream = Stream(layout, params, batch_size=3, check_finite=False)
    bad = X[0].copy()
    bad[1, 0] = np.nan
    y = stream.step(bad)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


@pytest.mark.parametrize("layout_of_x", ["fortran", "strided", "list"])
def test_any_array_layout_of_a_step_is_read_right(layout_of_x):
    layout, params, X, _, _ = _setup("rnn")
    expected = Stream(layout, params, batch_size=3).step(X[0])
    x = {
        "fortran": np.asfortranarray(X[0]),
        "strided": np.repeat(X[0], 2, axis=1)[:, ::2],
        "list": X[0].tolist(),
    }[layout_of_x]
    np.testing.assert_array_equal(Stream(layout, params, batch_size=3).step(x), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_head_applies_a_dense_layer_in_the_same_call(dtype):
    layout, params, X, h0, c0 = _setup("lstm", dtype=dtype)
    rng = np.random.default_rng(3)
    W = rng.normal(size=(layout.output_size, 2)).astype(dtype)
    b = rng.normal(size=2).astype(dtype)
    for batch in (1, 3):  # one row runs as a GEMV, several as a GEMM
        plain = Stream(layout, params, batch_size=batch)
        headed = Stream(layout, params, batch_size=batch, head=(W, b))
        for x in X[:, :batch]:
            expected = plain.step(x) @ W + b
            rtol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(headed.step(x), expected, rtol=rtol)
        for a, b_ in zip(headed.state[0], plain.state[0]):
            np.testing.assert_array_equal(a, b_)
    with pytest.raises(ValueError, match=r"head W must have shape \(3, n_outputs\)"):
        Stream(layout, params, head=(W[:2], b))
    with pytest.raises(ValueError, match="head must be a pair"):
        Stream(layout, params, head=W)
    other = np.float32 if dtype == np.float64 else np.float64
    with pytest.raises(TypeError, match="head W is .* but params are"):
        Stream(layout, params, head=(W.astype(other), b))
