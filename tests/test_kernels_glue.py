"""The Cython layer refuses inconsistent buffers before they reach C, and links no BLAS."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import crnn._kernels as K

CELL = K.CELLS["lstm"]
T, B, I, H = 4, 3, 2, 5


def _buffers(dtype=np.float64):
    reserve_size, workspace_size = K.buffer_sizes(CELL, T, B, I, H)
    rng = np.random.default_rng(0)
    return dict(
        x=rng.normal(size=(T, B, I)).astype(dtype),
        lengths=np.array([4, 3, 1], dtype=np.intc),
        W_x=rng.normal(size=(I, 4 * H)).astype(dtype),
        W_h=rng.normal(size=(H, 4 * H)).astype(dtype),
        b=np.zeros(4 * H, dtype),
        b_hn=None,
        h0=None,
        c0=None,
        y=np.zeros((T, B, H), dtype),
        y_offset=0,
        hn=np.empty((B, H), dtype),
        cn=np.empty((B, H), dtype),
        reserve=np.empty(reserve_size, dtype),
        workspace=np.empty(workspace_size, dtype),
        reverse=False,
    )


def _forward(**buffers):
    K.forward(CELL, *buffers.values())


def test_consistent_buffers_run():
    buffers = _buffers()
    _forward(**buffers)
    assert np.all(buffers["y"][1:, 2] == 0)  # past the third sequence's single step
    np.testing.assert_array_equal(buffers["hn"][2], buffers["y"][0, 2])


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("W_x", np.zeros((I + 1, 4 * H)), "W_x must be"),
        ("W_h", np.zeros((H, 3 * H)), "W_h must be"),
        ("lengths", np.array([4, 3], dtype=np.intc), "one entry per sequence"),
        ("y", np.zeros((T, B + 1, H)), "y must be"),
        ("y_offset", 1, "y_offset"),
        ("hn", np.zeros((B, H + 1)), "hn must be"),
        ("cn", None, "the LSTM needs cn"),
        ("reserve", np.empty(10), "reserve too small"),
        ("workspace", np.empty(10), "workspace too small"),
        ("h0", np.zeros((B + 1, H)), "h0 must be"),
        ("b", np.zeros(3 * H), "b must be"),
    ],
)
def test_inconsistent_buffers_are_refused(name, value, message):
    buffers = _buffers()
    buffers[name] = value
    with pytest.raises(ValueError, match=message):
        _forward(**buffers)


def test_unsorted_or_out_of_range_lengths_are_refused_by_c():
    for lengths in ([3, 4, 1], [5, 3, 1], [4, 3, 0]):
        buffers = _buffers()
        buffers["lengths"] = np.array(lengths, dtype=np.intc)
        with pytest.raises(ValueError, match="lengths must lie in"):
            _forward(**buffers)


def test_read_only_output_is_refused_read_only_input_is_fine():
    buffers = _buffers()
    for name in ("x", "W_x", "W_h", "b", "lengths"):
        buffers[name].setflags(write=False)
    _forward(**buffers)
    buffers["y"].setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        _forward(**buffers)


def test_mixed_dtypes_are_refused():
    buffers = _buffers()
    buffers["W_h"] = buffers["W_h"].astype(np.float32)
    with pytest.raises((TypeError, ValueError)):
        _forward(**buffers)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="unknown cell"):
        K.buffer_sizes(99, T, B, I, H)
    for dims in [(0, B, I, H), (T, 0, I, H), (T, B, 0, H), (T, B, I, 0), (2**16, 2**16, I, H)]:
        with pytest.raises(ValueError, match="every size"):
            K.buffer_sizes(CELL, *dims)


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd (Linux)")
def test_extension_links_no_blas():
    out = subprocess.run(["ldd", K.__file__], capture_output=True, text=True, check=True).stdout
    linked = [
        line
        for line in out.splitlines()
        if re.search(r"blas|lapack|mkl|atlas", line, re.IGNORECASE)
    ]
    assert not linked, f"the extension links a BLAS: {linked}"


def _step_kernel(dtype=np.float64, **changes):
    """StepKernel over one LSTM layer (B=3, I=2, H=5), with some buffers replaced."""
    reserve_size, workspace_size = K.buffer_sizes(CELL, 1, B, I, H)
    b = _buffers(dtype)
    layer = dict(
        W_x=b["W_x"],
        W_h=b["W_h"],
        b=b["b"],
        b_hn=None,
        h=np.zeros((B, H), dtype),
        c=np.zeros((B, H), dtype),
        y=np.zeros((1, B, H), dtype),
        reserve=np.empty(reserve_size, dtype),
    )
    layer.update(changes)
    x = np.zeros((1, B, I), dtype)
    return K.StepKernel(
        CELL, x, np.ones(B, np.intc), [tuple(layer.values())], np.empty(workspace_size, dtype)
    ), layer


def test_step_kernel_runs_forward_with_one_step():
    kernel, layer = _step_kernel()
    x = _buffers()["x"][0]
    assert kernel.run_f64(x, True)
    hn, cn = np.empty((B, H)), np.empty((B, H))
    b = _buffers()
    reserve_size, workspace_size = K.buffer_sizes(CELL, 1, B, I, H)
    y = np.zeros((1, B, H))
    K.forward(
        CELL,
        x[None].copy(),
        np.ones(B, np.intc),
        b["W_x"],
        b["W_h"],
        b["b"],
        None,
        None,
        None,
        y,
        0,
        hn,
        cn,
        np.empty(reserve_size),
        np.empty(workspace_size),
        False,
    )
    np.testing.assert_array_equal(layer["y"], y)
    np.testing.assert_array_equal(layer["h"], hn)
    np.testing.assert_array_equal(layer["c"], cn)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("W_h", np.zeros((H, 3 * H)), "W_h must be"),
        ("h", np.zeros((B + 1, H)), "h0 must be"),
        ("c", None, "the LSTM needs cn"),
        ("y", np.zeros((2, B, H)), "y must be"),
        ("reserve", np.empty(3), "reserve too small"),
    ],
)
def test_step_kernel_refuses_inconsistent_buffers(name, value, message):
    with pytest.raises(ValueError, match=message):
        _step_kernel(**{name: value})


def test_step_kernel_refuses_the_wrong_input():
    kernel, _ = _step_kernel()
    with pytest.raises(ValueError, match=r"x must be \(B, I\)"):
        kernel.run_f64(np.zeros((B + 1, I)), True)
    with pytest.raises(ValueError, match="run_f32 on a float64 kernel"):
        kernel.run_f32(np.zeros((B, I), np.float32), True)
    assert not kernel.run_f64(np.full((B, I), np.nan), True)
    unbound = K.StepKernel.__new__(K.StepKernel)
    with pytest.raises(ValueError, match="no buffers bound"):
        unbound.run_f64(np.zeros((0, 0)), True)


def test_small_gemm_planning_is_off_for_blas_cores_without_small_kernels():
    # OpenBLAS's Haswell kernels (AVX2) have no small-matrix path: chunked products would run
    # up to 3x slower there, so the plan must not assume one.
    code = "import crnn._kernels as K; print(K.small_gemm())"
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert float(out.stdout) == 0.0


def test_set_small_gemm_returns_the_previous_value():
    previous = K.set_small_gemm(123.0)
    try:
        assert K.small_gemm() == 123.0
    finally:
        assert K.set_small_gemm(previous) == 123.0
    assert K.small_gemm() in (0.0, 1e6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_steps_makes_a_time_major_minibatch(dtype):
    x = np.random.default_rng(0).normal(size=(6, 5, 3)).astype(dtype)
    idx = np.array([4, 0, 4, 2], dtype=np.intp)
    out = np.empty((3, 4, 3), dtype=dtype)
    K.gather_steps(x, idx, out)
    np.testing.assert_array_equal(out, x[idx, :3].swapaxes(0, 1))


@pytest.mark.parametrize(
    "idx, out_shape, message",
    [
        ([0, 6], (3, 2, 3), "out of range"),
        ([0, -1], (3, 2, 3), "out of range"),
        ([0, 1], (6, 2, 3), "steps <= T"),
        ([0, 1], (3, 3, 3), "out must be"),
        ([0, 1], (3, 2, 2), "out must be"),
    ],
)
def test_gather_steps_refuses_what_does_not_fit(idx, out_shape, message):
    x = np.zeros((6, 5, 3))
    with pytest.raises(ValueError, match=message):
        K.gather_steps(x, np.array(idx, dtype=np.intp), np.empty(out_shape))


def test_product_plan_names_the_path_and_refuses_bad_queries():
    previous = K.set_small_gemm(0.0)
    try:
        assert K.product_plan("step", 1, 64, 16) == ("gemv", 1, 64)
        assert K.product_plan("step", 8, 64, 16, double=True) == ("whole", 8, 64)
        assert K.product_plan("atb", 16, 64, 100) == ("whole", 100, 64)
        K.set_small_gemm(1e6)
        # 10^6 / (512 * 128) = 15.3 rows fit the small-matrix kernels: chunks of 8
        assert K.product_plan("step", 100, 512, 128) == ("row_chunks", 8, 512)
        # 61 rows fit (256, 64): 64 rows run as two equal chunks of 32, not 56 + 8
        assert K.product_plan("step", 64, 256, 64) == ("row_chunks", 32, 256)
        assert K.product_plan("step", 100, 1024, 256) == ("transposed", 100, 1024)
    finally:
        K.set_small_gemm(previous)
    with pytest.raises(ValueError, match="product must be"):
        K.product_plan("gemm", 2, 2, 2)
    with pytest.raises(ValueError, match="every size must be at least 1"):
        K.product_plan("step", 0, 2, 2)


def _grads(dtype=np.float64):
    return dict(
        workspace=np.empty(K.buffer_sizes(CELL, T, B, I, H)[1], dtype),
        dy=np.ones((T, B, H), dtype),
        dhn=None,
        dcn=None,
        truncate=0,
        dx=np.zeros((T, B, I), dtype),
        dh0=np.zeros((B, H), dtype),
        dc0=np.zeros((B, H), dtype),
        dW_x=np.zeros((I, 4 * H), dtype),
        dW_h=np.zeros((H, 4 * H), dtype),
        db=np.zeros(4 * H, dtype),
        db_hn=None,
    )


def test_backward_runs_on_the_call_forward_bound():
    call = K.forward(CELL, *_buffers().values())
    grads = _grads()
    K.backward(call, **grads)
    assert np.any(grads["dW_x"] != 0) and np.any(grads["dx"] != 0)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("dy", np.ones((T, B, H + 1)), "dy must have y's shape"),
        ("dx", np.zeros((T, B + 1, I)), "dx must have x's shape"),
        ("dh0", np.zeros((B, H + 1)), "dh0 must be"),
        ("dhn", np.zeros((B + 1, H)), "dhn must be"),
        ("dW_x", np.zeros((I + 1, 4 * H)), "dW_x must have"),
        ("dW_h", np.zeros((H, 3 * H)), "dW_h must have"),
        ("db", np.zeros(3 * H), "db must be"),
        ("workspace", np.empty(10), "workspace too small"),
    ],
)
def test_backward_refuses_gradients_that_do_not_fit_the_call(name, value, message):
    call = K.forward(CELL, *_buffers().values())
    grads = _grads()
    grads[name] = value
    with pytest.raises(ValueError, match=message):
        K.backward(call, **grads)


def test_backward_refuses_another_dtype_and_a_missing_call():
    call = K.forward(CELL, *_buffers().values())
    with pytest.raises(ValueError, match="the forward's dtype"):
        K.backward(call, **_grads(np.float32))
    no_dy = _grads()
    no_dy["dy"] = None  # the dtype follows from the buffers given
    K.backward(call, *no_dy.values())
    with pytest.raises(TypeError):
        K.backward(None, **_grads())
    with pytest.raises(TypeError, match="comes from _kernels.forward"):
        K.LayerCall()


def test_the_call_keeps_its_buffers_alive():
    """backward reads forward's buffers through the call alone (the sanitizer build would
    report a use after free)."""
    buffers = _buffers()
    call = K.forward(CELL, *buffers.values())
    expected = _grads()
    K.backward(call, **expected)
    call = K.forward(CELL, *_buffers().values())  # the only references: the call's
    grads = _grads()
    K.backward(call, **grads)
    for name in ("dx", "dh0", "dW_x", "dW_h", "db"):
        np.testing.assert_array_equal(grads[name], expected[name])


def test_forward_without_binding_returns_no_call():
    bound, unbound = _buffers(), _buffers()
    assert K.forward(CELL, *unbound.values(), None, False) is None
    K.forward(CELL, *bound.values())
    np.testing.assert_array_equal(unbound["y"], bound["y"])


def _headed_kernel(W, b, out):
    reserve_size, workspace_size = K.buffer_sizes(CELL, 1, B, I, H)
    bufs = _buffers()
    y = np.zeros((1, B, H))
    layer = (
        bufs["W_x"],
        bufs["W_h"],
        bufs["b"],
        None,
        np.zeros((B, H)),
        np.zeros((B, H)),
        y,
        np.empty(reserve_size),
    )
    x = np.zeros((1, B, I))
    kernel = K.StepKernel(
        CELL, x, np.ones(B, np.intc), [layer], np.empty(workspace_size), (W, b, out)
    )
    return kernel, y


def test_step_kernel_head_is_a_dense_layer_on_the_last_output():
    rng = np.random.default_rng(0)
    W, b, out = rng.normal(size=(H, 2)), rng.normal(size=2), np.empty((B, 2))
    kernel, y = _headed_kernel(W, b, out)
    assert kernel.run_f64(_buffers()["x"][0], True)
    np.testing.assert_allclose(out, y[0] @ W + b, rtol=1e-13)


@pytest.mark.parametrize(
    "W, b, out",
    [
        (np.zeros((H + 1, 2)), np.zeros(2), np.zeros((B, 2))),
        (np.zeros((H, 2)), np.zeros(3), np.zeros((B, 2))),
        (np.zeros((H, 2)), np.zeros(2), np.zeros((B + 1, 2))),
        (np.zeros((H, 0)), np.zeros(0), np.zeros((B, 0))),
    ],
)
def test_step_kernel_refuses_an_inconsistent_head(W, b, out):
    with pytest.raises(ValueError, match="head"):
        _headed_kernel(W, b, out)
