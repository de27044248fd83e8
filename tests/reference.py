"""A small, independent NumPy reference of crnn's functional API.

It implements the semantics of ``crnn.functional.forward`` / ``backward`` for
the RNN (tanh, relu), LSTM and GRU cells in float64, written for clarity, not
speed: every sequence of a batch runs on its own, one step at a time, so
variable lengths need no masks. It shares no code with crnn (not even the flat
parameter layout) so that the two can check each other. The reference itself
is checked against PyTorch in ``test_reference_vs_torch.py``.

Conventions (those of the functional API): time-major ``X`` of shape
``(T, B, I)``; per-layer states of shape ``(num_directions, B, H_l)``; row
vectors, so a step computes ``x @ W_x + h @ W_h + b`` with ``W_x`` of shape
``(I_l, G * H_l)``; gate blocks in PyTorch order (LSTM i, f, g, o; GRU r, z, n).
"""

from dataclasses import dataclass

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class Net:
    """Architecture of a (stacked, possibly bidirectional) recurrent network.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    input_size : int
    hidden_sizes : tuple of int
        One hidden size per layer.
    bidirectional : bool
    nonlinearity : {"tanh", "relu"}
        Activation of the "rnn" cell; ignored by the others.
    """

    cell: str
    input_size: int
    hidden_sizes: tuple
    bidirectional: bool = False
    nonlinearity: str = "tanh"

    @property
    def num_layers(self):
        return len(self.hidden_sizes)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def output_size(self):
        return self.num_directions * self.hidden_sizes[-1]

    def layer_input_size(self, layer):
        if layer == 0:
            return self.input_size
        return self.num_directions * self.hidden_sizes[layer - 1]

    def shapes(self):
        """Yield ``(layer, direction, name, shape)`` in flat-parameter order."""
        G = GATES[self.cell]
        for layer, H in enumerate(self.hidden_sizes):
            I = self.layer_input_size(layer)
            for direction in range(self.num_directions):
                yield layer, direction, "W_x", (I, G * H)
                yield layer, direction, "W_h", (H, G * H)
                yield layer, direction, "b", (G * H,)
                if self.cell == "gru":
                    yield layer, direction, "b_hn", (H,)

    @property
    def n_params(self):
        return sum(int(np.prod(shape)) for *_, shape in self.shapes())

    def unflatten(self, flat):
        """Split a flat parameter vector into ``[layer][direction][name]`` views."""
        assert flat.shape == (self.n_params,)
        weights = [[{} for _ in range(self.num_directions)] for _ in self.hidden_sizes]
        offset = 0
        for layer, direction, name, shape in self.shapes():
            size = int(np.prod(shape))
            weights[layer][direction][name] = flat[offset : offset + size].reshape(shape)
            offset += size
        return weights


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# One cell step. ``state`` is ``(h,)``, or ``(h, c)`` for the LSTM; ``step``
# returns the new state and what ``step_backward`` needs. ``step_backward``
# takes the gradient w.r.t. the new state, adds the weight gradients to the
# dict ``g`` and returns the gradients w.r.t. ``x`` and the previous state.
# ``mask`` (H,) is recurrent dropout: the recurrent product reads ``mask * h``
# (the GRU's ``z * h`` term and the LSTM's ``c`` stay unmasked); None: no mask.


def step(cell, nonlinearity, w, x, state, mask=None):
    h = state[0]
    hm = h if mask is None else mask * h
    if cell == "rnn":
        a = x @ w["W_x"] + hm @ w["W_h"] + w["b"]
        h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)
        return (h_new,), (x, h, a, h_new)
    if cell == "lstm":
        c = state[1]
        a = x @ w["W_x"] + hm @ w["W_h"] + w["b"]
        a_i, a_f, a_g, a_o = np.split(a, 4)
        i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        return (h_new, c_new), (x, h, c, i, f, g, o, c_new)
    # gru: the reset gate multiplies the recurrent product (b_hn included)
    a_x = x @ w["W_x"] + w["b"]
    a_h = hm @ w["W_h"]
    ax_r, ax_z, ax_n = np.split(a_x, 3)
    ah_r, ah_z, ah_n = np.split(a_h, 3)
    r = sigmoid(ax_r + ah_r)
    z = sigmoid(ax_z + ah_z)
    hn = ah_n + w["b_hn"]
    n = np.tanh(ax_n + r * hn)
    h_new = (1.0 - z) * n + z * h
    return (h_new,), (x, h, r, z, hn, n)


