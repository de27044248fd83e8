"""Input validation of crnn.functional: bad input never reaches the kernels.

Each bad input raises a ValueError (shapes, lengths, non-finite values) or a
TypeError (dtypes) whose message names the culprit; unusual but valid memory
layouts (non-contiguous, Fortran-ordered, read-only) give the same result as
the plain arrays.
"""

import re

import numpy as np
import pytest
from harness import layout_for, random_problem
from reference import Net

from crnn.functional import RNNLayout, backward, forward

T, B = 5, 3


@pytest.fixture
def lstm():
    """A random 2-layer bidirectional LSTM problem with initial states."""
    net = Net("lstm", 2, (3, 2), True)
    return layout_for(net), random_problem(net, T=T, B=B, variable=True, init=True, seed=40)


@pytest.fixture
def gru():
    net = Net("gru", 2, (3,), False)
    return layout_for(net), random_problem(net, T=T, B=B, variable=True, init=True, seed=41)


def run(layout, p, **changes):
    """forward then backward on problem ``p`` with some arguments replaced."""
    args = dict(
        params=p.params,
        X=p.X,
        lengths=p.lengths,
        h0=p.h0,
        c0=p.c0,
        dY=p.dY,
        dh_n=p.dh_n,
        dc_n=p.dc_n,
        truncate=None,
    )
    args.update(changes)
    Y, states, cache = forward(
        layout, args["params"], args["X"], args["lengths"], args["h0"], args["c0"]
    )
    return (Y, states) + backward(cache, args["dY"], args["dh_n"], args["dc_n"], args["truncate"])


def assert_same(actual, expected):
    for a, e in zip(actual, expected):
        if isinstance(e, (list, tuple)):
            assert_same(a, e)
        else:
            np.testing.assert_array_equal(a, e)


# -- the layout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cell="transformer"), "cell must be one of"),
        (dict(cell="LSTM"), "cell must be one of"),
        (dict(nonlinearity="sigmoid"), "nonlinearity must be 'tanh' or 'relu'"),
        (dict(hidden_sizes=()), "hidden_sizes must be a positive int"),
        (dict(hidden_sizes=0), "hidden_sizes must be a positive int"),
        (dict(hidden_sizes=(3, -1)), "hidden_sizes must be a positive int"),
        (dict(hidden_sizes=(2.5,)), "hidden_sizes must be a positive int"),
        (dict(hidden_sizes=(True,)), "hidden_sizes must be a positive int"),
        (dict(input_size=0), "input_size must be a positive int"),
        (dict(input_size=2.0), "input_size must be a positive int"),
    ],
)
def test_bad_layout(kwargs, match):
    arguments = dict(cell="rnn", input_size=2, hidden_sizes=(3,)) | kwargs
    with pytest.raises(ValueError, match=match):
        RNNLayout(**arguments)


def test_views_of_a_wrong_size_array(lstm):
    layout, p = lstm
    with pytest.raises(ValueError, match=f"params has {p.params.size - 1} values"):
        layout.views(p.params[:-1])


# -- forward: params and X ----------------------------------------------------------------


def test_layout_must_be_an_rnn_layout(lstm):
    _, p = lstm
    with pytest.raises(TypeError, match="layout must be an RNNLayout"):
        forward(Net("lstm", 2, (3, 2), True), p.params, p.X)


@pytest.mark.parametrize(
    "shape, match",
    [
        ((10,), "params has 10 values"),
        ((2, 5), "params must have 1 dimensions"),
    ],
)
def test_params_of_wrong_shape(lstm, shape, match):
    layout, p = lstm
    with pytest.raises(ValueError, match=match):
        forward(layout, np.zeros(shape), p.X)


@pytest.mark.parametrize("shape", [(T, B * 2), (T, B, 2, 1), (T * B * 2,)])
def test_X_of_wrong_ndim(lstm, shape):
    layout, p = lstm
    with pytest.raises(ValueError, match=r"X must have 3 dimensions, got shape"):
        forward(layout, p.params, p.X.reshape(shape))


