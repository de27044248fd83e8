"""crnn.functional against PyTorch's nn.RNN / nn.LSTM / nn.GRU directly, with copied weights."""

import numpy as np
import pytest
from harness import TorchStack, assert_results_close, crnn_run, random_problem
from reference import Net

torch = pytest.importorskip(
    "torch", reason="PyTorch (optional peer) is needed to compare with nn.RNN/LSTM/GRU"
)


@pytest.mark.parametrize(
    "hidden_sizes", [(3,), (3, 3), (4, 2)], ids=["1layer", "2layers", "2layers_4_2"]
)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("variable", [False, True], ids=["equal", "packed"])
@pytest.mark.parametrize("init", [False, True], ids=["zero_init", "h0"])
def test_matches_torch(cell, hidden_sizes, bidirectional, variable, init):
    net = Net(cell[0], 3, hidden_sizes, bidirectional, cell[1])
    stack = TorchStack(torch, net, seed=30)
    p = random_problem(net, T=5, B=4, variable=variable, init=init, seed=31)
    p.params = stack.params()
    assert_results_close(crnn_run(p), stack.run(p), rtol=1e-10, atol=1e-12)


def test_matches_torch_on_a_longer_packed_batch(cell):
    """A batch larger than the toy ones, so that the kernel's BLAS paths do real work."""
    net = Net(cell[0], 7, (16, 16), True, cell[1])
    stack = TorchStack(torch, net, seed=32)
    p = random_problem(net, T=12, B=9, variable=True, init=True, seed=33)
    p.lengths = np.random.default_rng(34).integers(1, 13, size=9)
    p.lengths[4] = 12  # the longest sequence fills the batch
    p.params = stack.params()
    assert_results_close(crnn_run(p), stack.run(p), rtol=1e-10, atol=1e-12)