def step_backward(cell, nonlinearity, w, saved, dstate, g, mask=None):
    m = 1.0 if mask is None else mask
    dh_new = dstate[0]
    if cell == "rnn":
        x, h, a, h_new = saved
        if nonlinearity == "tanh":
            da = dh_new * (1.0 - h_new**2)
        else:
            da = dh_new * (a > 0)
        g["W_x"] += np.outer(x, da)
        g["W_h"] += np.outer(m * h, da)
        g["b"] += da
        return w["W_x"] @ da, (m * (w["W_h"] @ da),)
    if cell == "lstm":
        x, h, c, i, f, gg, o, c_new = saved
        tc = np.tanh(c_new)
        do = dh_new * tc
        dc = dstate[1] + dh_new * o * (1.0 - tc**2)
        da = np.concatenate(
            [
                dc * gg * i * (1.0 - i),
                dc * c * f * (1.0 - f),
                dc * i * (1.0 - gg**2),
                do * o * (1.0 - o),
            ]
        )
        g["W_x"] += np.outer(x, da)
        g["W_h"] += np.outer(m * h, da)
        g["b"] += da
        return w["W_x"] @ da, (m * (w["W_h"] @ da), dc * f)
    x, h, r, z, hn, n = saved
    dn = dh_new * (1.0 - z) * (1.0 - n**2)
    dr = dn * hn * r * (1.0 - r)
    dz = dh_new * (h - n) * z * (1.0 - z)
    dhn = dn * r
    da_x = np.concatenate([dr, dz, dn])
    da_h = np.concatenate([dr, dz, dhn])
    g["W_x"] += np.outer(x, da_x)
    g["W_h"] += np.outer(m * h, da_h)
    g["b"] += da_x
    g["b_hn"] += dhn
    return w["W_x"] @ da_x, (dh_new * z + m * (w["W_h"] @ da_h),)


def run_direction(net, w, xs, state, reverse, mask=None):
    """Run one direction of one layer over one sequence ``xs`` of shape (L, I).

    Returns the hidden state at every step (in time order), the final state,
    and the tape of ``(t, saved)`` in processing order.
    """
    L = xs.shape[0]
    hs = np.zeros((L, state[0].shape[0]))
    tape = []
    for t in reversed(range(L)) if reverse else range(L):
        state, saved = step(net.cell, net.nonlinearity, w, xs[t], state, mask)
        hs[t] = state[0]
        tape.append((t, saved))
    return hs, state, tape


def backprop_direction(net, w, tape, dhs, dstate, truncate, g, input_size, mask=None):
    """Backpropagate through one direction of one layer of one sequence.

    ``dhs`` (L, H) is the gradient w.r.t. the hidden state at every step,
    ``dstate`` the gradient w.r.t. the final state. With ``truncate=k`` only
    the last ``k`` processed steps are visited; earlier steps get no gradient
    and neither does the initial state. Returns ``(dxs, dstate0)``.
    """
    dxs = np.zeros((len(tape), input_size))
    visited = tape[::-1] if truncate is None else tape[::-1][:truncate]
    for t, saved in visited:
        dstate = (dstate[0] + dhs[t],) + tuple(dstate[1:])
        dxs[t], dstate = step_backward(net.cell, net.nonlinearity, w, saved, dstate, g, mask)
    if len(visited) < len(tape):
        dstate = tuple(np.zeros_like(d) for d in dstate)
    return dxs, dstate


