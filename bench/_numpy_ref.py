"""Plain NumPy RNN, LSTM and GRU: forward and BPTT, the benchmark's NumPy peer.

Written the way a competent NumPy user would: vectorised over the batch, a Python loop
over time, the input projection of all steps in one matrix product before the loop and the
weight gradients in large products after it. One layer, one direction, full-length
sequences. Conventions follow ``crnn.functional`` (time-major ``X`` of shape ``(T, B, I)``;
``W_x`` ``(I, G*H)``, ``W_h`` ``(H, G*H)``, ``b`` ``(G*H,)`` and, for the GRU, ``b_hn``
``(H,)``; gate blocks LSTM ``i, f, g, o`` and GRU ``r, z, n``), so the benchmark can check
that every implementation computes the same numbers.
"""

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _sigmoid(x):
    # tanh form: one transcendental per element and no overflow for large |x|.
    return 0.5 * np.tanh(0.5 * x) + 0.5


def forward(cell, params, X, h0=None, c0=None):
    """Run one layer over every step.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
        The vanilla cell uses tanh.
    params : dict of ndarray
        ``W_x``, ``W_h``, ``b`` and, for ``"gru"``, ``b_hn``.
    X : ndarray of shape (T, B, I)
    h0, c0 : ndarray of shape (B, H) or None
        Initial states (zeros if None); ``c0`` only for ``"lstm"``.

    Returns
    -------
    Y : ndarray of shape (T, B, H)
        The hidden state after every step.
    h_n : ndarray of shape (B, H)
    c_n : ndarray of shape (B, H) or None
    cache : dict
        What :func:`backward` needs.
    """
    T, B, n_in = X.shape
    W_h = params["W_h"]
    H = W_h.shape[0]
    h = np.zeros((B, H), X.dtype) if h0 is None else h0
    c = np.zeros((B, H), X.dtype) if c0 is None and cell == "lstm" else c0
    # Input projection of all steps at once: (T*B, G*H) = (T*B, I)(I, G*H).
    XW = (X.reshape(T * B, n_in) @ params["W_x"] + params["b"]).reshape(T, B, -1)
    Y = np.empty((T, B, H), X.dtype)
    cache = {"cell": cell, "params": params, "X": X, "Y": Y, "h0": h, "c0": c}
    if cell == "rnn":
        for t in range(T):
            h = Y[t] = np.tanh(XW[t] + h @ W_h)
        return Y, h, None, cache
    acts = cache["acts"] = np.empty_like(XW)
    if cell == "lstm":
        C = cache["C"] = np.empty_like(Y)
        tanh_C = cache["tanh_C"] = np.empty_like(Y)
        for t in range(T):
            a = XW[t] + h @ W_h
            acts[t, :, : 2 * H] = _sigmoid(a[:, : 2 * H])
            acts[t, :, 2 * H : 3 * H] = np.tanh(a[:, 2 * H : 3 * H])
            acts[t, :, 3 * H :] = _sigmoid(a[:, 3 * H :])
            i, f, g, o = np.split(acts[t], 4, axis=1)
            c = C[t] = f * c + i * g
            tanh_C[t] = np.tanh(c)
            h = Y[t] = o * tanh_C[t]
        return Y, h, c, cache
    # GRU: the reset gate scales the recurrent product of the candidate, bias included.
    hn = cache["hn"] = np.empty_like(Y)
    for t in range(T):
        a = h @ W_h
        hn[t] = a[:, 2 * H :] + params["b_hn"]
        rz = acts[t, :, : 2 * H] = _sigmoid(XW[t, :, : 2 * H] + a[:, : 2 * H])
        r, z = rz[:, :H], rz[:, H:]
        n = acts[t, :, 2 * H :] = np.tanh(XW[t, :, 2 * H :] + r * hn[t])
        h = Y[t] = (1.0 - z) * n + z * h
    return Y, h, None, cache


def backward(cache, dY=None, dh_n=None, dc_n=None):
    """Backpropagate through every step of a :func:`forward` call.

    Parameters
    ----------
    cache : dict
        From :func:`forward`.
    dY : ndarray of shape (T, B, H) or None
        Gradient of the loss with respect to ``Y``.
    dh_n, dc_n : ndarray of shape (B, H) or None
        Gradients with respect to the final states.

    Returns
    -------
    dX : ndarray of shape (T, B, I)
    dh0 : ndarray of shape (B, H)
    dc0 : ndarray of shape (B, H) or None
    grads : dict of ndarray
        Same keys and shapes as the parameters.
    """
    cell, params, X, Y = cache["cell"], cache["params"], cache["X"], cache["Y"]
    T, B, n_in = X.shape
    W_h = params["W_h"]
    H = W_h.shape[0]
    H_prev = np.concatenate([cache["h0"][None], Y[:-1]])
    dh = np.zeros((B, H), X.dtype) if dh_n is None else dh_n.copy()
    dY = np.zeros_like(Y) if dY is None else dY
    # dG: gradient of the gate pre-activations; dGh: its part that flows through W_h,
    # which differs from dG only in the GRU's candidate block (scaled by r).
    dG = np.empty((T, B, GATES[cell] * H), X.dtype)
    dGh = dG
    if cell == "rnn":
        for t in reversed(range(T)):
            dG[t] = (dh + dY[t]) * (1.0 - Y[t] ** 2)
            dh = dG[t] @ W_h.T
    elif cell == "lstm":
        acts, C, tanh_C = cache["acts"], cache["C"], cache["tanh_C"]
        dc = np.zeros((B, H), X.dtype) if dc_n is None else dc_n.copy()
        for t in reversed(range(T)):
            i, f, g, o = np.split(acts[t], 4, axis=1)
            c_prev = C[t - 1] if t > 0 else cache["c0"]
            dh = dh + dY[t]
            dc = dc + dh * o * (1.0 - tanh_C[t] ** 2)
            dG[t, :, :H] = dc * g * i * (1.0 - i)
            dG[t, :, H : 2 * H] = dc * c_prev * f * (1.0 - f)
            dG[t, :, 2 * H : 3 * H] = dc * i * (1.0 - g**2)
            dG[t, :, 3 * H :] = dh * tanh_C[t] * o * (1.0 - o)
            dc = dc * f
            dh = dG[t] @ W_h.T
    else:
        acts, hn = cache["acts"], cache["hn"]
        dGh = np.empty_like(dG)
        for t in reversed(range(T)):
            r, z, n = np.split(acts[t], 3, axis=1)
            dh = dh + dY[t]
            dn = dh * (1.0 - z) * (1.0 - n**2)
            dG[t, :, :H] = dn * hn[t] * r * (1.0 - r)
            dG[t, :, H : 2 * H] = dh * (H_prev[t] - n) * z * (1.0 - z)
            dG[t, :, 2 * H :] = dn
            dGh[t, :, : 2 * H] = dG[t, :, : 2 * H]
            dGh[t, :, 2 * H :] = dn * r
            dh = dh * z + dGh[t] @ W_h.T
    # Weight and input gradients of all steps at once.
    dG2 = dG.reshape(T * B, -1)
    dGh2 = dGh.reshape(T * B, -1)
    grads = {
        "W_x": X.reshape(T * B, n_in).T @ dG2,
        "W_h": H_prev.reshape(T * B, H).T @ dGh2,
        "b": dG2.sum(axis=0),
    }
    if cell == "gru":
        grads["b_hn"] = dGh2[:, 2 * H :].sum(axis=0)
    dX = (dG2 @ params["W_x"].T).reshape(T, B, n_in)
    return dX, dh, (dc if cell == "lstm" else None), grads
