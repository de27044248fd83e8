"""The NumPy reference against PyTorch, so that it can serve as ground truth for crnn."""

import numpy as np
import pytest
from harness import (
    TorchStack,
    assert_results_close,
    grad_from_torch,
    params_from_torch,
    random_problem,
    reference,
    variable_lengths,
)
from reference import Net

torch = pytest.importorskip(
    "torch",
    reason="PyTorch (optional peer) is needed to check the reference against nn.RNN/LSTM/GRU",
)

RTOL, ATOL = 1e-10, 1e-12


@pytest.mark.parametrize(
    "hidden_sizes", [(3,), (3, 3), (4, 2)], ids=["1layer", "2layers", "2layers_4_2"]
)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("variable", [False, True], ids=["equal", "packed"])
@pytest.mark.parametrize("init", [False, True], ids=["zero_init", "h0"])
def test_reference_matches_torch(cell, hidden_sizes, bidirectional, variable, init):
    net = Net(cell[0], 2, hidden_sizes, bidirectional, cell[1])
    stack = TorchStack(torch, net, seed=1)
    p = random_problem(net, T=5, B=3, variable=variable, init=init, seed=2)
    p.params = stack.params()
    assert_results_close(reference(p), stack.run(p), RTOL, ATOL)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("truncate", [1, 2, 5])
def test_truncated_bptt_matches_torch_on_detached_state(cell, bidirectional, truncate):
    """truncate=k equals backprop through the last k steps from a detached state.

    One layer; each direction is a one-directional torch module run on each
    sequence alone (reversed for the reverse direction): the first steps run
    without gradient, the last k from their final state, detached.
    """
    H, lstm = 3, cell[0] == "lstm"
    kwargs = dict(nonlinearity=cell[1]) if cell[0] == "rnn" else {}
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell[0]]
    torch.manual_seed(3)
    directions = [cls(2, H, dtype=torch.float64, **kwargs) for _ in range(1 + bidirectional)]
    uni = Net(cell[0], 2, (H,), False, cell[1])
    net = Net(cell[0], 2, (H,), bidirectional, cell[1])
    p = random_problem(net, T=5, B=4, variable=True, init=True, seed=4)
    # one layer: the flat parameters are those of each direction, one after the other
    p.params = np.concatenate([params_from_torch(uni, [m]) for m in directions])

    dX, dh0 = np.zeros_like(p.X), np.zeros_like(p.h0[0])
    dc0 = np.zeros_like(p.c0[0]) if lstm else None
    for d, module in enumerate(directions):
        for b, L in enumerate(p.lengths):
            order = np.arange(L)[::-1] if d else np.arange(L)
            x = torch.tensor(p.X[order, b : b + 1], requires_grad=True)
            h0 = torch.tensor(p.h0[0][d : d + 1, b : b + 1], requires_grad=True)
            state = h0
            if lstm:
                c0 = torch.tensor(p.c0[0][d : d + 1, b : b + 1], requires_grad=True)
                state = (h0, c0)
            start = max(L - truncate, 0)
            if start:
                with torch.no_grad():
                    _, state = module(x[:start], state)
            out, final = module(x[start:], state)
            h_n, c_n = final if lstm else (final, None)
            loss = (out * torch.tensor(p.dY[order[start:], b : b + 1, d * H : (d + 1) * H])).sum()
            loss = loss + (h_n * torch.tensor(p.dh_n[0][d : d + 1, b : b + 1])).sum()
            if lstm:
                loss = loss + (c_n * torch.tensor(p.dc_n[0][d : d + 1, b : b + 1])).sum()
            loss.backward()
            dX[order, b] += x.grad.numpy()[:, 0]
            # no gradient reaches a state that only fed the detached steps
            dh0[d, b] = 0 if h0.grad is None else h0.grad.numpy()[0, 0]
            if lstm:
                dc0[d, b] = 0 if c0.grad is None else c0.grad.numpy()[0, 0]
    grad = np.concatenate([grad_from_torch(uni, [m]) for m in directions])

    result = reference(p, truncate=truncate)
    expected = dict(dX=dX, dh0=[dh0], dc0=[dc0] if lstm else None, grad=grad)
    assert_results_close({key: result[key] for key in expected}, expected, RTOL, ATOL)


def test_truncated_bptt_drops_gradient_of_early_steps():
    net = Net("gru", 2, (3, 3), True)
    p = random_problem(net, T=5, B=3, variable=True, init=True)
    result = reference(p, truncate=2)
    for b, L in enumerate(p.lengths):
        # forward directions reach times L-2, L-1; reverse directions 1, 0
        reached = {L - 2, L - 1, 0, 1} & set(range(L))
        for t in range(5):
            assert np.any(result["dX"][t, b] != 0) == (t in reached), (b, t)
        # the initial state gets gradient only when the pass reaches step 0 from its end
        assert np.any(result["dh0"][0][:, b] != 0) == (L <= 2)
    full = reference(p, truncate=5)
    assert_results_close(full, reference(p), rtol=0, atol=0)


def test_lengths_default_to_full_sequences():
    net = Net("lstm", 2, (3,), True)
    p = random_problem(net, T=4, B=2, init=True)
    full = reference(p)
    p.lengths = np.array([4, 4])
    assert_results_close(reference(p), full, rtol=0, atol=0)


def test_layout_is_flat_and_ordered():
    net = Net("gru", 2, (3, 4), True)
    names = [(layer, d, name) for layer, d, name, _ in net.shapes()]
    assert names[:4] == [(0, 0, "W_x"), (0, 0, "W_h"), (0, 0, "b"), (0, 0, "b_hn")]
    assert names[4:8] == [(0, 1, "W_x"), (0, 1, "W_h"), (0, 1, "b"), (0, 1, "b_hn")]
    assert dict(((l, d, n), s) for l, d, n, s in net.shapes())[1, 1, "W_x"] == (6, 12)
    assert net.n_params == 2 * (2 * 9 + 3 * 9 + 9 + 3) + 2 * (6 * 12 + 4 * 12 + 12 + 4)
    params = np.arange(net.n_params, dtype=float)
    views = net.unflatten(params)
    assert views[0][0]["W_x"][0, 1] == 1 and np.shares_memory(views[1][1]["b_hn"], params)
    assert views[1][1]["b_hn"][-1] == net.n_params - 1


def test_variable_lengths_are_unsorted_and_cover_the_extremes():
    lengths = variable_lengths(5, 3)
    assert lengths.tolist() == [3, 5, 1]