def run(
    net,
    params,
    X,
    lengths=None,
    h0=None,
    c0=None,
    dY=None,
    dh_n=None,
    dc_n=None,
    truncate=None,
    recurrent_masks=None,
    input_mask=None,
):
    """Forward and backward pass of ``net`` in float64.

    Arguments follow ``crnn.functional.forward`` and ``backward``; ``None``
    means zeros (``lengths=None``: every sequence has ``T`` steps).
    ``recurrent_masks``: one (num_directions, B, H_l) recurrent dropout mask per
    layer; ``input_mask`` (B, I): every step of sequence b is multiplied by
    ``input_mask[b]``. None: no dropout.

    Returns
    -------
    dict with keys ``Y``, ``h_n``, ``c_n`` (forward) and ``dX``, ``dh0``,
    ``dc0``, ``grad`` (backward); ``c_n`` and ``dc0`` are None unless the
    cell is an LSTM.
    """
    params = np.asarray(params, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    T, B, _ = X.shape
    lstm = net.cell == "lstm"
    D = net.num_directions
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)

    def per_layer(arrays):
        if arrays is None:
            return [np.zeros((D, B, H)) for H in net.hidden_sizes]
        return [np.asarray(a, dtype=np.float64) for a in arrays]

    h0, c0, dh_n, dc_n = map(per_layer, (h0, c0, dh_n, dc_n))
    dY = np.zeros((T, B, net.output_size)) if dY is None else np.asarray(dY, dtype=np.float64)

    weights = net.unflatten(params)
    grad = np.zeros(net.n_params)
    grads = net.unflatten(grad)
    Y = np.zeros((T, B, net.output_size))
    dX = np.zeros_like(X)
    h_n, c_n, dh0, dc0 = (per_layer(None) for _ in range(4))

    for b in range(B):
        L = int(lengths[b])
        # forward, layer by layer; tapes[layer][direction]
        inp, tapes = X[:L, b], []
        if input_mask is not None:
            inp = inp * input_mask[b]

        def mask(layer, d):
            return None if recurrent_masks is None else recurrent_masks[layer][d, b]

        for layer in range(net.num_layers):
            outs, tapes_l = [], []
            for d in range(D):
                state = (h0[layer][d, b], c0[layer][d, b]) if lstm else (h0[layer][d, b],)
                hs, state, tape = run_direction(
                    net, weights[layer][d], inp, state, reverse=d == 1, mask=mask(layer, d)
                )
                outs.append(hs)
                tapes_l.append(tape)
                h_n[layer][d, b] = state[0]
                if lstm:
                    c_n[layer][d, b] = state[1]
            inp = np.concatenate(outs, axis=1)
            tapes.append(tapes_l)
        Y[:L, b] = inp
        # backward, last layer first
        dout = dY[:L, b]
        for layer in reversed(range(net.num_layers)):
            H = net.hidden_sizes[layer]
            dinp = 0.0
            for d in range(D):
                dstate = (dh_n[layer][d, b], dc_n[layer][d, b]) if lstm else (dh_n[layer][d, b],)
                dxs, dstate = backprop_direction(
                    net,
                    weights[layer][d],
                    tapes[layer][d],
                    dout[:, d * H : (d + 1) * H],
                    dstate,
                    truncate,
                    grads[layer][d],
                    net.layer_input_size(layer),
                    mask(layer, d),
                )
                dinp = dinp + dxs
                dh0[layer][d, b] = dstate[0]
                if lstm:
                    dc0[layer][d, b] = dstate[1]
            dout = dinp
        dX[:L, b] = dout if input_mask is None else dout * input_mask[b]

    return dict(
        Y=Y,
        h_n=h_n,
        c_n=c_n if lstm else None,
        dX=dX,
        dh0=dh0,
        dc0=dc0 if lstm else None,
        grad=grad,
    )


def readout(kind, Y, lengths, num_directions=1, params=None, dfeatures=None):
    """A sequence-to-vector readout of ``Y`` (T, B, F) and its gradient, one sequence at a
    time over its own ``lengths[b]`` steps.

    ``kind``: "last" (forward direction's last step, reverse direction's step 0), "mean",
    "max" (gradient to the first maximum) or "attention" with ``params`` =
    ``[W (F, A) | b (A) | v (A)]``: ``a = softmax(tanh(Y W + b) v)``, output ``a @ Y``.
    Returns ``(features (B, F), dY, dparams)`` for the gradient ``dfeatures`` (B, F).
    """
    Y = np.asarray(Y, dtype=np.float64)
    T, B, F = Y.shape
    H = F // num_directions
    features = np.zeros((B, F))
    dY = np.zeros_like(Y)
    dparams = None if params is None else np.zeros(len(params))
    g_all = np.zeros((B, F)) if dfeatures is None else np.asarray(dfeatures, dtype=np.float64)
    for b in range(B):
        L = int(lengths[b])
        ys, g, dys = Y[:L, b], g_all[b], dY[:L, b]
        if kind == "last":
            features[b, :H] = ys[L - 1, :H]
            features[b, H:] = ys[0, H:]
            dys[L - 1, :H] += g[:H]
            dys[0, H:] += g[H:]
        elif kind == "mean":
            features[b] = ys.mean(axis=0)
            dys += g / L
        elif kind == "max":
            features[b] = ys.max(axis=0)
            arg = ys.argmax(axis=0)  # the first maximum
            dys[arg, np.arange(F)] += g
        else:
            A = len(params) // (F + 2)
            W = params[: F * A].reshape(F, A)
            bias, v = params[F * A : F * A + A], params[F * A + A :]
            u = np.tanh(ys @ W + bias)
            s = u @ v
            a = np.exp(s - s.max())
            a /= a.sum()
            features[b] = a @ ys
            da = ys @ g
            ds = a * (da - a @ da)
            dz = ds[:, None] * v * (1 - u**2)
            dys += np.outer(a, g) + dz @ W.T
            dparams[: F * A] += (ys.T @ dz).ravel()
            dparams[F * A : F * A + A] += dz.sum(axis=0)
            dparams[F * A + A :] += u.T @ ds
    return features, dY, dparams
