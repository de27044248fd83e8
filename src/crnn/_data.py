"""Validation and conversion of sequence data for the estimators.

The estimators accept sequences in three forms and hand the kernels one: a
time-major, zero-padded array ``(n_steps, n_sequences, n_features)`` plus the
length of every sequence.

- a 3D array ``(n_sequences, n_steps, n_features)``; trailing steps whose
  features are all NaN are padding, so sequences of different lengths fit in
  one array;
- a 2D array ``(n_sequences, n_steps)``: univariate sequences (one feature per
  step), the form scikit-learn's scalers and splitters pass along; trailing
  NaN steps are padding here too;
- a list of 2D arrays ``(n_steps_i, n_features)`` (or 1D arrays
  ``(n_steps_i,)``) of any lengths, or a 1D object array holding such arrays.
  A rectangular list means what the array it converts to means.

A 1D array of numbers is refused: it could be one long sequence or many
one-step sequences, and the error says how to write either.

Targets of the per-step patterns follow the same rules (:func:`pad_targets`).
Validated training data is a :class:`TrainingData`, the source the training loop
draws its minibatches from.
"""

import numpy as np
from sklearn.utils.validation import check_array

from . import _kernels

__all__ = [
    "TrainingData",
    "as_sequence_list",
    "check_sequences",
    "check_step_weights",
    "check_vectors",
    "gather_time_major",
    "is_ragged",
    "is_step_weights",
    "pad_targets",
    "unpad",
]


class TrainingData:
    """Validated training data, with one weight per target position.

    ``x`` is ``(N, T, F)`` with ``x_lengths`` (``(N, F)`` vectors and None for vec2seq);
    ``y`` is ``(N,)`` codes or ``(N, k)`` values for seq2vec, else time-major ``(T_y, N)``
    codes or ``(T_y, N, k)`` values with ``y_lengths``; ``weights`` has the shape of the
    positions (``(N,)`` or ``(T_y, N)``) and is zero at padded steps.

    The training loop needs only ``len(data)``, ``data.weights`` of the whole set,
    ``data.permutation(rng)`` and ``data.take(idx, time_major=True)``: another source of
    minibatches implements those (:class:`crnn._chunked.ChunkedTrainingData` reads its
    sequences chunk by chunk).
    """

    def __init__(self, x, x_lengths, y, y_lengths, weights):
        self.x, self.x_lengths = x, x_lengths
        self.y, self.y_lengths, self.weights = y, y_lengths, weights
        self._equal_lengths = None

    def __len__(self):
        return len(self.x_lengths if self.x_lengths is not None else self.y_lengths)

    def permutation(self, rng):
        """The order of the sequences in a shuffled epoch."""
        return rng.permutation(len(self))

    def take(self, idx, time_major=False):
        """The sequences ``idx``, sorted by decreasing length and trimmed to the longest.

        Sorted lengths let the kernels run without reordering copies. With ``time_major``
        (a minibatch), sequences come out ``(steps, len(idx), F)``, as the kernels take them.
        """
        key = self.x_lengths if self.x_lengths is not None else self.y_lengths
        if self._equal_lengths is None:  # found once: sorting equal lengths is a no-op
            self._equal_lengths = bool(key.min() == key.max())
        if not self._equal_lengths:
            idx = idx[np.argsort(-key[idx], kind="stable")]
        if self.x_lengths is None:
            x, x_lengths = self.x[idx], None
        else:
            x_lengths = self.x_lengths[idx]
            if time_major:
                x = gather_time_major(self.x, idx, x_lengths[0])
            else:
                x = self.x[idx, : x_lengths[0]]
        if self.y_lengths is None:
            return TrainingData(x, x_lengths, self.y[idx], None, self.weights[idx])
        y_lengths = self.y_lengths[idx]
        steps = y_lengths.max()
        return TrainingData(
            x, x_lengths, self.y[:steps, idx], y_lengths, self.weights[:steps, idx]
        )


