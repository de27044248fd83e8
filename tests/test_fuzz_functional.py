"""Fuzzing crnn.functional: unusual valid input works exactly, bad input raises clearly.

Hypothesis draws small problems (every cell, both dtypes, stacked and bidirectional
layers, every dimension from 1 up, lengths anywhere in [1, T], initial states or not,
truncation or not) and then

- presents the same data in unusual memory layouts (Fortran order, strides, negative
  strides, read-only, byte-swapped, lengths of another integer type, NaN in the padding):
  the results must be bit-identical to those of plain C-contiguous arrays;
- breaks exactly one thing (a dtype, a dimension set to 0 or off by one, a length of 0,
  -1 or T + 1, NaN or infinity at a random step within the lengths, a parameter past its
  bound, ...): the call must raise the documented exception, TypeError for dtypes and
  ValueError for everything else, with a message that names the culprit;
- puts NaN or infinity into one sequence with ``check_finite=False``: the other
  sequences' results must not change.

Sizes whose element counts overflow a C int are declared through zero-stride views (no
memory) and must be refused with a ValueError before anything large is allocated; a
subprocess with a capped address space proves it.

The normal suite runs a fixed sample; ``CRNN_FUZZ_EXAMPLES=N`` runs N fresh random
examples per test instead (see SECURITY.md).
"""

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from harness import FUZZ, fortran, read_only, reversed_strides, strided
from hypothesis import given
from hypothesis import strategies as st

from crnn.functional import RNNLayout, backward, forward

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
INT_MAX = 2**31 - 1


@st.composite
def problems(draw):
    """A small random problem: the layout and every argument of forward and backward."""
    cell, nonlinearity = draw(st.sampled_from(CELLS))
    hidden = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    layout = RNNLayout(cell, draw(st.integers(1, 3)), hidden, draw(st.booleans()), nonlinearity)
    T, B = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    D, lstm = layout.num_directions, cell == "lstm"

    def normal(*shape):
        return rng.normal(size=shape).astype(dtype)

    def states():
        return [normal(D, B, H) for H in hidden]

    with_state = draw(st.booleans())
    lengths = draw(st.none() | st.lists(st.integers(1, T), min_size=B, max_size=B))
    args = dict(
        params=(0.5 * normal(layout.n_params)),
        X=normal(T, B, layout.input_size),
        lengths=None if lengths is None else np.array(lengths),
        h0=states() if with_state else None,
        c0=states() if with_state and lstm else None,
        dY=normal(T, B, layout.output_size),
        dh_n=states(),
        dc_n=states() if lstm else None,
        truncate=draw(st.none() | st.integers(1, T + 1)),
    )
    return SimpleNamespace(layout=layout, T=T, B=B, dtype=dtype, args=args)


def run(layout, args, check_finite=True):
    """forward then backward; every result as a flat list of arrays."""
    Y, (h_n, c_n), cache = forward(
        layout,
        args["params"],
        args["X"],
        args["lengths"],
        args["h0"],
        args["c0"],
        check_finite=check_finite,
    )
    dX, dh0, dc0, grad = backward(cache, args["dY"], args["dh_n"], args["dc_n"], args["truncate"])
    return [Y, *h_n, *(c_n or []), dX, *dh0, *(dc0 or []), grad]