def test_X_with_wrong_number_of_features(lstm):
    layout, p = lstm
    with pytest.raises(
        ValueError, match="X has 3 features per step but the layout expects input_size=2"
    ):
        forward(layout, p.params, np.zeros((T, B, 3)))


@pytest.mark.parametrize("shape", [(0, B, 2), (T, 0, 2)], ids=["T=0", "B=0"])
def test_empty_X(lstm, shape):
    layout, p = lstm
    with pytest.raises(ValueError, match="at least one sequence of at least one step"):
        forward(layout, p.params, np.zeros(shape))


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex128, object, bool])
def test_X_of_non_float_dtype(lstm, dtype):
    layout, p = lstm
    with pytest.raises(
        TypeError, match=f"X must be a float32 or float64 array, got dtype {np.dtype(dtype)}"
    ):
        forward(layout, p.params, p.X.astype(dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex64])
def test_params_of_non_float_dtype(lstm, dtype):
    layout, p = lstm
    with pytest.raises(TypeError, match="params must be a float32 or float64 array"):
        forward(layout, p.params.astype(dtype), p.X)


def test_X_dtype_must_match_params_dtype(lstm):
    layout, p = lstm
    with pytest.raises(TypeError, match="X is float32 but params are float64"):
        forward(layout, p.params, p.X.astype(np.float32))
    with pytest.raises(TypeError, match="X is float64 but params are float32"):
        forward(layout, p.params.astype(np.float32), p.X)


# -- forward: lengths ------------------------------------------------------------------


@pytest.mark.parametrize(
    "lengths, match",
    [
        ([5, 5], r"lengths must have shape \(3,\), one per sequence"),
        ([5, 5, 5, 5], r"lengths must have shape \(3,\), one per sequence"),
        ([[5, 5, 5]], r"lengths must have shape \(3,\), one per sequence"),
        (5, r"lengths must have shape \(3,\), one per sequence"),
        ([5, 0, 3], r"every length must be in \[1, T=5\], got min 0"),
        ([5, -2, 3], r"every length must be in \[1, T=5\], got min -2"),
        ([6, 2, 3], r"every length must be in \[1, T=5\], got min 2 and max 6"),
    ],
)
def test_bad_lengths(lstm, lengths, match):
    layout, p = lstm
    with pytest.raises(ValueError, match=match):
        forward(layout, p.params, p.X, lengths)


@pytest.mark.parametrize("lengths", [[5, 2.5, 3], [5.0, 2.0, 3.0], ["5", "2", "3"], [5, None, 3]])
def test_non_integer_lengths(lstm, lengths):
    layout, p = lstm
    with pytest.raises(TypeError, match="lengths must be integers, got dtype"):
        forward(layout, p.params, p.X, np.array(lengths))


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64])
def test_lengths_of_any_integer_dtype(lstm, dtype):
    layout, p = lstm
    expected = run(layout, p)
    assert_same(run(layout, p, lengths=p.lengths.astype(dtype)), expected)
    assert_same(run(layout, p, lengths=p.lengths.tolist()), expected)


def test_full_lengths_equal_no_lengths(lstm):
    layout, p = lstm
    assert_same(run(layout, p, lengths=[T] * B), run(layout, p, lengths=None))


# -- forward: initial states ---------------------------------------------------------


@pytest.mark.parametrize("name", ["h0", "c0"])
@pytest.mark.parametrize("shape", [(2, B + 1, 3), (1, B, 3), (2, B, 2), (B, 3)])
def test_initial_state_of_wrong_shape(lstm, name, shape):
    layout, p = lstm
    states = {name: [np.zeros(shape), getattr(p, name)[1]]}
    with pytest.raises(ValueError, match=rf"{name}\[0\] must (have shape \(2, 3, 3\)|have 3 dim)"):
        run(layout, p, **states)


