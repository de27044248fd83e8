"""Stochastic optimizers over one flat parameter array.

Every parameter of a model (recurrent layers, decoder, output layer) lives in
one 1-D array, so an update is a constant handful of vectorised NumPy calls
with preallocated buffers, whatever the number of layers. The update rules
follow scikit-learn's ``sklearn/neural_network/_stochastic_optimizers.py``.
"""

import numpy as np

__all__ = ["SGD", "Adam", "clip_by_global_norm"]


class SGD:
    """Stochastic gradient descent with (Nesterov) momentum.

    ``v <- momentum * v - lr * g``, then ``p <- p + v`` (classical momentum)
    or ``p <- p + momentum * v - lr * g`` (Nesterov's momentum).

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The parameters; only their shape and dtype are used here.
    learning_rate : float
        The step size; the attribute of the same name may be changed between
        updates (learning-rate schedules do).
    momentum : float, default=0.9
    nesterov : bool, default=True
    """

    def __init__(self, params, learning_rate, momentum=0.9, nesterov=True):
        self.learning_rate = float(learning_rate)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros_like(params)
        self._step = np.empty_like(params)

    def update(self, params, grad):
        """Update ``params`` in place with the gradient ``grad``."""
        v, step = self.velocity, self._step
        v *= self.momentum
        np.multiply(grad, self.learning_rate, out=step)
        v -= step
        if self.nesterov:
            params -= step
            np.multiply(v, self.momentum, out=step)
            params += step
        else:
            params += v


class Adam:
    """Adam (Kingma and Ba, 2014), with the bias correction folded into the step size.

    Parameters
    ----------
    params : ndarray of shape (n_params,)
        The parameters; only their shape and dtype are used here.
    learning_rate : float
        The step size before bias correction; may be changed between updates.
    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Added to the root of the second moment for numerical stability.
    """

    def __init__(self, params, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.learning_rate = float(learning_rate)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self._tmp = np.empty_like(params)

    def update(self, params, grad):
        """Update ``params`` in place with the gradient ``grad``."""
        self.t += 1
        m, v, tmp = self.m, self.v, self._tmp
        m *= self.beta_1
        np.multiply(grad, 1 - self.beta_1, out=tmp)
        m += tmp
        v *= self.beta_2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - self.beta_2
        v += tmp
        step = self.learning_rate * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= step
        params -= tmp


def clip_by_global_norm(grad, max_norm):
    """Scale ``grad`` in place so that its Euclidean norm is at most ``max_norm``.

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
    with np.errstate(over="ignore", invalid="ignore"):
        norm = float(np.sqrt(np.dot(grad, grad)))
    if not np.isfinite(norm) and np.isfinite(grad).all():
        # The float32 sum of squares overflowed although every entry is finite.
        norm = float(np.linalg.norm(grad.astype(np.float64)))
    if max_norm is not None and norm > max_norm:
        grad *= max_norm / norm
    return norm