def gather_time_major(x, idx, steps):
    """Sequences ``idx`` of batch-major C-contiguous ``x`` ``(N, T, F)``, their first
    ``steps`` steps, as a C-contiguous time-major ``(steps, len(idx), F)`` array."""
    out = np.empty((steps, len(idx), x.shape[2]), dtype=x.dtype)
    _kernels.gather_steps(x, np.asarray(idx, dtype=np.intp), out)
    return out


def as_sequence_list(seq):
    """A 1D object array of sequences (as ``np.array(ragged, dtype=object)`` makes) as the
    list it stands for; anything else unchanged."""
    if (
        isinstance(seq, np.ndarray)
        and seq.dtype == object
        and seq.ndim == 1
        and len(seq) > 0
        and all(np.ndim(item) >= 1 for item in seq)
    ):
        return list(seq)
    return seq


def is_ragged(seq):
    """Whether ``seq`` is a list or tuple of arrays that do not share one shape."""
    if not isinstance(seq, (list, tuple)) or len(seq) == 0:
        return False
    first = np.shape(seq[0])
    return len(first) > 0 and any(np.shape(item) != first for item in seq)


def _check_not_empty_or_1d(X, name, vectors=False):
    """Refuse empty and 1D input with messages that say how sequences are read."""
    if isinstance(X, (list, tuple)) and len(X) == 0:
        what = "vector" if vectors else "sequence"
        raise ValueError(f"{name} is an empty list: it needs at least one {what}.")
    if is_ragged(X):
        return
    if isinstance(X, (list, tuple)):
        try:
            shape = np.shape(X)
        except ValueError:  # nested lists of uneven depth: check_array says what is wrong
            return
    else:
        shape = getattr(X, "shape", None)
        if shape is None:  # other array-likes: check_array converts them
            return
    if len(shape) == 0:
        raise ValueError(f"{name} is a scalar, {X!r}: it must be an array of sequences.")
    if len(shape) != 1:
        return
    if shape[0] == 0:
        raise ValueError(f"{name} is empty (shape (0,)): it needs at least one sequence.")
    if vectors:
        raise ValueError(
            f"{name} is 1D, of shape {shape}; pattern='vec2seq' takes one vector per sequence, "
            f"(n_sequences, n_features). Reshape your data: {name}.reshape(-1, 1) for "
            f"{shape[0]} vectors of one feature, or {name}.reshape(1, -1) for one vector of "
            f"{shape[0]} features."
        )
    n = shape[0]
    raise ValueError(
        f"{name} is 1D, of shape {shape}, which could be read two ways. Reshape your data: "
        f"{name}.reshape(-1, 1, 1) for {n} sequences of one step each, or "
        f"{name}.reshape(1, -1, 1) for one sequence of {n} steps (one feature per step). A "
        f"2D {name} is read as univariate sequences (n_sequences, n_steps), so "
        f"{name}.reshape(1, -1) is one sequence too."
    )


def check_sequences(X, *, dtype, name="X"):
    """Validate sequences and return them batch-major and zero-padded.

    Batch-major, so that well-formed input is used without a copy; the estimators copy
    each minibatch into the kernels' time-major layout.

    Parameters
    ----------
    X : array-like of shape (n_sequences, n_steps, n_features) or \
            (n_sequences, n_steps), or list of array-like
        The sequences, in any form described in the module docstring.
    dtype : numpy dtype
        The floating dtype of the result.
    name : str, default="X"
        The name used in error messages.

    Returns
    -------
    data : ndarray of shape (n_sequences, n_steps, n_features)
        C-contiguous, ``data[i, t] == 0`` for ``t >= lengths[i]``; ``X`` itself when it
        already is such an array (never written to).
    lengths : ndarray of shape (n_sequences,), dtype intp
        The number of steps of each sequence, at least 1.

    Raises
    ------
    ValueError
        For empty input, empty sequences, NaN other than trailing padding,
        infinity, inconsistent feature counts or arrays of the wrong number of
        dimensions. Sparse input raises scikit-learn's ``TypeError``.
    """
    X = as_sequence_list(X)
    _check_not_empty_or_1d(X, name)
    if is_ragged(X):
        return _check_ragged(X, dtype, name)
    X = check_array(X, dtype=dtype, allow_nd=True, ensure_all_finite="allow-nan", input_name=name)
    if X.ndim == 2:
        X = X[:, :, np.newaxis]
    elif X.ndim != 3:
        raise ValueError(
            f"{name} must be 2D (n_sequences, n_steps) or 3D (n_sequences, n_steps, "
            f"n_features), got an array of shape {X.shape}."
        )
    n_sequences, n_steps, n_features = X.shape
    if n_steps == 0 or n_features == 0:
        raise ValueError(
            f"{name} has shape {X.shape}: every sequence needs at least one step and one feature."
        )
    if not np.isnan(X.min()):  # min() is NaN if any value is, with no mask allocated
        lengths = np.full(n_sequences, n_steps, dtype=np.intp)
        return np.ascontiguousarray(X), lengths
    nan = np.isnan(X)
    lengths = _nan_padding_lengths(nan, name)
    data = np.array(X, order="C")  # a copy: never write to the user's X
    data[nan] = 0
    return data, lengths


