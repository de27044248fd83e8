"""Sequences larger than memory: arrays read one chunk of sequences at a time.

A 3D dask array, zarr array or HDF5 dataset ``(n_sequences, n_steps, n_features)`` is not
read into memory by ``fit``, ``partial_fit`` or ``predict``: they read it one chunk of
sequences (a block along the first axis) at a time. Training visits the chunks in a
random order and the sequences of each chunk in a random order, so that at most two
chunks (the one a minibatch ends in and the one it started in) are in memory at once.
NumPy memmaps need none of this: they are ndarrays and page in what a minibatch touches.
"""

import itertools

import numpy as np

from ._data import TrainingData, check_sequences
from .preprocessing import combine_moments, sequence_moments

__all__ = ["ChunkedSequences", "ChunkedTrainingData", "chunk_bounds", "is_chunked"]

# Rows per chunk for arrays that do not say (an unchunked HDF5 dataset): ~64 MB of float64.
_DEFAULT_CHUNK_VALUES = 1 << 23


def is_chunked(X):
    """Whether ``X`` is an array read by chunks (dask, zarr, HDF5), not an ndarray or list."""
    return (
        not isinstance(X, (np.ndarray, list, tuple))
        and hasattr(X, "chunks")
        and getattr(X, "ndim", None) in (2, 3)
    )


def chunk_bounds(X):
    """Start and end of every chunk of sequences of ``X``, an array of ``n_chunks + 1`` ints."""
    n = X.shape[0]
    chunks = X.chunks
    if chunks and isinstance(chunks[0], tuple):  # dask: the size of every block
        sizes = chunks[0]
        if any(np.isnan(s) for s in sizes):
            raise ValueError("X has chunks of unknown size; call X.compute_chunk_sizes() first.")
        return np.cumsum([0, *sizes]).astype(np.intp)
    step = chunks[0] if chunks else max(1, _DEFAULT_CHUNK_VALUES // max(1, np.prod(X.shape[1:])))
    return np.append(np.arange(0, n, step), n).astype(np.intp)


def read_chunk(X, start, stop, dtype):
    """Validated sequences ``start:stop`` of ``X``: ``(data, lengths)`` as check_sequences."""
    return check_sequences(np.asarray(X[start:stop]), dtype=dtype)


class ChunkedSequences:
    """Input sequences of a chunked array, validated in one pass and read back by chunks.

    Parameters
    ----------
    X : array of shape (n_sequences, n_steps, n_features) or (n_sequences, n_steps)
        A dask array, zarr array or HDF5 dataset; NaN-padded as ``fit`` reads arrays.
    dtype : numpy dtype
        The floating dtype of the sequences as the kernels take them.

    Attributes
    ----------
    lengths : ndarray of shape (n_sequences,)
        The length of every sequence (read in the validation pass).
    shape : tuple of int
        ``(n_sequences, n_steps, n_features)``, as the kernels see it.
    moments : tuple
        ``(n, mean, var)`` of each feature over every real step (see
        :func:`crnn.preprocessing.sequence_moments`), gathered in the validation pass.
    standardize : callable or None
        Applied to each chunk read, ``standardize(data, lengths)`` (the estimator's input
        scaling); None reads the sequences as they are.
    """

    def __init__(self, X, dtype):
        self.X, self.dtype = X, dtype
        self.bounds = chunk_bounds(X)
        lengths = []
        self.moments = None
        for start, stop in itertools.pairwise(self.bounds):
            data, chunk_lengths = read_chunk(X, start, stop, dtype)
            lengths.append(chunk_lengths)
            part = sequence_moments(data, chunk_lengths)
            self.moments = part if self.moments is None else combine_moments(*self.moments, *part)
        self.lengths = np.concatenate(lengths)
        self.shape = (len(self.lengths), *data.shape[1:])
        self.standardize = None
        self._cache = {}

    def __len__(self):
        return len(self.lengths)

    def permutation(self, rng):
        """An epoch's order: the chunks shuffled, and the sequences within each chunk."""
        order = [
            rng.permutation(np.arange(self.bounds[c], self.bounds[c + 1]))
            for c in rng.permutation(len(self.bounds) - 1)
        ]
        return np.concatenate(order)

    def rows(self, idx):
        """Sequences ``idx`` ``(len(idx), n_steps, n_features)``, reading the chunks they are in.

        The chunks are kept until a later call needs others: a minibatch of an epoch's
        order (:meth:`permutation`) reads each chunk once.
        """
        chunk_of = np.searchsorted(self.bounds, idx, side="right") - 1
        needed = np.unique(chunk_of)
        cache = {c: self._cache[c] for c in needed if c in self._cache}
        for c in needed:
            if c not in cache:
                data, lengths = read_chunk(self.X, self.bounds[c], self.bounds[c + 1], self.dtype)
                cache[c] = data if self.standardize is None else self.standardize(data, lengths)
        self._cache = cache
        first = cache[needed[0]]
        out = np.empty((len(idx), *first.shape[1:]), dtype=first.dtype)
        for c in needed:
            mask = chunk_of == c
            out[mask] = cache[c][idx[mask] - self.bounds[c]]
        return out


class ChunkedTrainingData(TrainingData):
    """The training loop's data (:class:`crnn._data.TrainingData`) over a chunked array.

    ``x`` is a :class:`ChunkedSequences`; targets and weights are in memory. Shuffled
    epochs visit the chunks in a random order and the sequences of each chunk in a random
    order, so that a minibatch reads at most one chunk that the previous one did not.
    """

    def permutation(self, rng):
        """An epoch's order: the chunks shuffled, and the sequences within each chunk."""
        return self.x.permutation(rng)

    def take(self, idx, time_major=False):
        """The sequences ``idx`` as in-memory :class:`TrainingData` (see its ``take``)."""
        x, x_lengths = self.x.rows(idx), self.x_lengths[idx]
        if self.y_lengths is None:
            part = TrainingData(x, x_lengths, self.y[idx], None, self.weights[idx])
        else:
            part = TrainingData(
                x, x_lengths, self.y[:, idx], self.y_lengths[idx], self.weights[:, idx]
            )
        return part.take(np.arange(len(idx)), time_major)
