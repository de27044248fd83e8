"""Preprocessing for sequence data: :class:`SequenceScaler`.

scikit-learn's ``StandardScaler`` takes 2D arrays of independent samples; it refuses 3D
arrays and lists of sequences, and on 2D univariate sequences it would standardize each
time step separately. :class:`SequenceScaler` standardizes each *feature* over every real
step of every sequence, and hands the data back in the form it came in.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_array, check_is_fitted

from . import _kernels
from ._data import check_sequences, is_ragged

__all__ = ["SequenceScaler"]


def sequence_moments(x, lengths):
    """Per-feature count, mean and variance over the real steps of padded sequences.

    Parameters
    ----------
    x : ndarray of shape (n_sequences, n_steps, n_features)
        Batch-major sequences, as :func:`crnn._data.check_sequences` returns them.
    lengths : ndarray of shape (n_sequences,)
        The number of real steps of each sequence; later steps are ignored.

    Returns
    -------
    n : int
        The number of real steps.
    mean, var : ndarray of shape (n_features,), float64
        Computed in float64 with two passes (the variance is not a difference of
        large sums, so float32 input loses nothing).
    """
    if x.dtype in (np.float32, np.float64):  # in C: no float64 copies of the data
        n, mean, var = _kernels.sequence_moments(
            np.ascontiguousarray(x), np.asarray(lengths, dtype=np.intp)
        )
        return int(n), mean, var
    real = x[np.arange(x.shape[1]) < lengths[:, np.newaxis]]  # (n, F), a copy
    mean = real.mean(axis=0, dtype=np.float64)
    var = np.square(real - mean, dtype=np.float64).mean(axis=0)
    return len(real), mean, var


def combine_moments(n_a, mean_a, var_a, n_b, mean_b, var_b):
    """Count, mean and variance of two sets from theirs (Chan, Golub and LeVeque, 1979)."""
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    var = (n_a * var_a + n_b * var_b + delta**2 * (n_a * n_b / n)) / n
    return n, mean, var


def standard_scale(var, mean, n):
    """Standard deviations, with 1 for features that are constant up to rounding.

    A feature is constant when its variance is within the rounding error of the
    computation, as in scikit-learn's ``StandardScaler``: such features are only
    centred, never divided by a tiny number.
    """
    eps = np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    scale = np.sqrt(var)
    scale[constant] = 1.0
    return scale


def _float_dtype(X):
    """float32 for float32 input (every sequence, in a list), float64 for anything else."""
    if isinstance(X, (list, tuple)) and len(X) > 0:
        dtypes = {getattr(item, "dtype", None) for item in X}
        return np.float32 if dtypes == {np.dtype(np.float32)} else np.float64
    return np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64


class SequenceScaler(TransformerMixin, BaseEstimator):
    """Standardize each feature of sequences over all their real steps.

    ``transform`` computes ``(x - mean_) / scale_`` at every step of every sequence,
    ``mean_`` and ``scale_`` being each feature's mean and standard deviation over all
    real steps of all training sequences (padding excluded). This is what
    ``StandardScaler`` does to independent samples, applied to sequence data, which
    ``StandardScaler`` refuses (3D arrays, lists) or scales per time step (2D arrays).

    The data comes back in the form it came in:

    - a 3D array ``(n_sequences, n_steps, n_features)``, of the same shape; trailing
      all-NaN steps are padding and stay NaN;
    - a 2D array ``(n_sequences, n_steps)``: univariate sequences (one feature, as
      crnn's estimators read it), of the same shape, NaN padding kept;
    - a list of arrays ``(n_steps_i, n_features)`` or ``(n_steps_i,)`` of any
      lengths: a list of arrays of the same shapes.

    float32 input stays float32; anything else becomes float64. The statistics are
    accumulated in float64.

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract each feature's mean.
    with_std : bool, default=True
        Divide by each feature's standard deviation. A feature that is constant
        (up to rounding) has ``scale_`` 1, as in ``StandardScaler``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,) or None
        Mean of each feature over all real steps; None when both ``with_mean``
        and ``with_std`` are False.
    var_ : ndarray of shape (n_features,) or None
        Variance (population, ``ddof=0``) of each feature over all real steps;
        None when ``with_std=False``.
    scale_ : ndarray of shape (n_features,) or None
        The divisor of each feature: ``sqrt(var_)``, or 1 for constant features;
        None when ``with_std=False``.
    n_samples_seen_ : int
        Number of real steps seen (over all sequences and ``partial_fit`` calls),
        the count behind the statistics.
    n_features_in_ : int
        Number of features per step; 1 for 2D input.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : The same for independent samples.
    crnn.RNNClassifier, crnn.RNNRegressor : Standardize their inputs themselves by
        default (``scale_inputs=True``); use this scaler to look at or reuse the
        scaled data, or in front of other sequence models.

    Examples
    --------
    Two features on very different scales, in sequences of different lengths:

    >>> import numpy as np
    >>> from crnn.preprocessing import SequenceScaler
    >>> X = [np.array([[1.0, 100.0], [3.0, 300.0]]), np.array([[2.0, 200.0]])]
    >>> scaler = SequenceScaler().fit(X)
    >>> scaler.mean_, scaler.n_samples_seen_
    (array([  2., 200.]), 3)
    >>> [x.round(3).tolist() for x in scaler.transform(X)]
    [[[-1.225, -1.225], [1.225, 1.225]], [[0.0, 0.0]]]
    """

    _parameter_constraints: dict = {"with_mean": ["boolean"], "with_std": ["boolean"]}

    def __init__(self, *, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def _reset(self):
        for name in ("mean_", "var_", "scale_", "n_samples_seen_", "n_features_in_"):
            self.__dict__.pop(name, None)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute each feature's mean and standard deviation over all real steps.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_steps, n_features) or \
                (n_sequences, n_steps), or list of array-like of shape \
                (n_steps_i, n_features) or (n_steps_i,)
            The sequences; trailing all-NaN steps of arrays are padding.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted scaler.
        """
        self._reset()
        return self._partial_fit(X)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the statistics with more sequences (for data that arrive in parts).

        The result equals ``fit`` on all parts together, up to rounding: the counts,
        means and variances of the parts are combined exactly (Chan, Golub and
        LeVeque's pairwise update).

        Parameters
        ----------
        X : array-like or list of array-like
            Sequences, in any form ``fit`` takes.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The updated scaler.
        """
        return self._partial_fit(X)

    def _partial_fit(self, X):
        first = not hasattr(self, "n_samples_seen_")
        x, lengths = check_sequences(X, dtype=_float_dtype(X))
        if not first:
            self._check_n_features(x)
        n, mean, var = sequence_moments(x, lengths)
        if not first:
            seen_mean = self._mean if self._mean is not None else np.zeros_like(mean)
            seen_var = self.var_ if self.var_ is not None else np.zeros_like(var)
            n, mean, var = combine_moments(self.n_samples_seen_, seen_mean, seen_var, n, mean, var)
        self.n_features_in_ = x.shape[2]
        self.n_samples_seen_ = int(n)
        self._mean = mean
        self.mean_ = mean if (self.with_mean or self.with_std) else None
        self.var_ = var if self.with_std else None
        self.scale_ = standard_scale(var, mean, n) if self.with_std else None
        return self

    def _check_n_features(self, x):
        if x.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[2]} features per step, but SequenceScaler was fitted "
                f"with {self.n_features_in_}."
            )

    def transform(self, X):
        """Standardize sequences: ``(x - mean_) / scale_`` at every real step.

        Parameters
        ----------
        X : array-like or list of array-like
            Sequences, in any form ``fit`` takes.

        Returns
        -------
        X_scaled : ndarray or list of ndarray
            In the form and shape of ``X`` (NaN padding stays NaN).
        """
        check_is_fitted(self)
        return self._apply(X, inverse=False)

    def inverse_transform(self, X):
        """Undo ``transform``: ``x * scale_ + mean_`` at every real step.

        Parameters
        ----------
        X : array-like or list of array-like
            Scaled sequences, in any form ``fit`` takes.

        Returns
        -------
        X_original : ndarray or list of ndarray
            In the form and shape of ``X`` (NaN padding stays NaN).
        """
        check_is_fitted(self)
        return self._apply(X, inverse=True)

    def _apply(self, X, inverse):
        ragged = is_ragged(X)
        dtype = _float_dtype(X)
        if not ragged:  # an array first, to know its shape
            X = check_array(X, dtype=dtype, allow_nd=True, ensure_all_finite="allow-nan")
        x, lengths = check_sequences(X, dtype=dtype)
        self._check_n_features(x)
        mean = self.mean_ if self.with_mean else None
        scale = self.scale_
        out = np.array(x, dtype=dtype)  # check_sequences may return X itself
        if inverse:
            if scale is not None:
                out *= scale.astype(dtype)
            if mean is not None:
                out += mean.astype(dtype)
        else:
            if mean is not None:
                out -= mean.astype(dtype)
            if scale is not None:
                out /= scale.astype(dtype)
        if ragged:
            return [
                out[i, :n].reshape(np.shape(item)) for i, (item, n) in enumerate(zip(X, lengths))
            ]
        padding = np.arange(out.shape[1]) >= lengths[:, np.newaxis]
        out[padding] = np.nan
        return out.reshape(X.shape) if X.ndim == 2 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