def _nan_padding_lengths(nan, name):
    """Lengths of NaN-padded sequences; ``nan`` is the (N, T, F) NaN mask."""
    padding = nan.all(axis=2)
    partial = nan.any(axis=2) & ~padding
    if partial.any():
        i, t = np.argwhere(partial)[0]
        raise ValueError(
            f"{name} contains NaN in sequence {i} at step {t} where other features are "
            "not NaN. NaN marks padding only when a whole step is NaN at the end of a "
            "sequence; impute missing values before fitting."
        )
    n_steps = padding.shape[1]
    steps = ~padding
    # Length = one past the last real step; every step before it must be real.
    lengths = n_steps - np.argmax(steps[:, ::-1], axis=1)
    empty = ~steps.any(axis=1)
    if empty.any():
        raise ValueError(
            f"{name} sequence {np.flatnonzero(empty)[0]} is all NaN: every sequence "
            "needs at least one step."
        )
    gaps = steps.sum(axis=1) != lengths
    if gaps.any():
        i = np.flatnonzero(gaps)[0]
        t = np.flatnonzero(padding[i, : lengths[i]])[0]
        raise ValueError(
            f"{name} contains NaN in sequence {i} at step {t}, before later non-NaN steps. "
            "NaN steps are accepted only as trailing padding; impute missing values "
            "before fitting."
        )
    return lengths.astype(np.intp)


def _check_ragged(X, dtype, name):
    arrays = []
    n_features = None
    for i, item in enumerate(X):
        try:
            a = np.asarray(item)
            if a.dtype.kind == "c":  # converting would silently drop the imaginary parts
                raise ValueError("complex data is not supported")
            a = a.astype(dtype, copy=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name}[{i}] could not be converted to {np.dtype(dtype).name}: {exc}"
            ) from exc
        if a.ndim == 1:
            a = a[:, np.newaxis]
        elif a.ndim != 2:
            raise ValueError(
                f"{name}[{i}] has shape {a.shape}; each sequence must be 2D "
                "(n_steps, n_features) or 1D (n_steps,)."
            )
        if a.shape[0] == 0:
            raise ValueError(f"{name}[{i}] is an empty sequence: it needs at least one step.")
        if n_features is None:
            n_features = a.shape[1]
        elif a.shape[1] != n_features:
            raise ValueError(
                f"{name}[{i}] has {a.shape[1]} features but {name}[0] has {n_features}; "
                "all sequences need the same number of features."
            )
        finite = np.isfinite(a)
        if not finite.all():
            t = np.flatnonzero(~finite.all(axis=1))[0]
            raise ValueError(
                f"{name}[{i}] contains NaN or infinity at step {t}. Sequences given as a list "
                "need no padding; impute missing values before fitting."
            )
        arrays.append(a)
    if n_features == 0:
        raise ValueError(f"{name} has 0 features: every step needs at least one feature.")
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.intp)
    data = np.zeros((len(arrays), lengths.max(), n_features), dtype=dtype)
    for i, a in enumerate(arrays):
        data[i, : a.shape[0]] = a
    return data, lengths


