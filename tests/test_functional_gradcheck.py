"""crnn.functional.backward against central finite differences of forward, in float64.

The scalar loss is ``sum(Y * R) + sum(h_n * S) (+ sum(c_n * U))`` with random
R, S, U, so its gradient is ``backward(cache, R, S, U)``. Every entry of X, of
the initial states and of the parameters is perturbed.
"""

import numpy as np
import pytest
from harness import layout_for, numerical_gradient, random_problem
from reference import Net

from crnn.functional import backward, forward


@pytest.mark.parametrize("hidden_sizes", [(3,), (2, 3)], ids=["1layer", "2layers"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("variable", [False, True], ids=["equal", "variable"])
@pytest.mark.parametrize("init", [False, True], ids=["zero_init", "h0"])
def test_gradients_match_finite_differences(cell, hidden_sizes, bidirectional, variable, init):
    net = Net(cell[0], 2, hidden_sizes, bidirectional, cell[1])
    p = random_problem(net, T=4, B=3, variable=variable, init=init, seed=20)
    lstm = net.cell == "lstm"
    layout = layout_for(net)

    _, _, cache = forward(layout, p.params, p.X, p.lengths, p.h0, p.c0)
    dX, dh0, dc0, grad = backward(cache, p.dY, p.dh_n, p.dc_n)

    # without initial states, dh0 / dc0 are the gradients at zero states
    h0 = p.h0 or [np.zeros_like(dh) for dh in dh0]
    c0 = (p.c0 or [np.zeros_like(dc) for dc in dc0]) if lstm else None

    def loss():
        Y, (h_n, c_n), _ = forward(layout, p.params, p.X, p.lengths, h0, c0, keep_cache=False)
        total = np.sum(Y * p.dY) + sum(np.sum(h * s) for h, s in zip(h_n, p.dh_n))
        if lstm:
            total += sum(np.sum(c * u) for c, u in zip(c_n, p.dc_n))
        return total

    def check(analytic, array, name):
        np.testing.assert_allclose(
            analytic, numerical_gradient(loss, array), rtol=1e-6, atol=1e-8, err_msg=name
        )

    check(dX, p.X, "dX")
    check(grad, p.params, "grad")
    for layer in range(net.num_layers):
        check(dh0[layer], h0[layer], f"dh0[{layer}]")
        if lstm:
            check(dc0[layer], c0[layer], f"dc0[{layer}]")


def test_dropout_gradients_match_finite_differences(cell):
    """With a fixed random_state every forward draws the same dropout masks."""
    net = Net(cell[0], 2, (3, 2), True, cell[1])
    p = random_problem(net, T=4, B=3, variable=True, init=True, seed=21)
    layout = layout_for(net)

    def forward_with_dropout(keep_cache):
        return forward(
            layout,
            p.params,
            p.X,
            p.lengths,
            p.h0,
            p.c0,
            dropout=0.4,
            random_state=0,
            keep_cache=keep_cache,
        )

    Y, _, cache = forward_with_dropout(True)
    Y_plain, _, _ = forward(layout, p.params, p.X, p.lengths, p.h0, p.c0)
    assert not np.allclose(Y, Y_plain)
    dX, _, _, grad = backward(cache, p.dY)

    def loss():
        return np.sum(forward_with_dropout(False)[0] * p.dY)

    np.testing.assert_allclose(dX, numerical_gradient(loss, p.X), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad, numerical_gradient(loss, p.params), rtol=1e-6, atol=1e-8)
