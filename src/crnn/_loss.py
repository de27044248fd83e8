"""Losses of the output layer, each returning the loss and its gradient at once.

Rows are positions (one per sequence, or one per step of every sequence);
``weights`` carries sample weights, class weights and the zero weight of
padded steps, and sums to one over a minibatch, so each loss is a weighted
mean.
"""

import numpy as np

__all__ = ["log_softmax", "softmax", "softmax_cross_entropy", "squared_error"]


def softmax(logits):
    """Row-wise softmax, computed from the logits minus their row maximum."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def log_softmax(logits):
    """Row-wise log-softmax, ``z - logsumexp(z)`` with ``z`` the logits minus their maximum."""
    z = logits - logits.max(axis=1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
    return z


def softmax_cross_entropy(logits, codes, weights):
    """Weighted mean cross-entropy of a softmax output layer.

    Parameters
    ----------
    logits : ndarray of shape (n_positions, n_classes)
    codes : ndarray of shape (n_positions,), dtype int
        The index of the true class at each position.
    weights : ndarray of shape (n_positions,)
        Non-negative, summing to one.

    Returns
    -------
    loss : float
        ``sum_i weights[i] * -log softmax(logits[i])[codes[i]]``.
    dlogits : ndarray of shape (n_positions, n_classes)
        The gradient, fused with the softmax: ``weights[i] * (p[i] - onehot[i])``.
    """
    rows = np.arange(len(codes))
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    total = p.sum(axis=1)
    loss = float(np.dot(weights, np.log(total) - z[rows, codes]))
    p /= total[:, np.newaxis]
    p[rows, codes] -= 1
    p *= weights[:, np.newaxis]
    return loss, p


def squared_error(outputs, targets, weights):
    """Weighted mean of half the squared error, averaged over the outputs.

    Parameters
    ----------
    outputs, targets : ndarray of shape (n_positions, n_outputs)
    weights : ndarray of shape (n_positions,)
        Non-negative, summing to one.

    Returns
    -------
    loss : float
        ``sum_i weights[i] * mean_k (outputs[i, k] - targets[i, k])**2 / 2``,
        the loss of scikit-learn's ``MLPRegressor``.
    doutputs : ndarray of shape (n_positions, n_outputs)
    """
    diff = outputs - targets
    loss = 0.5 * float(np.dot(weights, np.einsum("ij,ij->i", diff, diff))) / diff.shape[1]
    diff *= (weights / diff.shape[1])[:, np.newaxis]
    return loss, diff