def check_vectors(X, *, dtype, name="X"):
    """Validate 2D input ``(n_sequences, n_features)`` for the vector-to-sequence pattern."""
    _check_not_empty_or_1d(X, name, vectors=True)
    if is_ragged(X) or np.ndim(X) > 2:
        shape = "a list of sequences" if is_ragged(X) else f"shape {np.shape(X)}"
        raise ValueError(
            f"pattern='vec2seq' takes one vector per sequence, {name} of shape (n_sequences, "
            f"n_features), fed at every step; got {shape}. For input sequences, use "
            "pattern='seq2seq' (a target at every input step) or 'encdec' (target sequences "
            "of other lengths)."
        )
    return check_array(X, dtype=dtype, input_name=name)


def pad_targets(y, n_sequences, *, lengths=None, nan_padding=False):
    """Read per-step targets into a batch-major padded array.

    Parameters
    ----------
    y : array-like of shape (n_sequences, n_steps) or \
            (n_sequences, n_steps, n_targets), or list of array-like
        One target (or target vector) per step. A list holds one sequence per
        item, of shape ``(n_steps_i,)`` or ``(n_steps_i, n_targets)``.
    n_sequences : int
        The number of input sequences that ``y`` must match.
    lengths : ndarray of shape (n_sequences,), default=None
        If given, every target sequence must have exactly these lengths (the
        sequence-to-sequence pattern); steps of an array ``y`` past them are
        ignored. If None, the lengths come from ``y`` itself.
    nan_padding : bool, default=False
        Whether trailing all-NaN steps of an array ``y`` are padding (numeric
        targets; labels cannot be NaN-padded).

    Returns
    -------
    values : ndarray of shape (n_sequences, n_steps_max) or \
            (n_sequences, n_steps_max, n_targets)
        ``y`` padded with copies of its first step past each length; only the
        steps before ``lengths[i]`` are meaningful.
    lengths : ndarray of shape (n_sequences,), dtype intp
    """
    y = as_sequence_list(y)
    if is_ragged(y):
        items = [np.asarray(item) for item in y]
    else:
        y = np.asarray(y)
        if y.ndim not in (2, 3):
            raise ValueError(
                "Per-step targets y must be 2D (n_sequences, n_steps), 3D (n_sequences, "
                f"n_steps, n_targets) or a list of sequences; got shape {y.shape}."
            )
        items = None
    n_y = len(items) if items is not None else y.shape[0]
    if n_y != n_sequences:
        raise ValueError(f"y holds {n_y} sequences but X holds {n_sequences}; they must match.")
    if items is None:
        return _pad_array_targets(y, lengths, nan_padding)
    return _pad_ragged_targets(items, lengths)


def _pad_array_targets(y, lengths, nan_padding):
    n_sequences, n_steps = y.shape[:2]
    if n_steps == 0:
        raise ValueError(f"y has shape {y.shape}: target sequences need at least one step.")
    if lengths is not None:
        if n_steps != lengths.max():
            raise ValueError(
                f"y has {n_steps} steps per sequence but X has {lengths.max()}; per-step "
                "targets need one target for every step of X."
            )
        return y, lengths
    if nan_padding and y.dtype.kind == "f":
        nan = np.isnan(y)
        if nan.any():
            mask = nan if y.ndim == 3 else nan[:, :, np.newaxis]
            return y, _nan_padding_lengths(mask, "y")
    return y, np.full(n_sequences, n_steps, dtype=np.intp)


