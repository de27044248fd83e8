"""Test harness: random problems, result comparison, central finite differences, the PyTorch
side, fuzz settings and unusual array layouts."""

import os
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, settings
from reference import run

# Step of the central differences (float64): truncation error ~EPS**2, rounding ~1e-16/EPS.
EPS = 1e-6


def numerical_gradient(loss, array):
    """Central differences of ``loss()`` w.r.t. every entry of ``array``, perturbed in place."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        value = array[index]
        array[index] = value + EPS
        plus = loss()
        array[index] = value - EPS
        minus = loss()
        array[index] = value
        grad[index] = (plus - minus) / (2 * EPS)
    return grad


# The fuzz tests (test_fuzz_*.py, test_faults.py) run a fixed sample of 100 examples each;
# CRNN_FUZZ_EXAMPLES=N runs N fresh random examples instead (see SECURITY.md).
_EXAMPLES = int(os.environ.get("CRNN_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXAMPLES or 100,
    derandomize=not _EXAMPLES,  # the normal suite sees the same examples every run
    deadline=None,  # a hang shows as a stuck test; timing varies too much under ASan
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def variable_lengths(T, B):
    """Unsorted lengths covering 1 and T, e.g. ``[3, 5, 1]`` for T=5, B=3."""
    return np.resize([max(T - 2, 1), T, 1, max(T - 1, 1)], B)


def random_problem(net, T=4, B=3, variable=False, init=False, seed=0):
    """Random parameters, inputs, initial states and output gradients for ``net``.

    Parameters
    ----------
    net : reference.Net
    T, B : int
        Number of steps and batch size.
    variable : bool
        Use unsorted per-sequence lengths (see `variable_lengths`) instead of None.
    init : bool
        Give random initial states (``h0``, and ``c0`` for an LSTM) instead of None.
    seed : int

    Returns
    -------
    SimpleNamespace with ``net``, ``params``, ``X``, ``lengths``, ``h0``, ``c0``
    (forward arguments) and ``dY``, ``dh_n``, ``dc_n`` (backward arguments), all float64.
    """
    rng = np.random.default_rng(seed)
    lstm = net.cell == "lstm"
    D = net.num_directions

    def states():
        return [rng.normal(size=(D, B, H)) for H in net.hidden_sizes]

    return SimpleNamespace(
        net=net,
        params=rng.uniform(-0.6, 0.6, size=net.n_params),
        X=rng.normal(size=(T, B, net.input_size)),
        lengths=variable_lengths(T, B) if variable else None,
        h0=states() if init else None,
        c0=states() if init and lstm else None,
        dY=rng.normal(size=(T, B, net.output_size)),
        dh_n=states(),
        dc_n=states() if lstm else None,
    )


def reference(p, truncate=None):
    """Run the NumPy reference on problem ``p``."""
    return run(p.net, p.params, p.X, p.lengths, p.h0, p.c0, p.dY, p.dh_n, p.dc_n, truncate)


# PyTorch side. The spec maps PyTorch's weights to ours; ``modules`` is a list
# of nn.RNN / nn.LSTM / nn.GRU stacked one after the other.


def torch_layers(modules):
    """Yield ``(module, torch_layer_index)`` for every layer of the stack."""
    for module in modules:
        for k in range(module.num_layers):
            yield module, k


def params_from_torch(net, modules):
    """Flat parameters of ``net`` holding the weights of torch ``modules``."""
    params = np.zeros(net.n_params)
    weights = net.unflatten(params)
    for layer, (module, k) in enumerate(torch_layers(modules)):
        H = net.hidden_sizes[layer]
        for d in range(net.num_directions):

            def get(name):
                return getattr(module, f"{name}_l{k}{'_reverse' if d else ''}").detach().numpy()

            w = weights[layer][d]
            w["W_x"][...] = get("weight_ih").T
            w["W_h"][...] = get("weight_hh").T
            b_hh = get("bias_hh")
            if net.cell == "gru":
                w["b"][...] = get("bias_ih") + np.concatenate([b_hh[: 2 * H], np.zeros(H)])
                w["b_hn"][...] = b_hh[2 * H :]
            else:
                w["b"][...] = get("bias_ih") + b_hh
    return params


def grad_from_torch(net, modules):
    """The gradient accumulated in torch ``modules``, in ``net``'s flat layout."""
    grad = np.zeros(net.n_params)
    grads = net.unflatten(grad)
    for layer, (module, k) in enumerate(torch_layers(modules)):
        H = net.hidden_sizes[layer]
        for d in range(net.num_directions):

            def get(name):
                return getattr(module, f"{name}_l{k}{'_reverse' if d else ''}").grad.numpy()

            g = grads[layer][d]
            # b sums b_ih and (the first 2H of, for GRU) b_hh: they share its gradient
            shared = slice(0, 2 * H) if net.cell == "gru" else slice(None)
            np.testing.assert_allclose(get("bias_hh")[shared], get("bias_ih")[shared])
            g["W_x"][...] = get("weight_ih").T
            g["W_h"][...] = get("weight_hh").T
            g["b"][...] = get("bias_ih")
            if net.cell == "gru":
                g["b_hn"][...] = get("bias_hh")[2 * H :]
    return grad


