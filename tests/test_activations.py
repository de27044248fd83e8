"""The kernels' own exp-based activations (src/csrc/activations.h) agree with libm.

They are branch-free polynomial versions, seen here through one-unit cells whose output is
the activation of the input: tanh(x) from the vanilla cell with unit input weight, and
sigmoid(x) * tanh(1) from an LSTM whose input, forget and cell gates are saturated (c = 1)
and whose output gate reads x. The kernels are vectorized per CPU level (.ci/run runs this
file on each).
"""

import numpy as np
import pytest

from crnn.functional import RNNLayout, forward, init_params

# Over the whole range: tiny, moderate, large and saturating arguments, both signs.
_X = np.concatenate([np.geomspace(1e-30, 100, 4000), [0.0, 1e-45, 1e4, 3e38]])
_X = np.concatenate([_X, -_X])


def _one_step(cell, x, dtype, set_params):
    layout = RNNLayout(cell, 1, (1,))
    params = init_params(layout, random_state=0, dtype=dtype) * 0
    set_params(layout.views(params)[0][0])
    X = x.astype(dtype).reshape(1, -1, 1)
    Y, _, _ = forward(layout, params, X, keep_cache=False)
    return Y[0, :, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_agrees_with_libm(dtype):
    def unit_input(v):
        v["W_x"][:] = 1

    got = _one_step("rnn", _X, dtype, unit_input)
    np.testing.assert_array_max_ulp(got, np.tanh(_X.astype(dtype)), maxulp=4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_agrees_with_libm(dtype):
    def output_gate_reads_x(v):  # gates i, f, g, o
        v["b"][:3] = 1000  # i = f = 1 (f multiplies c0 = 0), g = tanh(1000) = 1
        v["W_x"][0, 3] = 1

    got = _one_step("lstm", _X, dtype, output_gate_reads_x)
    x = _X.astype(dtype)
    with np.errstate(over="ignore"):
        want = (1 / (1 + np.exp(-x))) * np.tanh(dtype(1))
    want = want.astype(dtype)
    # Below e^EXP_LO (about the smallest normal number) the kernels stop: a sigmoid that
    # would be subnormal or zero comes out near the smallest normal number instead.
    tiny = np.finfo(dtype).tiny
    normal = want >= tiny
    np.testing.assert_array_max_ulp(got[normal], want[normal], maxulp=4)
    assert np.all((0 <= got[~normal]) & (got[~normal] <= 2 * tiny))
