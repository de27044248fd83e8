"""A training minibatch's loss and gradient built from crnn.functional and NumPy.

The estimators run a minibatch in one compiled call (crnn._step, src/csrc/net.c); this is
the same computation written with the functional API (forward, backward, the readouts),
the NumPy losses of crnn._loss and a NumPy output layer, pattern by pattern. It draws the
dropout masks through ``functional.forward`` from the estimator's random state, so a
compiled step that draws them in the same order gets the same masks.
test_compiled_step.py checks the two against each other.
"""

import math

import numpy as np

from crnn import _kernels
from crnn.functional import backward, forward, readout_backward


def _dense_backward(features, dout, W, gW, gb):
    np.dot(features.T, dout, out=gW)
    gb[...] = dout.sum(axis=0)
    return dout @ W.T


def _head_loss(head, features, y, weights, W, b, gW, gb):
    """The head's loss over features ``(M, width)``; fills ``gW``, ``gb``."""
    loss, dout = head.loss(features @ W + b, y, weights)
    if not np.isfinite(loss):
        return loss, None
    return loss, _dense_backward(features, dout, W, gW, gb)


def _step_loss(head, Y, y, weights, W, b, gW, gb):
    steps, batch, width = Y.shape
    loss, dfeatures = _head_loss(
        head,
        Y.reshape(steps * batch, width),
        y.reshape(steps * batch, *y.shape[2:]),
        weights.reshape(-1),
        W,
        b,
        gW,
        gb,
    )
    return loss, None if dfeatures is None else dfeatures.reshape(Y.shape)


def _split_directions(d, num_directions):
    """``(B, D * H)`` to ``(D, B, H)``."""
    return np.ascontiguousarray(d.reshape(len(d), num_directions, -1).transpose(1, 0, 2))


def _bridge(states):
    if states is None:
        return None
    return [np.concatenate(s, axis=1)[np.newaxis] for s in states]


def loss_grad(est, network, params, grad, batch, batch_weight, n_threads=1):
    """The loss of a time-major minibatch at ``params`` (no L2 penalty), its inputs as
    validated (standardized here, as ``fit`` does); fills ``grad``."""
    pattern, head = est._pattern, est._head
    weights = batch.weights / batch_weight
    train = dict(
        dropout=est.dropout,
        recurrent_dropout=est.recurrent_dropout,
        input_dropout=est.input_dropout,
        random_state=est._random_state,
        check_finite=False,
        n_threads=n_threads,
    )
    bptt = dict(truncate=est.truncate_bptt, check_finite=False, input_grad=False)
    enc, dec, W, b = network.split(params)
    grad[:] = 0
    g_enc, g_dec, gW, gb = network.split(grad)
    x, lengths, _ = pattern.train_inputs(network, head, batch)
    if getattr(est, "input_mean_", None) is not None:  # as the estimator standardizes X
        x = (x - est.input_mean_.astype(x.dtype)) / est.input_scale_.astype(x.dtype)
        x[np.arange(len(x))[:, np.newaxis] >= lengths] = 0
    directions = network.encoder.num_directions
    if pattern.name == "seq2vec":
        Y, (h_n, _), cache = forward(network.encoder, enc, x, lengths, **train)
        features, readout_cache = network.readout_forward(params, Y, lengths, h_n)
        loss, dfeatures = _head_loss(head, features, batch.y, weights, W, b, gW, gb)
        if readout_cache is None:  # "last": the gradient enters through the final states
            dh_n = [np.zeros_like(h) for h in h_n]
            dh_n[-1] = _split_directions(dfeatures, directions)
            g_enc[:] = backward(cache, None, dh_n, **bptt)[3]
            return loss
        dY, d_readout = readout_backward(readout_cache, dfeatures, check_finite=False)
        if d_readout is not None:
            network.readout_params(grad)[:] = d_readout
        g_enc[:] = backward(cache, dY, **bptt)[3]
        return loss
    if pattern.name == "encdec":
        _, (h_n, c_n), cache = forward(network.encoder, enc, x, lengths, **train)
        Y, _, decoder_cache = forward(
            network.decoder,
            dec,
            pattern.teacher_inputs(head, batch.y, network.n_outputs, params.dtype),
            batch.y_lengths,
            _bridge(h_n),
            _bridge(c_n),
            **{**train, "input_dropout": 0.0},  # input dropout is the encoder's (X)
        )
        loss, dY = _step_loss(head, Y, batch.y, weights, W, b, gW, gb)
        _, dh0, dc0, g_dec[:] = backward(decoder_cache, dY, **bptt)
        dh_n = [_split_directions(d[0], directions) for d in dh0]
        dc_n = None if dc0 is None else [_split_directions(d[0], directions) for d in dc0]
        g_enc[:] = backward(cache, None, dh_n, dc_n, **bptt)[3]
        return loss
    Y, _, cache = forward(network.encoder, enc, x, lengths, **train)
    loss, dY = _step_loss(head, Y, batch.y, weights, W, b, gW, gb)
    g_enc[:] = backward(cache, dY, **bptt)[3]
    return loss


def clip_by_global_norm(grad, max_norm):
    """Scale ``grad`` in place so that its Euclidean norm is at most ``max_norm`` (as the
    compiled step clips, ``crnn_train_update``).

    Parameters
    ----------
    grad : ndarray of shape (n_params,)
    max_norm : float or None
        None leaves ``grad`` unchanged (the norm is still returned).

    Returns
    -------
    norm : float
        The norm before clipping; not finite when ``grad`` is not.
    """
    # Summed in double: a float32 gradient whose squares overflow float32 still gets its norm.
    norm = math.sqrt(_kernels.sum_squares(grad))
    if max_norm is not None and norm > max_norm:
        grad *= max_norm / norm
    return norm