class TorchStack:
    """PyTorch modules computing the same network as a `reference.Net`, in float64.

    Equal hidden sizes use one module with ``num_layers`` layers; different
    ones a chain of one-layer modules.
    """

    def __init__(self, torch, net, seed=0):
        self.torch, self.net = torch, net
        torch.manual_seed(seed)
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[net.cell]
        kwargs = dict(bidirectional=net.bidirectional, dtype=torch.float64)
        if net.cell == "rnn":
            kwargs["nonlinearity"] = net.nonlinearity
        sizes = net.hidden_sizes
        if len(set(sizes)) == 1:
            self.modules = [cls(net.input_size, sizes[0], num_layers=len(sizes), **kwargs)]
        else:
            self.modules = [
                cls(net.layer_input_size(layer), H, **kwargs) for layer, H in enumerate(sizes)
            ]

    def params(self):
        return params_from_torch(self.net, self.modules)

    def run(self, p):
        """Forward and backward on problem ``p``; same keys as `reference.run`.

        The loss is ``sum(Y * dY) + sum(h_n * dh_n) (+ sum(c_n * dc_n))``, so
        the gradients are those ``run`` computes for ``p``'s dY, dh_n, dc_n.
        """
        torch, net = self.torch, self.net
        lstm = net.cell == "lstm"
        T, B, _ = p.X.shape
        D = net.num_directions
        for module in self.modules:
            module.zero_grad()

        def leaves(arrays):
            # zeros stand for None so that dh0 / dc0 can be compared too
            if arrays is None:
                arrays = [np.zeros((D, B, H)) for H in net.hidden_sizes]
            return [torch.tensor(a, requires_grad=True) for a in arrays]

        X = torch.tensor(p.X, requires_grad=True)
        h0, c0 = leaves(p.h0), leaves(p.c0) if lstm else None
        out = X
        if p.lengths is not None:
            out = torch.nn.utils.rnn.pack_padded_sequence(
                X, torch.as_tensor(p.lengths), enforce_sorted=False
            )
        h_n, c_n, first = [], [], 0
        for module in self.modules:
            layers = slice(first, first + module.num_layers)
            hx = torch.cat(h0[layers])
            if lstm:
                hx = (hx, torch.cat(c0[layers]))
            out, state = module(out, hx)
            hs, cs = state if lstm else (state, None)
            h_n += list(hs.split(D))
            c_n += list(cs.split(D)) if lstm else []
            first += module.num_layers
        if p.lengths is not None:
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)

        loss = (out * torch.tensor(p.dY)).sum()
        loss = loss + sum((h * torch.tensor(dh)).sum() for h, dh in zip(h_n, p.dh_n))
        if lstm:
            loss = loss + sum((c * torch.tensor(dc)).sum() for c, dc in zip(c_n, p.dc_n))
        loss.backward()

        def numpy(tensors):
            return [t.detach().numpy() for t in tensors]

        return dict(
            Y=out.detach().numpy(),
            h_n=numpy(h_n),
            c_n=numpy(c_n) if lstm else None,
            dX=X.grad.numpy(),
            dh0=numpy(h.grad for h in h0),
            dc0=numpy(c.grad for c in c0) if lstm else None,
            grad=grad_from_torch(net, self.modules),
        )


def assert_results_close(actual, expected, rtol, atol):
    """Compare two result dicts (`reference.run` keys) entry by entry."""
    for key, value in expected.items():
        if value is None:
            assert actual[key] is None, key
        elif isinstance(value, list):
            assert len(actual[key]) == len(value), key
            for layer, (a, e) in enumerate(zip(actual[key], value)):
                np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{key}[{layer}]")
        else:
            np.testing.assert_allclose(actual[key], value, rtol=rtol, atol=atol, err_msg=key)


# crnn side, imported on use so that the reference tests run without the compiled kernel.


def layout_for(net):
    """The ``crnn.functional.RNNLayout`` of a `reference.Net`."""
    from crnn.functional import RNNLayout

    return RNNLayout(
        cell=net.cell,
        input_size=net.input_size,
        hidden_sizes=net.hidden_sizes,
        bidirectional=net.bidirectional,
        nonlinearity=net.nonlinearity,
    )


def crnn_run(p, truncate=None, dtype=np.float64):
    """Run ``crnn.functional`` forward and backward on problem ``p`` cast to ``dtype``.

    Returns a dict with the keys of `reference.run`.
    """
    from crnn.functional import backward, forward

    def cast(a):
        return None if a is None else a.astype(dtype)

    def cast_all(arrays):
        return None if arrays is None else [cast(a) for a in arrays]

    Y, (h_n, c_n), cache = forward(
        layout_for(p.net), cast(p.params), cast(p.X), p.lengths, cast_all(p.h0), cast_all(p.c0)
    )
    dX, dh0, dc0, grad = backward(
        cache, cast(p.dY), cast_all(p.dh_n), cast_all(p.dc_n), truncate=truncate
    )
    return dict(Y=Y, h_n=h_n, c_n=c_n, dX=dX, dh0=dh0, dc0=dc0, grad=grad)


# -- unusual but valid memory layouts of an array (the fuzz tests feed them) --------------


def fortran(a):
    return np.asfortranarray(a)


def strided(a):
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def reversed_strides(a):
    return np.ascontiguousarray(a[::-1])[::-1]


def read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a
