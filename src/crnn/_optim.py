"""Stochastic optimizers over one flat parameter array.

Every parameter of a model (recurrent layers, decoder, output layer) lives in
one 1-D array, so an update is one pass of a C loop (``src/csrc/optim.c``),
whatever the number of layers. The update rules, and the learning-rate plateau rule
(:meth:`trigger_stopping`), follow scikit-learn's
``sklearn/neural_network/_stochastic_optimizers.py``.
"""

import math

import numpy as np

from . import _kernels

__all__ = ["SGD", "Adam"]

# The learning rate below which the adaptive schedule stops instead of dividing it again.
_MIN_LEARNING_RATE = 1e-6


class _Optimizer:
    """What the optimizers share: the learning rate and its schedule."""

    def __init__(self, learning_rate, schedule):
        self.learning_rate = float(learning_rate)
        self.schedule = schedule

    def slows_down(self):
        """Whether a plateau divides the learning rate (the adaptive schedule, above its
        floor) rather than stopping training."""
        return self.schedule == "adaptive" and self.learning_rate / 5 >= _MIN_LEARNING_RATE

    def trigger_stopping(self, message, verbose):
        """Decide what a plateau of the monitored loss does: stop, or go on slower.

        With ``schedule="adaptive"``, the learning rate is divided by 5 and training
        goes on, until it would fall below 1e-6; otherwise training stops.

        Parameters
        ----------
        message : str
            Why the loop asks (the plateau), printed with the decision when ``verbose``.
        verbose : bool
            Whether to print the decision.

        Returns
        -------
        stop : bool
            True when training should stop.
        """
        if self.slows_down():
            self.learning_rate /= 5
            if verbose:
                print(f"{message} Setting learning rate to {self.learning_rate:g}.")
            return False
        if verbose:
            print(f"{message} Stopping.")
        return True


class SGD(_Optimizer):
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
        The momentum coefficient.
    nesterov : bool, default=True
        Whether to use Nesterov's momentum.
    schedule : {"constant", "adaptive"}, default="constant"
        What :meth:`trigger_stopping` does on a plateau.
    """

    def __init__(self, params, learning_rate, momentum=0.9, nesterov=True, schedule="constant"):
        super().__init__(learning_rate, schedule)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros_like(params)

    def kernel_state(self):
        """The compiled step's optimizer arguments (``_kernels.TrainStep``)."""
        return dict(
            solver="sgd", m=self.velocity, v=None, momentum=self.momentum, nesterov=self.nesterov
        )

    def step_size(self):
        """The step size of the next update: the learning rate."""
        return self.learning_rate

    def update(self, params, grad):
        """Update ``params`` in place with the gradient ``grad`` (1-D, of its dtype)."""
        _kernels.sgd_update(
            params, grad, self.velocity, self.learning_rate, self.momentum, self.nesterov
        )


class Adam(_Optimizer):
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
    schedule : {"constant", "adaptive"}, default="constant"
        What :meth:`trigger_stopping` does on a plateau.
    """

    def __init__(
        self, params, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, schedule="constant"
    ):
        super().__init__(learning_rate, schedule)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)

    def kernel_state(self):
        """The compiled step's optimizer arguments (``_kernels.TrainStep``)."""
        return dict(
            solver="adam",
            m=self.m,
            v=self.v,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
        )

    def step_size(self):
        """The step size of the next update, counting it: the learning rate with Adam's
        bias correction."""
        self.t += 1
        return self.learning_rate * math.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)

    def update(self, params, grad):
        """Update ``params`` in place with the gradient ``grad`` (1-D, of its dtype)."""
        step = self.step_size()
        _kernels.adam_update(
            params, grad, self.m, self.v, step, self.beta_1, self.beta_2, self.epsilon
        )