@pytest.mark.parametrize("name", ["h0", "c0"])
def test_initial_states_must_be_one_array_per_layer(lstm, name):
    layout, p = lstm
    match = f"{name} must be a list with one array per layer"
    with pytest.raises(ValueError, match=match):
        run(layout, p, **{name: getattr(p, name)[:1]})
    with pytest.raises(ValueError, match=match):
        run(layout, p, **{name: getattr(p, name)[0]})


def test_initial_state_dtype_must_match_params(lstm):
    layout, p = lstm
    with pytest.raises(TypeError, match=r"h0\[1\] is float32 but params are float64"):
        run(layout, p, h0=[p.h0[0], p.h0[1].astype(np.float32)])
    with pytest.raises(TypeError, match=r"c0\[0\] must be a float32 or float64 array"):
        run(layout, p, c0=[p.c0[0].astype(int), p.c0[1]])


def test_c0_for_a_cell_without_cell_state(gru):
    layout, p = gru
    with pytest.raises(ValueError, match="c0 is the LSTM's cell state; a 'gru' cell has none"):
        forward(layout, p.params, p.X, p.lengths, p.h0, c0=p.h0)


# -- forward: non-finite values and dropout -------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["params", "X", "h0", "c0"])
def test_non_finite_values(lstm, name, bad):
    layout, p = lstm
    value = getattr(p, name)
    value = [value[0], value[1].copy()] if name in ("h0", "c0") else value.copy()
    (value[1] if name in ("h0", "c0") else value).flat[3] = bad
    label = f"{name}[1]" if name in ("h0", "c0") else name
    with pytest.raises(ValueError, match=re.escape(f"{label} contains NaN or infinity")):
        run(layout, p, **{name: value})


def test_non_finite_values_propagate_without_the_check(lstm):
    layout, p = lstm
    X = p.X.copy()
    X[0, 1, 0] = np.nan
    Y, _, _ = forward(layout, p.params, X, p.lengths, check_finite=False)
    # sequence 1 is hit at step 0 in every direction; the others are not
    assert np.all(np.isnan(Y[: p.lengths[1], 1]))
    assert np.all(np.isfinite(Y[:, [0, 2]]))


def test_padding_may_hold_nan(lstm):
    # Steps past a sequence's length are never read, so NaN padding passes the check and
    # changes nothing; NaN inside a sequence does not pass.
    layout, p = lstm
    X, dY = p.X.copy(), p.dY.copy()
    short = int(np.argmin(p.lengths))
    X[p.lengths[short] :, short] = np.nan
    dY[p.lengths[short] :, short] = np.nan
    assert_same(run(layout, p, X=X, dY=dY), run(layout, p))
    X[p.lengths[short] - 1, short, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity within"):
        run(layout, p, X=X)
    dY[p.lengths[short] - 1, short, 0] = np.inf
    with pytest.raises(ValueError, match="dY contains NaN or infinity within"):
        run(layout, p, dY=dY)


def test_backward_check_finite_off_lets_nan_through(lstm):
    layout, p = lstm
    dY = p.dY.copy()
    dY[0, int(np.argmax(p.lengths)), 0] = np.nan
    Y, _, cache = forward(layout, p.params, p.X, p.lengths, p.h0, p.c0)
    with pytest.raises(ValueError, match="dY contains NaN"):
        backward(cache, dY)
    dX, _, _, grad = backward(cache, dY, check_finite=False)  # the refused call left it usable
    assert np.isnan(grad).any() and np.isnan(dX).any()


def test_non_native_byte_order_is_accepted(lstm):
    layout, p = lstm
    swapped = p.X.astype(p.X.dtype.newbyteorder(">" if p.X.dtype.byteorder != ">" else "<"))
    assert_same(run(layout, p, X=swapped), run(layout, p))


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5])
def test_bad_dropout(lstm, dropout):
    layout, p = lstm
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        forward(layout, p.params, p.X, dropout=dropout)