def assert_identical(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype
        np.testing.assert_array_equal(a, e, strict=True)


def lengths_of(p):
    return np.full(p.B, p.T) if p.args["lengths"] is None else p.args["lengths"]


def padding_mask(p):
    """(T, B) True at the steps past each sequence's length."""
    return np.arange(p.T)[:, None] >= lengths_of(p)


# -- unusual but valid layouts -------------------------------------------------------------


def byte_swapped(a):
    return a.astype(a.dtype.newbyteorder("S"))


LAYOUTS = [lambda a: a, fortran, strided, reversed_strides, read_only, byte_swapped]
LENGTH_FORMS = [
    list,
    tuple,
    lambda x: np.asarray(x, np.int8),
    lambda x: np.asarray(x, np.uint16),
    lambda x: np.asarray(x, np.int64),
    read_only,
]


@FUZZ
@given(problems(), st.data())
def test_unusual_layouts_give_bit_identical_results(p, data):
    expected = run(p.layout, p.args)
    Y, dX = expected[0], expected[1 + p.layout.num_layers * (2 if p.layout.cell == "lstm" else 1)]
    assert Y.shape == (p.T, p.B, p.layout.output_size) and dX.shape == p.args["X"].shape
    pad = padding_mask(p)
    assert not Y[pad].any() and not dX[pad].any()
    assert all(np.isfinite(r).all() for r in expected)

    variant = dict(p.args)
    for name in ("params", "X", "dY"):
        variant[name] = data.draw(st.sampled_from(LAYOUTS))(variant[name])
    for name in ("h0", "c0", "dh_n", "dc_n"):
        if variant[name] is not None:
            variant[name] = [data.draw(st.sampled_from(LAYOUTS))(s) for s in variant[name]]
    if variant["lengths"] is not None:
        variant["lengths"] = data.draw(st.sampled_from(LENGTH_FORMS))(variant["lengths"])
        if pad.any() and data.draw(st.booleans()):  # padding is never read
            variant["X"] = np.where(pad[:, :, None], np.nan, variant["X"])
            variant["dY"] = np.where(pad[:, :, None], np.inf, variant["dY"])
    assert_identical(run(p.layout, variant), expected)


# -- exactly one thing broken --------------------------------------------------------------

BAD_DTYPES = [
    np.int64,
    np.int8,
    np.uint8,
    np.float16,
    np.complex64,
    np.complex128,
    object,
    bool,
    "U3",
    "M8[s]",
]


def other_float(dtype):
    return np.float32 if dtype == np.float64 else np.float64


def within_lengths(p, data):
    """A random (t, b) inside a sequence."""
    b = data.draw(st.integers(0, p.B - 1))
    return data.draw(st.integers(0, lengths_of(p)[b] - 1)), b


def bad_dtype(p, data):
    name = data.draw(st.sampled_from(["params", "X"]))
    dtype = data.draw(st.sampled_from(BAD_DTYPES))
    return {name: p.args[name].astype(dtype)}, TypeError, name


def mismatched_float(p, data):
    names = [n for n in ("X", "h0", "c0", "dY", "dh_n", "dc_n") if p.args[n] is not None]
    name = data.draw(st.sampled_from(names))
    value = p.args[name]
    dtype = other_float(p.dtype)
    if isinstance(value, list):
        value = [s.astype(dtype) for s in value]
    else:
        value = value.astype(dtype)
    return {name: value}, TypeError, name


def wrong_ndim(p, data):
    name = data.draw(st.sampled_from(["params", "X", "dY"]))
    a = p.args[name]
    candidates = [np.asarray(a.flat[0]), a.reshape(-1), a[None], a[..., None]]
    value = data.draw(st.sampled_from([c for c in candidates if c.ndim != a.ndim]))
    return {name: value}, ValueError, name


def zero_or_off_by_one(p, data):
    """A dimension of X set to 0 or its features off by one; any dimension of dY off."""
    name = data.draw(st.sampled_from(["X", "dY"]))
    shape = list(p.args[name].shape)
    axis = data.draw(st.integers(0, 2))
    sizes = [0] if name == "X" and axis < 2 else [0, shape[axis] - 1, shape[axis] + 1]
    shape[axis] = data.draw(st.sampled_from(sizes))
    return {name: np.zeros(shape, p.dtype)}, ValueError, name


def wrong_params_size(p, data):
    delta = data.draw(st.sampled_from([-1, 1, -p.layout.n_params]))
    return {"params": np.zeros(p.layout.n_params + delta, p.dtype)}, ValueError, "params"


def bad_length_value(p, data):
    lengths = lengths_of(p).astype(np.int64)
    value = data.draw(
        st.sampled_from([0, -1, p.T + 1, INT_MAX, INT_MAX + 1, -(2**63), 2**63 - 1, 2**64 - 1])
    )
    if value >= 2**63:
        lengths = lengths.astype(np.uint64)
    lengths[data.draw(st.integers(0, p.B - 1))] = value
    return {"lengths": lengths}, ValueError, "length"


def bad_length_shape(p, data):
    lengths = lengths_of(p)
    value = data.draw(
        st.sampled_from(
            [
                lengths[:-1],
                np.append(lengths, 1),
                lengths[None],
                np.array(lengths[0]),
                np.array([], dtype=int),
            ]
        )
    )
    return {"lengths": value}, ValueError, "lengths"


def bad_length_dtype(p, data):
    lengths = lengths_of(p)
    dtype = data.draw(st.sampled_from([np.float64, np.float32, bool, object, "U3", np.complex128]))
    return {"lengths": lengths.astype(dtype)}, TypeError, "lengths"


def non_finite(p, data):
    names = [n for n in ("params", "X", "h0", "c0", "dY", "dh_n", "dc_n") if p.args[n] is not None]
    name = data.draw(st.sampled_from(names))
    bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    value = p.args[name]
    if name in ("X", "dY"):
        value = value.copy()
        t, b = within_lengths(p, data)
        value[t, b, data.draw(st.integers(0, value.shape[2] - 1))] = bad
    elif name == "params":
        value = value.copy()
        value[data.draw(st.integers(0, value.size - 1))] = bad
    else:
        layer = data.draw(st.integers(0, len(value) - 1))
        value = [s.copy() for s in value]
        value[layer].flat[data.draw(st.integers(0, value[layer].size - 1))] = bad
    return {name: value}, ValueError, name


def bad_states(p, data):
    names = [n for n in ("h0", "c0", "dh_n", "dc_n") if p.args[n] is not None] or ["h0"]
    name = data.draw(st.sampled_from(names))
    D, B, H = p.layout.num_directions, p.B, p.layout.hidden_sizes[0]
    good = [np.zeros((D, B, h), p.dtype) for h in p.layout.hidden_sizes]
    value = data.draw(
        st.sampled_from(
            [
                good[:-1],  # a layer missing
                good + good[:1],  # a layer too many
                good[0],  # an array, not a list
                [np.zeros((D, B + 1, H), p.dtype)] + good[1:],  # wrong batch
                [np.zeros((D, B, H + 1), p.dtype)] + good[1:],  # wrong width
                [np.zeros((3 - D, B, H), p.dtype)] + good[1:],  # wrong directions
                [np.zeros((B, H), p.dtype)] + good[1:],  # wrong ndim
            ]
        )
    )
    return {name: value}, ValueError, name


def cell_state_without_lstm(p, data):
    if p.layout.cell == "lstm":
        return bad_states(p, data)
    name = data.draw(st.sampled_from(["c0", "dc_n"]))
    value = [np.zeros((p.layout.num_directions, p.B, h), p.dtype) for h in p.layout.hidden_sizes]
    return {name: value}, ValueError, name


def bad_truncate(p, data):
    value = data.draw(st.sampled_from([0, -1, 2.0, True, "3", np.nan]))
    return {"truncate": value}, ValueError, "truncate"


BREAKERS = [
    bad_dtype,
    mismatched_float,
    wrong_ndim,
    zero_or_off_by_one,
    wrong_params_size,
    bad_length_value,
    bad_length_shape,
    bad_length_dtype,
    non_finite,
    bad_states,
    cell_state_without_lstm,
    bad_truncate,
]


@FUZZ
@given(problems(), st.sampled_from(BREAKERS), st.data())
def test_one_broken_argument_raises_a_clear_error(p, breaker, data):
    changes, error, culprit = breaker(p, data)
    with pytest.raises(error) as info:
        run(p.layout, {**p.args, **changes})
    assert type(info.value) is error  # not a subclass such as OverflowError
    assert culprit in str(info.value)


@FUZZ
@given(problems(), st.sampled_from([-0.1, 1.0, 1.5, np.nan, np.inf, -np.inf]))
def test_dropout_past_its_bounds(p, dropout):
    with pytest.raises(ValueError, match="dropout"):
        forward(p.layout, p.args["params"], p.args["X"], dropout=dropout)


@FUZZ
@given(problems(), st.sampled_from([None, 1, "not an RNNLayout"]))
def test_layout_must_be_a_layout(p, layout):
    with pytest.raises(TypeError, match="layout"):
        forward(layout, p.args["params"], p.args["X"])


@FUZZ
@given(problems(), st.data())
def test_non_finite_values_stay_in_their_sequence(p, data):
    # Without the check, NaN or infinity in one sequence's input or initial state reaches
    # that sequence's results only: the kernels never mix sequences.
    args = {**p.args, "truncate": None}
    expected = run(p.layout, args)
    b = data.draw(st.integers(0, p.B - 1))
    bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    args["X"] = args["X"].copy()
    t = data.draw(st.integers(0, lengths_of(p)[b] - 1))
    args["X"][t, b, data.draw(st.integers(0, p.layout.input_size - 1))] = bad
    if args["h0"] is not None and data.draw(st.booleans()):
        args["h0"] = [h.copy() for h in args["h0"]]
        args["h0"][-1][:, b] = bad
    actual = run(p.layout, args, check_finite=False)
    others = np.arange(p.B) != b
    # Every result but grad (a sum over the batch) has the batch on axis 1.
    for a, e in zip(actual[:-1], expected[:-1]):
        np.testing.assert_array_equal(a[:, others], e[:, others])


# -- sizes past the kernels' C int range -----------------------------------------------------


def test_truncate_past_int_range_is_full_bptt():
    layout = RNNLayout("gru", 2, (3,))
    rng = np.random.default_rng(0)
    params, X = rng.normal(size=layout.n_params), rng.normal(size=(4, 2, 2))
    results = []
    for truncate in (None, INT_MAX + 1, 2**63):
        Y, _, cache = forward(layout, params, X)
        results.append(backward(cache, np.ones_like(Y), truncate=truncate)[3])
    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[2], results[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(cell="lstm", input_size=1, hidden_sizes=(2**29,)),  # 4 H overflows int
        dict(cell="rnn", input_size=1, hidden_sizes=(2**31,)),
        dict(cell="gru", input_size=2**31, hidden_sizes=(1,)),  # the row stride of X
    ],
    ids=["lstm-4H", "rnn-H", "input-size"],
)
def test_layout_refuses_sizes_the_kernels_cannot_index(kwargs):
    with pytest.raises(ValueError, match="hidden_sizes|input_size"):
        RNNLayout(**kwargs)


_IN_CAPPED_MEMORY = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import numpy as np
from crnn.functional import RNNLayout, forward
layout = RNNLayout("gru", 1, (2,))
params = np.zeros(layout.n_params)
for shape, lengths in [
    ((2**16, 2**16, 1), None),          # T * B = 2**32
    ((2**31 - 1, 2, 1), None),          # T * B just past the int range
    ((2**31 + 1, 1, 1), [1]),           # T itself
]:
    X = np.broadcast_to(np.zeros((1, 1, 1)), shape)  # zero strides: no memory
    for check_finite in (True, False):
        try:
            forward(layout, params, X, lengths, check_finite=check_finite)
            outcome = "no error"
        except BaseException as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        print(f"{shape} check_finite={check_finite}: {outcome}")
"""


@pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer needs more address space than the cap allows",
)
def test_steps_times_batch_past_int_range_is_refused_before_allocating():
    # A 3 GiB address space: allocating for any of these shapes fails with MemoryError.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _IN_CAPPED_MEMORY],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 6 and all(": ValueError: " in line for line in lines), out.stdout
