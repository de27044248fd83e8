"""crnn.functional against the NumPy reference: outputs, states and every gradient."""

import numpy as np
import pytest
from harness import assert_results_close, crnn_run, layout_for, random_problem, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import GATES, Net

from crnn import _kernels
from crnn.functional import backward, forward, init_params

RTOL64, ATOL64 = 1e-12, 1e-13
RTOL32, ATOL32 = 1e-4, 1e-5


@pytest.mark.parametrize("hidden_sizes", [(3,), (3, 2)], ids=["1layer", "2layers"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("variable", [False, True], ids=["equal", "variable"])
@pytest.mark.parametrize("init", [False, True], ids=["zero_init", "h0"])
@pytest.mark.parametrize("truncate", [None, 2], ids=["full", "truncate2"])
def test_matches_reference(cell, hidden_sizes, bidirectional, variable, init, truncate):
    net = Net(cell[0], 2, hidden_sizes, bidirectional, cell[1])
    p = random_problem(net, T=5, B=3, variable=variable, init=init, seed=5)
    actual = crnn_run(p, truncate)
    for key in ("Y", "dX", "grad"):
        assert actual[key].dtype == np.float64, key
    assert_results_close(actual, reference(p, truncate), RTOL64, ATOL64)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("variable", [False, True], ids=["equal", "variable"])
def test_float32_matches_float64_reference(cell, bidirectional, variable):
    net = Net(cell[0], 2, (3, 2), bidirectional, cell[1])
    p = random_problem(net, T=5, B=3, variable=variable, init=True, seed=6)
    actual = crnn_run(p, dtype=np.float32)
    for key in ("Y", "dX", "grad"):
        assert actual[key].dtype == np.float32, key
    for key in ("h_n", "dh0"):
        assert all(a.dtype == np.float32 for a in actual[key]), key
    assert_results_close(actual, reference(p), RTOL32, ATOL32)


@pytest.mark.parametrize("hidden_sizes", [(3,), (3, 2)], ids=["1layer", "2layers"])
def test_step_by_step_with_carried_state_equals_whole_sequence(cell, hidden_sizes):
    """Forward one step at a time carrying the state, then backward chaining dh0 -> dh_n."""
    net = Net(cell[0], 2, hidden_sizes, False, cell[1])
    p = random_problem(net, T=4, B=2, init=True, seed=7)
    layout = layout_for(net)
    whole = crnn_run(p)

    h, c, caches = p.h0, p.c0, []
    for t in range(4):
        Y_t, (h, c), cache = forward(layout, p.params, p.X[t : t + 1], h0=h, c0=c)
        np.testing.assert_allclose(Y_t[0], whole["Y"][t], rtol=RTOL64, atol=ATOL64)
        caches.append(cache)
    assert_results_close(
        dict(h_n=h, c_n=c), dict(h_n=whole["h_n"], c_n=whole["c_n"]), RTOL64, ATOL64
    )

    dh, dc, grad = p.dh_n, p.dc_n, 0.0
    for t in reversed(range(4)):
        dX_t, dh, dc, grad_t = backward(caches[t], p.dY[t : t + 1], dh, dc)
        np.testing.assert_allclose(dX_t[0], whole["dX"][t], rtol=RTOL64, atol=ATOL64)
        grad = grad + grad_t
    assert_results_close(
        dict(dh0=dh, dc0=dc, grad=grad),
        dict(dh0=whole["dh0"], dc0=whole["dc0"], grad=whole["grad"]),
        1e-11,
        ATOL64,
    )


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_sequence_alone_equals_same_sequence_in_padded_batch(cell, bidirectional):
    """Padding and batch neighbours change nothing, in either direction."""
    net = Net(cell[0], 2, (3, 2), bidirectional, cell[1])
    batch = random_problem(net, T=5, B=3, variable=True, init=True, seed=8)
    batch.lengths = np.array([5, 2, 4])
    b, L = 1, 2
    lstm = net.cell == "lstm"

    def one(arrays):
        return None if arrays is None else [a[:, b : b + 1] for a in arrays]

    alone = random_problem(net, T=L, B=1, seed=0)
    alone.params = batch.params
    alone.X, alone.dY = batch.X[:L, b : b + 1], batch.dY[:L, b : b + 1]
    alone.h0, alone.c0, alone.dh_n, alone.dc_n = map(
        one, (batch.h0, batch.c0, batch.dh_n, batch.dc_n)
    )
    # only sequence b feeds the loss, so that the parameter gradients are comparable
    others = np.arange(3) != b
    batch.dY[:, others] = 0
    for dh in batch.dh_n + (batch.dc_n if lstm else []):
        dh[:, others] = 0

    in_batch, expected = crnn_run(batch), crnn_run(alone)
    np.testing.assert_allclose(
        in_batch["Y"][:L, b : b + 1], expected["Y"], rtol=RTOL64, atol=ATOL64
    )
    np.testing.assert_allclose(
        in_batch["dX"][:L, b : b + 1], expected["dX"], rtol=RTOL64, atol=ATOL64
    )
    assert np.all(in_batch["Y"][L:, b] == 0) and np.all(in_batch["dX"][L:, b] == 0)
    for key in ("h_n", "c_n", "dh0", "dc0") if lstm else ("h_n", "dh0"):
        for a, e in zip(in_batch[key], expected[key]):
            np.testing.assert_allclose(a[:, b : b + 1], e, rtol=RTOL64, atol=ATOL64, err_msg=key)
    np.testing.assert_allclose(in_batch["grad"], expected["grad"], rtol=1e-11, atol=ATOL64)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_truncate_at_least_the_length_is_full_bptt(cell, bidirectional):
    net = Net(cell[0], 2, (3, 2), bidirectional, cell[1])
    p = random_problem(net, T=4, B=3, variable=True, init=True, seed=9)
    assert_results_close(crnn_run(p, truncate=4), crnn_run(p), rtol=0, atol=0)


def test_missing_output_gradients_are_zeros(cell):
    net = Net(cell[0], 2, (3,), True, cell[1])
    p = random_problem(net, T=4, B=2, variable=True, seed=10)
    layout, lstm = layout_for(net), net.cell == "lstm"
    Y, (h_n, c_n), cache = forward(layout, p.params, p.X, p.lengths)

    p.dh_n = [np.zeros_like(h) for h in h_n]
    p.dc_n = [np.zeros_like(c) for c in c_n] if lstm else None
    dX, dh0, dc0, grad = backward(cache, p.dY)
    assert_results_close(
        dict(dX=dX, dh0=dh0, dc0=dc0, grad=grad),
        {key: reference(p)[key] for key in ("dX", "dh0", "dc0", "grad")},
        RTOL64,
        ATOL64,
    )

    p.dY = np.zeros_like(Y)
    p.dh_n = [np.ones_like(h) for h in h_n]
    _, _, cache = forward(layout, p.params, p.X, p.lengths)  # a cache serves one backward
    dX, dh0, dc0, grad = backward(cache, None, p.dh_n, p.dc_n)
    assert_results_close(
        dict(dX=dX, dh0=dh0, dc0=dc0, grad=grad),
        {key: reference(p)[key] for key in ("dX", "dh0", "dc0", "grad")},
        RTOL64,
        ATOL64,
    )


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_without_input_grad_the_other_gradients_are_unchanged(cell, bidirectional, n_threads):
    # n_threads=2: a batch split into parts (uni) or directions run in parallel (bi).
    net = Net(cell[0], 2, (3, 2), bidirectional, cell[1])
    p = random_problem(net, T=5, B=4, variable=True, init=True, seed=11)
    layout = layout_for(net)
    results = []
    for input_grad in (True, False):
        _, _, cache = forward(layout, p.params, p.X, p.lengths, p.h0, p.c0, n_threads=n_threads)
        results.append(backward(cache, p.dY, p.dh_n, p.dc_n, input_grad=input_grad))
    (dX, *full), (no_dX, *rest) = results
    assert no_dX is None
    np.testing.assert_allclose(dX, reference(p)["dX"], rtol=RTOL64, atol=ATOL64)
    for a, b in zip(full, rest):
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            np.testing.assert_array_equal(x, y)


def test_dY_at_padded_steps_is_ignored():
    net = Net("lstm", 2, (3,), True)
    p = random_problem(net, T=5, B=3, variable=True, seed=11)
    expected = crnn_run(p)
    for b, L in enumerate(p.lengths):
        p.dY[L:, b] = 1e3
    assert_results_close(crnn_run(p), expected, rtol=0, atol=0)


def test_padded_steps_of_X_are_never_read(cell):
    net = Net(cell[0], 2, (3, 2), True, cell[1])
    p = random_problem(net, T=5, B=3, variable=True, init=True, seed=14)
    expected = crnn_run(p)
    layout = layout_for(net)
    for b, L in enumerate(p.lengths):
        p.X[L:, b] = np.nan
    Y, (h_n, c_n), cache = forward(
        layout, p.params, p.X, p.lengths, p.h0, p.c0, check_finite=False
    )
    dX, dh0, dc0, grad = backward(cache, p.dY, p.dh_n, p.dc_n)
    actual = dict(Y=Y, h_n=h_n, c_n=c_n, dX=dX, dh0=dh0, dc0=dc0, grad=grad)
    assert_results_close(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "T, B, lengths",
    [(1, 1, None), (1, 2, None), (3, 1, [2]), (4, 2, [2, 3])],
    ids=["T1B1", "T1B2", "B1_short", "all_shorter_than_T"],
)
def test_tiny_shapes(cell, T, B, lengths):
    net = Net(cell[0], 1, (1, 1), True, cell[1])
    p = random_problem(net, T=T, B=B, init=True, seed=15)
    p.lengths = None if lengths is None else np.array(lengths)
    assert_results_close(crnn_run(p, truncate=1), reference(p, truncate=1), RTOL64, ATOL64)
    assert_results_close(crnn_run(p), reference(p), RTOL64, ATOL64)


# Hidden sizes whose per-step products (12 rows of G*H*H multiply-adds) exceed 10^6, with
# 8-11 rows fitting in 10^6 ("chunked") or fewer than 8 ("transposed"); see plan.c, step_plan.
WIDE = {
    "chunked": {"rnn": 300, "lstm": 150, "gru": 175},
    "transposed": {"rnn": 360, "lstm": 190, "gru": 210},
}


@pytest.fixture(params=[1e6, 0.0], ids=["small_gemm", "no_small_gemm"])
def small_gemm(request):
    """Plan the products for a BLAS with small-matrix kernels of 10^6 multiply-adds (OpenBLAS
    on AVX-512) and for one without: results must not depend on it, whatever BLAS runs."""
    previous = _kernels.set_small_gemm(request.param)
    yield request.param
    _kernels.set_small_gemm(previous)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("width", ["chunked", "transposed"])
def test_every_plan_of_the_recurrent_product(cell, width, dtype, small_gemm):
    """The per-step products run whole, in chunks of rows, transposed (float32) or as GEMV,
    by the active batch (plan.c, step_plan). These lengths make it 12, 12, 11, 10, 10, 9, 2
    and 1 rows (forward and BPTT), so each kind of step runs in both directions."""
    H = WIDE[width][cell[0]]
    net = Net(cell[0], 2, (H,), True, cell[1])
    p = random_problem(net, T=8, B=12, init=True, seed=16)
    p.params *= 0.05  # keep the wide layer out of saturation, so gradients flow back
    p.lengths = np.array([8, 3, 6, 6, 5, 2, 6, 6, 6, 6, 6, 7])
    # The paths these products take, as the kernels plan them (so that a moved threshold
    # fails here instead of leaving a path untested).
    GH, double = GATES[cell[0]] * H, dtype == np.float64
    paths = {
        _kernels.product_plan("step", rows, n, k, double)[0]
        for rows in (12, 11, 10, 9, 2, 1)
        for n, k in ((GH, H), (H, GH))
    }
    if small_gemm and width == "chunked":
        assert paths == {"gemv", "whole", "row_chunks"}
    else:
        assert paths == {"gemv", "whole" if double else "transposed"}
    rtol, atol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, ATOL32)
    assert_results_close(crnn_run(p, dtype=dtype), reference(p), rtol, atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weight_gradients_summed_in_row_chunks(cell, dtype, small_gemm):
    """The kernels sum dW_x and dW_h over (step, sequence) rows in chunks of ~10^6
    multiply-adds (plan.c, add_AtB): (40, G*40) outputs take chunks of 144-624 rows, so the
    640-row block of the first 32 steps spans 2-5 of them, the last one partial."""
    net = Net(cell[0], 40, (40,), True, cell[1])
    p = random_problem(net, T=40, B=20, init=True, seed=17)
    p.lengths = np.array([40] * 8 + [35] * 6 + [32] * 6)
    p.params *= 0.3
    GH, double = GATES[cell[0]] * 40, dtype == np.float64
    path, chunk, _ = _kernels.product_plan("atb", 40, GH, 640, double)
    if small_gemm:
        assert path == "row_chunks" and 144 <= chunk <= 624
    else:
        assert path == "whole"
    # float32 sums of ~700 rows that cancel to ~1e-3 carry ~1e-5 of rounding error
    rtol, atol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, 5 * ATOL32)
    assert_results_close(crnn_run(p, dtype=dtype), reference(p), rtol, atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weight_gradients_summed_in_column_blocks(dtype):
    """An output too wide for row chunks but not too tall runs in blocks of 64 columns
    (float32 only; plan.c, add_AtB). With small-matrix kernels of 300000 multiply-adds, the
    LSTM's (72, 288) dW_h takes blocks of 64, 64, 64, 64 and 32 columns, in chunks of 64 rows
    of the 400-row first block, the last one partial; its (40, 288) dW_x takes row chunks."""
    net = Net("lstm", 40, (72,), True)
    p = random_problem(net, T=20, B=20, init=True, seed=18)
    p.lengths = np.array([20] * 14 + [17] * 3 + [12] * 3)
    p.params *= 0.2
    previous = _kernels.set_small_gemm(300000)
    try:
        double = dtype == np.float64
        dW_h = _kernels.product_plan("atb", 72, 288, 400, double)
        dW_x = _kernels.product_plan("atb", 40, 288, 400, double)
        if double:  # no column blocks for dgemm, and fewer than 64 rows are not worth a chunk
            assert dW_h == ("whole", 400, 288) and dW_x == ("whole", 400, 288)
        else:
            assert dW_h == ("column_blocks", 64, 64) and dW_x == ("row_chunks", 24, 288)
        result = crnn_run(p, dtype=dtype)
    finally:
        _kernels.set_small_gemm(previous)
    rtol, atol = (RTOL64, ATOL64) if dtype == np.float64 else (RTOL32, 5 * ATOL32)
    assert_results_close(result, reference(p), rtol, atol)


def test_forward_without_cache_gives_the_same_outputs():
    net = Net("gru", 2, (3, 2), True)
    p = random_problem(net, T=4, B=3, variable=True, init=True, seed=12)
    layout = layout_for(net)
    Y, (h_n, _), cache = forward(layout, p.params, p.X, p.lengths, p.h0, keep_cache=False)
    assert cache is None
    expected = reference(p)
    assert_results_close(
        dict(Y=Y, h_n=h_n), dict(Y=expected["Y"], h_n=expected["h_n"]), RTOL64, ATOL64
    )


def test_inputs_are_not_modified(cell):
    net = Net(cell[0], 2, (3, 2), True, cell[1])
    p = random_problem(net, T=4, B=3, variable=True, init=True, seed=13)
    arrays = [p.params, p.X, p.dY] + p.h0 + p.dh_n + (p.c0 + p.dc_n if p.c0 else [])
    copies = [a.copy() for a in arrays]
    crnn_run(p, truncate=2)
    for a, copy in zip(arrays, copies):
        np.testing.assert_array_equal(a, copy)


@pytest.mark.parametrize("cell_name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_layout_matches_reference(cell_name, bidirectional):
    net = Net(cell_name, 5, (4, 3, 2), bidirectional)
    layout = layout_for(net)
    assert layout.num_layers == 3
    assert layout.num_directions == net.num_directions
    assert layout.gates == GATES[cell_name]
    assert layout.n_params == net.n_params
    assert layout.output_size == net.output_size

    params = np.arange(net.n_params, dtype=np.float64)
    views = layout.views(params)
    expected = net.unflatten(params)
    assert len(views) == 3
    for layer in range(3):
        assert len(views[layer]) == net.num_directions
        for d in range(net.num_directions):
            assert views[layer][d].keys() == expected[layer][d].keys()
            for name, view in views[layer][d].items():
                np.testing.assert_array_equal(view, expected[layer][d][name], err_msg=name)
                assert np.shares_memory(view, params), name
    views[2][-1]["b"][0] = -1.0  # writable views into params
    assert expected[2][-1]["b"][0] == -1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params(cell, dtype):
    net = Net(cell[0], 3, (4, 2), True, cell[1])
    layout = layout_for(net)
    params = init_params(layout, random_state=0, dtype=dtype)
    assert params.shape == (net.n_params,) and params.dtype == dtype
    assert np.all(np.isfinite(params)) and np.any(params != 0)
    np.testing.assert_array_equal(params, init_params(layout, random_state=0, dtype=dtype))
    assert np.any(params != init_params(layout, random_state=1, dtype=dtype))
    if net.cell == "lstm":
        weights = net.unflatten(init_params(layout, random_state=0, dtype=dtype, forget_bias=2.5))
        for layer, H in enumerate(net.hidden_sizes):
            for d in range(2):
                np.testing.assert_array_equal(weights[layer][d]["b"][H : 2 * H], 2.5)


def test_dropout_acts_between_layers_only(cell):
    net = Net(cell[0], 2, (3,), True, cell[1])
    p = random_problem(net, T=4, B=3, variable=True, init=True, seed=16)
    Y, (h_n, _), _ = forward(
        layout_for(net), p.params, p.X, p.lengths, p.h0, p.c0, dropout=0.5, random_state=0
    )
    expected = reference(p)
    assert_results_close(
        dict(Y=Y, h_n=h_n), dict(Y=expected["Y"], h_n=expected["h_n"]), RTOL64, ATOL64
    )


@st.composite
def problems(draw):
    """Random architectures, shapes, lengths, initial states and truncations."""
    cell = draw(
        st.sampled_from([("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
    )
    hidden_sizes = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    net = Net(cell[0], draw(st.integers(1, 5)), hidden_sizes, draw(st.booleans()), cell[1])
    T, B = draw(st.integers(1, 7)), draw(st.integers(1, 5))
    p = random_problem(net, T, B, init=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        p.lengths = np.array(draw(st.lists(st.integers(1, T), min_size=B, max_size=B)))
    return p, draw(st.one_of(st.none(), st.integers(1, T + 1)))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_matches_reference_on_random_problems(problem):
    p, truncate = problem
    assert_results_close(crnn_run(p, truncate), reference(p, truncate), RTOL64, ATOL64)