# -- forward: memory layouts that must be accepted -------------------------------------


def test_non_contiguous_inputs_give_the_same_result(lstm):
    layout, p = lstm
    expected = run(layout, p)
    batch_major = np.ascontiguousarray(p.X.swapaxes(0, 1)).swapaxes(0, 1)
    strided = np.zeros((T, B, 4))
    strided[:, :, ::2] = p.X
    assert not batch_major.flags.c_contiguous and not strided[:, :, ::2].flags.c_contiguous
    assert_same(run(layout, p, X=batch_major), expected)
    assert_same(run(layout, p, X=strided[:, :, ::2]), expected)
    assert_same(run(layout, p, X=np.asfortranarray(p.X)), expected)
    assert_same(
        run(
            layout,
            p,
            params=np.repeat(p.params, 2)[::2],
            h0=[np.asfortranarray(h) for h in p.h0],
            dY=np.asfortranarray(p.dY),
        ),
        expected,
    )


def test_read_only_inputs_are_accepted(lstm):
    layout, p = lstm
    expected = run(layout, p)
    arrays = [p.params, p.X, p.dY] + p.h0 + p.c0 + p.dh_n + p.dc_n
    for a in arrays:
        a.setflags(write=False)
    assert_same(run(layout, p), expected)


# -- backward ----------------------------------------------------------------------------


def test_backward_needs_a_cache(lstm):
    layout, p = lstm
    _, _, cache = forward(layout, p.params, p.X, keep_cache=False)
    with pytest.raises(TypeError, match="cache must be the third value returned by forward"):
        backward(cache, p.dY)


def test_a_cache_serves_one_backward(lstm):
    layout, p = lstm
    _, _, cache = forward(layout, p.params, p.X, p.lengths)
    backward(cache, p.dY)
    with pytest.raises(ValueError, match="this cache was already used by backward"):
        backward(cache, p.dY)


@pytest.mark.parametrize(
    "changes, error, match",
    [
        (dict(dY=np.zeros((T, B, 3))), ValueError, r"dY must have Y's shape \(5, 3, 4\)"),
        (dict(dY=np.zeros((T, B))), ValueError, "dY must have 3 dimensions"),
        (
            dict(dY=np.zeros((T, B, 4), np.float32)),
            TypeError,
            "dY is float32 but params are float64",
        ),
        (dict(dY=np.full((T, B, 4), np.nan)), ValueError, "dY contains NaN or infinity"),
        (
            dict(dh_n=[np.zeros((2, B, 3))]),
            ValueError,
            "dh_n must be a list with one array per layer",
        ),
        (
            dict(dc_n=[np.zeros((2, B, 3)), np.zeros((2, B, 3))]),
            ValueError,
            r"dc_n\[1\] must have shape \(2, 3, 2\)",
        ),
        (dict(truncate=0), ValueError, "truncate must be None or a positive int, got 0"),
        (dict(truncate=-1), ValueError, "truncate must be None or a positive int, got -1"),
        (dict(truncate=2.0), ValueError, "truncate must be None or a positive int, got 2.0"),
    ],
)
def test_bad_backward_arguments_leave_the_cache_usable(lstm, changes, error, match):
    layout, p = lstm
    _, _, cache = forward(layout, p.params, p.X, p.lengths, p.h0, p.c0)
    args = dict(dY=p.dY, dh_n=p.dh_n, dc_n=p.dc_n, truncate=None) | changes
    with pytest.raises(error, match=match):
        backward(cache, **args)
    assert_same(backward(cache, p.dY, p.dh_n, p.dc_n), run(layout, p)[2:])


def test_dc_n_for_a_cell_without_cell_state(gru):
    layout, p = gru
    _, _, cache = forward(layout, p.params, p.X, p.lengths)
    with pytest.raises(ValueError, match="dc_n is the LSTM's cell state gradient; a 'gru' cell"):
        backward(cache, p.dY, dc_n=p.dh_n)