def _pad_ragged_targets(items, lengths):
    tails = {item.shape[1:] for item in items}
    if len(tails) > 1 or any(item.ndim not in (1, 2) for item in items):
        raise ValueError(
            "Each target sequence in a list y must be 1D (n_steps_i,) or 2D "
            "(n_steps_i, n_targets) with the same n_targets; got shapes "
            f"{sorted({item.shape for item in items})[:4]}."
        )
    y_lengths = np.array([item.shape[0] for item in items], dtype=np.intp)
    if (y_lengths == 0).any():
        raise ValueError(
            f"y[{np.flatnonzero(y_lengths == 0)[0]}] is an empty sequence: target "
            "sequences need at least one step."
        )
    if lengths is not None and (y_lengths != lengths).any():
        i = np.flatnonzero(y_lengths != lengths)[0]
        raise ValueError(
            f"y[{i}] has {y_lengths[i]} steps but X[{i}] has {lengths[i]}; per-step targets "
            "need one target for every step (use pattern='encdec' for target sequences of "
            "other lengths)."
        )
    flat = np.concatenate(items)
    values = np.empty((len(items), y_lengths.max()) + flat.shape[1:], dtype=flat.dtype)
    values[:] = flat[:1]
    values[np.arange(values.shape[1]) < y_lengths[:, np.newaxis]] = flat
    return values, y_lengths


def is_step_weights(sample_weight):
    """Whether ``sample_weight`` holds one weight per step (2D, or a list of sequences)
    rather than one per sequence."""
    if sample_weight is None:
        return False
    sample_weight = as_sequence_list(sample_weight)
    return is_ragged(sample_weight) or np.asarray(sample_weight).ndim == 2


def check_step_weights(sample_weight, lengths, dtype=np.float64):
    """Validate per-step sample weights against the target lengths.

    Parameters
    ----------
    sample_weight : array-like of shape (n_sequences, n_steps), or list of array-like
        One weight per target step: an array as wide as the longest target sequence
        (entries past each sequence's length are ignored), or one 1D array per sequence.
    lengths : ndarray of shape (n_sequences,)
        The lengths of the target sequences.
    dtype : numpy dtype, default=np.float64

    Returns
    -------
    weights : ndarray of shape (n_sequences, n_steps)
        Zero past each length.
    """
    n, n_steps = len(lengths), int(lengths.max())
    expected = f"(n_sequences, n_steps) = ({n}, {n_steps}), or one 1D array per sequence"
    sample_weight = as_sequence_list(sample_weight)
    if isinstance(sample_weight, (list, tuple)):
        if len(sample_weight) != n or any(np.ndim(w) != 1 for w in sample_weight):
            raise ValueError(f"Per-step sample_weight must have shape {expected}.")
        sizes = np.array([len(w) for w in sample_weight])
        if (sizes != lengths).any():
            i = np.flatnonzero(sizes != lengths)[0]
            raise ValueError(
                f"sample_weight[{i}] has {sizes[i]} weights but target sequence {i} has "
                f"{lengths[i]} steps; per-step weights need one weight for every step."
            )
        weights = np.zeros((n, n_steps), dtype=dtype)
        for i, w in enumerate(sample_weight):
            weights[i, : len(w)] = w
    else:
        weights = np.array(sample_weight, dtype=dtype)
        if weights.shape != (n, n_steps):
            raise ValueError(
                f"sample_weight has shape {weights.shape}; per-step weights need shape "
                f"{expected}; per-sequence weights shape ({n},)."
            )
    real = np.arange(n_steps) < lengths[:, np.newaxis]
    if not (np.isfinite(weights[real]).all() and (weights[real] >= 0).all()):
        raise ValueError("sample_weight must be finite and non-negative at every real step.")
    weights[~real] = 0
    return weights


def unpad(values, lengths):
    """Turn time-major padded outputs into the user's batch-major form.

    Parameters
    ----------
    values : ndarray of shape (n_steps, n_sequences, ...)
    lengths : ndarray of shape (n_sequences,)

    Returns
    -------
    ndarray of shape (n_sequences, n_steps, ...) or list of ndarray
        An array when every sequence has ``n_steps`` steps, else a list with
        one array ``(lengths[i], ...)`` per sequence.
    """
    batch_major = values.swapaxes(0, 1)
    if (lengths == values.shape[0]).all():
        return np.ascontiguousarray(batch_major)
    return [batch_major[i, :n].copy() for i, n in enumerate(lengths)]
