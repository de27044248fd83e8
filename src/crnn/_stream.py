"""Step-by-step prediction from a fitted estimator: what ``est.stream()`` returns."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._loss import log_softmax, softmax
from .functional import Stream

__all__ = ["PredictionStream"]

_METHODS = ("predict", "predict_proba", "predict_log_proba")


class PredictionStream:
    """Predict one step at a time from a fitted one-way seq2vec or seq2seq model.

    Made by the estimators' ``stream`` method. The recurrent layers and the
    output layer run in :class:`crnn.functional.Stream` (one C call a step);
    each :meth:`step` then applies what ``method`` applies (labels, probabilities, or values in the
    targets' units), so feeding sequences step by step gives what ``method``
    gives on the whole sequences: at every step for seq2seq, and after the
    last step for seq2vec (whose prediction is the one after each step so far).

    Parameters
    ----------
    estimator : RNNClassifier or RNNRegressor
        Fitted, one-way (``bidirectional=False``), pattern seq2vec or seq2seq.
        Its weights are copied: refitting it does not change the stream.
    batch_size : int, default=1
        Number of independent sequences advanced together.
    method : {"predict", "predict_proba", "predict_log_proba"}, default="predict"
        What :meth:`step` returns; the probabilities need a classifier.

    Attributes
    ----------
    batch_size : int
    method : str
    """

    def __init__(self, estimator, batch_size=1, method="predict"):
        check_is_fitted(estimator)
        if method not in _METHODS or not hasattr(estimator, method):
            available = [m for m in _METHODS if hasattr(estimator, m)]
            raise ValueError(
                f"method must be one of {available} for {type(estimator).__name__}, got "
                f"{method!r}."
            )
        network = estimator._network()
        estimator._check_streamable(network, "stream()")
        enc, _, W, b = (a.copy() for a in network.split(estimator.params_))
        # The scaling of inputs and targets is folded into the weights, which cost nothing
        # per step: (x - m) / s @ W_x + b = x @ (W_x / s) + (b - (m / s) @ W_x) in the first
        # layer, and (y @ W + b) * s_y + m_y = y @ (W * s_y) + (b * s_y + m_y) in the head.
        if getattr(estimator, "input_mean_", None) is not None:  # None: off, or no option
            first = network.encoder.views(enc)[0][0]
            mean, scale = estimator.input_mean_, estimator.input_scale_
            W_x = first["W_x"].astype(np.float64)
            first["b"] -= ((mean / scale) @ W_x).astype(W.dtype)
            first["W_x"][...] = W_x / scale[:, np.newaxis]
        if getattr(estimator, "target_mean_", None) is not None:
            mean, scale = estimator.target_mean_, estimator.target_scale_
            b[...] = b * scale + mean
            W *= scale.astype(W.dtype)
        self.batch_size, self.method = batch_size, method
        self._stream = Stream(network.encoder, enc, batch_size=batch_size, head=(W, b))
        self._dtype = W.dtype
        self._x_shape = (batch_size, estimator.n_features_in_)
        self._head = _head(estimator, method)

    @property
    def state(self):
        """The hidden states after the last step, as ``predict`` returns them.

        ``(h, c)``: one ``(1, batch_size, H_l)`` array per layer (``c``: the LSTM's cell
        states, else None). Copies, valid as the ``initial_state`` of the estimator's
        ``predict`` and as the argument of :meth:`reset`.
        """
        return self._stream.state

    def reset(self, state=None):
        """Start every sequence over.

        Parameters
        ----------
        state : tuple, default=None
            The states to start from: as :attr:`state` gives them, or as
            ``predict(..., return_state=True)`` returns them. None starts from zeros.
        """
        h0, c0 = (None, None) if state is None else state
        self._stream.reset(h0, c0)

    def step(self, x):
        """Advance every sequence by one step and predict.

        Parameters
        ----------
        x : array-like of shape (batch_size, n_features)
            One step of each sequence.

        Returns
        -------
        y : ndarray of shape (batch_size,) or (batch_size, n_outputs)
            For each sequence, what ``method`` returns for this step: a label,
            class probabilities (float64), or a value or vector (float64).
        """
        if type(x) is not np.ndarray or x.dtype != self._dtype:
            x = np.asarray(x, dtype=self._dtype)
        if x.shape != self._x_shape:
            raise ValueError(
                f"x must have shape (batch_size, n_features) = {self._x_shape}: one step of "
                f"each sequence; got {x.shape}."
            )
        # Every head returns a new array: the stream's buffer needs no copy.
        return self._head(self._stream.step(x, copy=False))


def _head(estimator, method):
    """What turns the output layer's values ``(B, k)`` into ``method``'s result."""
    if hasattr(estimator, "classes_"):
        classes = estimator.classes_.copy()
        if method == "predict":
            return lambda out: classes[out.argmax(axis=1)]
        normalize = softmax if method == "predict_proba" else log_softmax
        return lambda out: normalize(out.astype(np.float64))
    if estimator.n_outputs_ == 1:
        return lambda out: out[:, 0].astype(np.float64)
    return lambda out: out.astype(np.float64)
