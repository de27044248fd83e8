"""The machinery shared by RNNClassifier and RNNRegressor.

A fitted estimator is one flat parameter array, ``params_``, cut into views
(all of them, recurrent layers and output layer, trained by one optimizer
update per minibatch)::

    params_ = [ encoder | decoder (pattern "encdec" only) | W_out | b_out ]

The encoder is a stack of recurrent layers (see :mod:`crnn.functional`) with
``output_size = num_directions * hidden_layer_sizes[-1]`` features; the output
layer is dense, ``W_out`` of shape ``(output_size, n_outputs_)``. What feeds it
depends on the pattern:

=========  =============================================================
seq2vec    the last layer's final state: the state after each sequence's
           own last step, ``[forward | reverse]`` when bidirectional
seq2seq    the last layer's output at every step
vec2seq    the same, the input vector being fed at every step
encdec     a decoder's output at every step. The decoder is a one-way
           stack with ``num_directions * hidden_layer_sizes[l]`` units per
           layer, started from the encoder's final states; its input is
           the previous target (one-hot for labels) and a start flag:
           the true one while training (teacher forcing), its own
           previous output when predicting.
=========  =============================================================
"""

import threading
import time
import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from threadpoolctl import ThreadpoolController

from . import _kernels
from ._data import check_sequences, check_vectors, is_ragged, pad_targets, unpad
from ._optim import SGD, Adam, clip_by_global_norm
from .functional import RNNLayout, backward, forward, init_params

PATTERNS = ("seq2vec", "seq2seq", "vec2seq", "encdec")
# Prediction runs over chunks of sequences whose largest buffer (steps x batch x gate
# units) stays near this many values, sorted by length so that chunks carry little padding.
_PREDICT_CHUNK_VALUES = 1 << 22
# The most steps the kernels run (they count in C ints).
_MAX_STEPS = 2**31 - 1
# The learning rate below which learning_rate="adaptive" stops instead of dividing it again.
_MIN_LEARNING_RATE = 1e-6


class _SerialBlas:
    """A context in which BLAS runs on one thread, safe to enter from several threads.

    The GEMMs of a recurrent step are small (batch x hidden x gates): a second BLAS
    thread gains at most ~1.3x on them, while on a loaded machine its synchronisation
    made training 4-7x slower (measured on 2 vCPUs). scikit-learn's KMeans limits BLAS
    the same way around its own loops.

    The limit is process-wide, so overlapping calls in threads share it: the first to
    enter sets it, the last to leave restores what the first found. (One threadpoolctl
    limit per call would let a later call save the 1 an earlier one set, and restore it.)
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._limiter = None
        self._controller = None  # found on first use: scanning the libraries takes ~10 ms

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1

    def __exit__(self, *exc_info):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


_serial_blas_context = _SerialBlas()


def _serial_blas():
    """The process-wide one-BLAS-thread context (see :class:`_SerialBlas`)."""
    return _serial_blas_context


class _Network:
    """The layouts of a fitted estimator and the slices of its flat parameter array."""

    def __init__(self, encoder, decoder, n_outputs):
        self.encoder, self.decoder, self.n_outputs = encoder, decoder, n_outputs
        width = encoder.output_size
        sizes = [encoder.n_params, decoder.n_params if decoder else 0, width * n_outputs]
        self.bounds = np.cumsum([0, *sizes, n_outputs])
        self.n_params = int(self.bounds[-1])
        self.head_shape = (width, n_outputs)

    def split(self, flat):
        """Views ``(encoder, decoder, W_out, b_out)`` into a flat array."""
        enc, dec, W, b = (flat[lo:hi] for lo, hi in zip(self.bounds[:-1], self.bounds[1:]))
        return enc, dec, W.reshape(self.head_shape), b

    def weight_mask(self, dtype):
        """1 for weights, 0 for biases: the entries the L2 penalty applies to."""
        mask = np.ones(self.n_params, dtype=dtype)
        enc, dec, _, b = self.split(mask)
        for layout, flat in ((self.encoder, enc), (self.decoder, dec)):
            if layout is None:
                continue
            for directions in layout.views(flat):
                for v in directions:
                    v["b"][:] = 0
                    if "b_hn" in v:
                        v["b_hn"][:] = 0
        b[:] = 0
        return mask


class _Data:
    """Validated training data, with one weight per target position.

    ``x`` is ``(N, T, F)`` with ``x_lengths`` (``(N, F)`` vectors and None for vec2seq);
    ``y`` is ``(N,)`` codes or ``(N, k)`` values for seq2vec, else time-major ``(T_y, N)``
    codes or ``(T_y, N, k)`` values with ``y_lengths``; ``weights`` has the shape of the
    positions (``(N,)`` or ``(T_y, N)``) and is zero at padded steps.
    """

    def __init__(self, x, x_lengths, y, y_lengths, weights):
        self.x, self.x_lengths = x, x_lengths
        self.y, self.y_lengths, self.weights = y, y_lengths, weights

    def __len__(self):
        return len(self.x_lengths if self.x_lengths is not None else self.y_lengths)

    def take(self, idx, time_major=False):
        """The sequences ``idx``, sorted by decreasing length and trimmed to the longest.

        Sorted lengths let the kernels run without reordering copies. With ``time_major``
        (a minibatch), sequences come out ``(steps, len(idx), F)``, as the kernels take them.
        """
        key = self.x_lengths if self.x_lengths is not None else self.y_lengths
        idx = idx[np.argsort(-key[idx], kind="stable")]
        if self.x_lengths is None:
            x, x_lengths = self.x[idx], None
        else:
            x_lengths = self.x_lengths[idx]
            if time_major:
                x = _time_major(self.x, idx, x_lengths[0])
            else:
                x = self.x[idx, : x_lengths[0]]
        if self.y_lengths is None:
            return _Data(x, x_lengths, self.y[idx], None, self.weights[idx])
        y_lengths = self.y_lengths[idx]
        steps = y_lengths.max()
        return _Data(x, x_lengths, self.y[:steps, idx], y_lengths, self.weights[:steps, idx])


def _time_major(x, idx, steps):
    """Sequences ``idx`` of batch-major C-contiguous ``x`` ``(N, T, F)``, their first
    ``steps`` steps, as a C-contiguous time-major ``(steps, len(idx), F)`` array."""
    out = np.empty((steps, len(idx), x.shape[2]), dtype=x.dtype)
    _kernels.gather_steps(x, np.asarray(idx, dtype=np.intp), out)
    return out


def _final_features(h_n):
    """The last layer's final state ``(num_directions, B, H)`` as ``(B, num_directions * H)``."""
    last = h_n[-1]
    return last[0] if len(last) == 1 else np.concatenate(last, axis=1)


def _split_directions(d, num_directions):
    """Inverse of ``_final_features`` for one layer: ``(B, D * H)`` to ``(D, B, H)``."""
    return np.ascontiguousarray(d.reshape(len(d), num_directions, -1).transpose(1, 0, 2))


def _bridge(states):
    """Encoder final states (per layer ``(D, B, H)``) as decoder initial states ``(1, B, D*H)``."""
    if states is None:
        return None
    return [np.concatenate(s, axis=1)[np.newaxis] for s in states]


def _unbridge(dstates, num_directions):
    """Gradients of the decoder initial states as gradients of the encoder final states."""
    if dstates is None:
        return None
    return [_split_directions(d[0], num_directions) for d in dstates]


def infer_pattern(y, x_lengths):
    """The pattern that ``pattern="auto"`` reads from the targets and the input lengths.

    ``n_steps`` is the number of steps of X (of its longest sequence):

    ==================================================  =========
    y                                                    pattern
    ==================================================  =========
    1D ``(n_sequences,)``                                seq2vec
    2D ``(n_sequences, m)``, ``m != n_steps``            seq2vec
    2D ``(n_sequences, n_steps)``                        seq2seq
    3D ``(n_sequences, n_steps, m)``                     seq2seq
    3D ``(n_sequences, t, m)``, ``t != n_steps``         encdec
    list of sequences as long as those of X              seq2seq
    list of sequences of other lengths                   encdec
    ==================================================  =========

    vec2seq is never inferred (its 2D X would read as univariate sequences).
    """
    n_steps = x_lengths.max()
    if is_ragged(y):
        y_lengths = [np.shape(item)[0] for item in y]
        return "seq2seq" if np.array_equal(y_lengths, x_lengths) else "encdec"
    shape = np.asarray(y).shape
    if len(shape) <= 1:
        return "seq2vec"
    if len(shape) == 2:
        return "seq2seq" if shape[1] == n_steps else "seq2vec"
    return "seq2seq" if shape[1] == n_steps else "encdec"


class _Diverged(Exception):
    """The loss or the gradient of a minibatch is not finite."""


class BaseRNN(BaseEstimator, ABC):
    """Base class of the recurrent estimators.

    Do not use it directly: use :class:`crnn.RNNClassifier` or
    :class:`crnn.RNNRegressor`, whose docstrings describe the parameters.
    """

    _parameter_constraints: dict = {
        "pattern": [StrOptions({"auto", *PATTERNS})],
        "cell": [StrOptions({"rnn", "lstm", "gru"})],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "nonlinearity": [StrOptions({"tanh", "relu"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "solver": [StrOptions({"adam", "sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "truncate_bptt": [Interval(Integral, 1, None, closed="left"), None],
        "dtype": [StrOptions({"float32", "float64"})],
        "n_jobs": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Integral, None, -1, closed="right"),
            None,
        ],
    }

    @abstractmethod
    def __init__(
        self,
        *,
        pattern,
        cell,
        hidden_layer_sizes,
        bidirectional,
        nonlinearity,
        dropout,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        clip_norm,
        truncate_bptt,
        dtype,
        n_jobs,
    ):
        self.pattern = pattern
        self.cell = cell
        self.hidden_layer_sizes = hidden_layer_sizes
        self.bidirectional = bidirectional
        self.nonlinearity = nonlinearity
        self.dropout = dropout
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.clip_norm = clip_norm
        self.truncate_bptt = truncate_bptt
        self.dtype = dtype
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------- targets (subclasses)

    @abstractmethod
    def _encode_vector_targets(self, y, n_sequences, reset, classes):
        """Validate seq2vec targets: ``(N,)`` class codes or ``(N, k)`` values."""

    @abstractmethod
    def _encode_step_targets(self, values, mask, reset, classes):
        """Validate per-step targets, time-major ``(T, N, ...)``, meaningful where ``mask``."""

    @abstractmethod
    def _target_weights(self, y, mask):
        """Per-position weights of the targets (class weights), or None."""

    @abstractmethod
    def _loss(self, outputs, y, weights):
        """``(loss, doutputs)`` for outputs ``(M, k)``, targets ``(M, ...)``, weights ``(M,)``."""

    @abstractmethod
    def _score_positions(self, outputs, y, weights):
        """The score (accuracy or R^2) of outputs ``(M, k)`` against encoded targets."""

    @abstractmethod
    def _decoder_input(self, y):
        """Targets ``(T, N, ...)`` as decoder input vectors ``(T, N, n_outputs_)``."""

    @abstractmethod
    def _feedback(self, outputs):
        """Outputs ``(N, k)`` of one decoder step as the input of the next one."""

    @abstractmethod
    def _predictions(self, outputs):
        """Outputs ``(..., k)`` as what ``predict`` returns (labels, or float64 values)."""

    # ----------------------------------------------------------------- validation

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not sizes or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a non-empty sequence of "
                f"positive ints (one per stacked layer), got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(h) for h in sizes)

    def _network(self):
        """The fitted network's layouts, from the hyper-parameters and fitted attributes."""
        hidden = self._hidden_sizes()
        encoder = RNNLayout(
            self.cell, self.n_features_in_, hidden, self.bidirectional, self.nonlinearity
        )
        decoder = None
        if self.pattern_ == "encdec":
            decoder = RNNLayout(
                self.cell,
                self.n_outputs_ + 1,
                tuple(encoder.num_directions * h for h in hidden),
                False,
                self.nonlinearity,
            )
        return _Network(encoder, decoder, self.n_outputs_)

    def _check_n_features(self, n_features, reset):
        if reset:
            self.n_features_in_ = n_features
        elif n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _compute_dtype(self, reset):
        return np.dtype(self.dtype) if reset else self.params_.dtype

    def _validate_inputs(self, X, pattern, reset):
        """``(x, lengths)``: sequences ``(N, T, F)`` and lengths, or vectors ``(N, F)`` and None."""
        dtype = self._compute_dtype(reset)
        if pattern == "vec2seq":
            x, lengths = check_vectors(X, dtype=dtype), None
        else:
            x, lengths = check_sequences(X, dtype=dtype)
        self._check_n_features(x.shape[-1], reset)
        return x, lengths

    def _validate_data(self, X, y, sample_weight, reset, classes=None):
        """Validate training data; returns the pattern and the :class:`_Data`."""
        pattern = self.pattern if reset else self.pattern_
        x, x_lengths = self._validate_inputs(X, pattern, reset)
        if pattern == "auto":
            pattern = infer_pattern(y, x_lengths)
        n = len(x) if x_lengths is None else len(x_lengths)
        sample_weight = _check_sample_weight(
            sample_weight, np.empty((n, 0)), dtype=x.dtype, ensure_non_negative=True
        )
        if pattern == "seq2vec":
            y = self._encode_vector_targets(y, n, reset, classes)
            weights, mask, y_lengths = sample_weight, None, None
        else:
            values, y_lengths = pad_targets(
                y,
                n,
                lengths=x_lengths if pattern == "seq2seq" else None,
                nan_padding=not self._is_classifier,
            )
            mask = np.arange(values.shape[1])[:, np.newaxis] < y_lengths
            y = self._encode_step_targets(values.swapaxes(0, 1), mask, reset, classes)
            weights = mask * sample_weight
        target_weights = self._target_weights(y, mask)
        if target_weights is not None:
            weights = weights * target_weights
        if not weights.sum() > 0:
            raise ValueError(
                "The sample weights sum to zero: at least one sequence needs a positive weight."
            )
        weights = weights.astype(x.dtype, copy=False)
        return pattern, _Data(x, x_lengths, y, y_lengths, weights)

    # ----------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to sequences X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_steps, n_features) or \\
                (n_sequences, n_steps), or list of array-like of shape \\
                (n_steps_i, n_features)
            The input sequences, in any form the class docstring describes; for
            ``pattern="vec2seq"``, vectors of shape ``(n_sequences, n_features)``.
        y : array-like or list of array-like
            The targets; with ``pattern="auto"`` their shape picks the pattern
            (see the table in the class docstring).
        sample_weight : array-like of shape (n_sequences,), default=None
            Weight of each sequence in the loss (of each of its steps for the
            per-step patterns). None gives every sequence weight 1.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True.")
        self._hidden_sizes()
        reset = not hasattr(self, "params_") or (not self.warm_start and not incremental)
        if not reset and self.pattern not in ("auto", self.pattern_):
            raise ValueError(
                f"pattern={self.pattern!r} differs from the fitted pattern {self.pattern_!r}; "
                "set warm_start=False (or create a new estimator) to fit another pattern."
            )
        pattern, data = self._validate_data(X, y, sample_weight, reset, classes)
        self._random_state = check_random_state(self.random_state)
        if reset:
            self.pattern_ = pattern
            self.n_steps_out_ = (
                int(data.y_lengths.max()) if pattern in ("vec2seq", "encdec") else None
            )
            network = self._network()
            with _serial_blas():  # the orthogonal init's QR, too, is small work for threads
                self._initialize(network)
        else:
            network = self._network()
            self._check_fitted_network(network)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if incremental:
            with _serial_blas():
                self._train(network, data, None, epochs=1, incremental=True)
            return self
        train, validation = data, None
        if self.early_stopping:
            train, validation = self._split_validation(data)
        self.n_iter_ = 0
        self.best_loss_ = np.inf
        self._no_improvement_count = 0
        with _serial_blas():
            self._train(network, train, validation, epochs=self.max_iter, incremental=False)
        return self

    def _initialize(self, network):
        """Fresh parameters and fitted attributes (first fit, or fit without warm_start)."""
        rng = self._random_state
        dtype = np.dtype(self.dtype)
        params = np.empty(network.n_params, dtype=dtype)
        enc, dec, W, b = network.split(params)
        enc[:] = init_params(network.encoder, random_state=rng, dtype=dtype)
        if network.decoder is not None:
            dec[:] = init_params(network.decoder, random_state=rng, dtype=dtype)
        fan_in, fan_out = network.head_shape
        bound = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, as MLPClassifier
        W[:] = rng.uniform(-bound, bound, size=W.shape)
        b[:] = 0
        self.params_ = params
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_ = None
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.validation_loss_curve_ = [] if self.early_stopping else None
        self.best_validation_score_ = None
        self._no_improvement_count = 0
        self.__dict__.pop("_optimizer", None)

    def _check_fitted_network(self, network):
        if self.params_.shape != (network.n_params,):
            raise ValueError(
                f"The fitted parameters ({self.params_.size} values) do not match the current "
                f"hyper-parameters ({network.n_params} values). warm_start and partial_fit "
                "need the architecture of the first fit; set warm_start=False to start over."
            )
        if self.params_.dtype != np.dtype(self.dtype):
            self.params_ = self.params_.astype(self.dtype)
            self.__dict__.pop("_optimizer", None)

    def _make_optimizer(self):
        if self.solver == "sgd":
            return SGD(
                self.params_, self.learning_rate_init, self.momentum, self.nesterovs_momentum
            )
        return Adam(self.params_, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _split_validation(self, data):
        n = len(data)
        stratify = data.y if self._is_classifier and self.pattern_ == "seq2vec" else None
        train_idx, val_idx = train_test_split(
            np.arange(n),
            test_size=self.validation_fraction,
            random_state=self._random_state,
            stratify=stratify,
        )
        if len(val_idx) < 2:
            raise ValueError(
                f"The validation set is too small ({len(val_idx)} of {n} sequences). "
                "Increase validation_fraction or the number of sequences, or set "
                "early_stopping=False."
            )
        return data.take(np.sort(train_idx)), data.take(np.sort(val_idx))

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return min(32, n)
        return min(self.batch_size, n)

    def _train(self, network, train, validation, epochs, incremental):
        """Minibatch training for ``epochs`` passes, updating ``params_`` in place.

        Keeps a copy of the weights after each finished epoch: a non-finite loss or
        gradient, or Ctrl-C, falls back to it. With a validation set, the weights of
        the epoch with the lowest validation loss are restored at the end.
        """
        params, rng = self.params_, self._random_state
        grad = np.empty_like(params)
        n = len(train)
        # The L2 penalty of the whole training set, alpha/2 ||W||^2, shared by its n sequences.
        decay = (self.alpha / n) * network.weight_mask(params.dtype) if self.alpha > 0 else None
        batch_size = self._batch_size(n)
        total_weight = float(train.weights.sum())
        last_good = params.copy()
        best = params.copy() if validation is not None else None
        n_threads = effective_n_jobs(self.n_jobs)  # once: joblib takes ~20 us to answer
        epoch = 0
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                for epoch in range(1, epochs + 1):
                    start_time = time.perf_counter()
                    order = rng.permutation(n) if self.shuffle else np.arange(n)
                    epoch_loss = 0.0
                    for start in range(0, n, batch_size):
                        batch = train.take(order[start : start + batch_size], time_major=True)
                        batch_weight = float(batch.weights.sum())
                        if batch_weight == 0:
                            continue
                        loss = self._loss_grad(
                            network, params, grad, batch, batch_weight, n_threads
                        )
                        if decay is not None and np.isfinite(loss):
                            penalty = decay * params
                            grad += penalty
                            loss += 0.5 * float(np.dot(penalty, params))
                        norm = clip_by_global_norm(grad, self.clip_norm)
                        if not (np.isfinite(loss) and np.isfinite(norm)):
                            raise _Diverged
                        self._optimizer.update(params, grad)
                        epoch_loss += loss * batch_weight
                    # An update can overflow the weights although its gradient was finite; the
                    # next minibatch's loss would show it, but the epoch's last has no next.
                    if not np.isfinite(params).all():
                        raise _Diverged
                    last_good[:] = params
                    self.loss_ = epoch_loss / total_weight
                    stop = self._end_epoch(network, n, validation, best, start_time)
                    if stop:
                        break
                    if epoch == epochs and not incremental:
                        warnings.warn(
                            f"Stochastic optimizer: maximum iterations ({epochs}) reached and "
                            "the optimization hasn't converged yet.",
                            ConvergenceWarning,
                        )
        except _Diverged:
            params[:] = last_good
            del self._optimizer  # its moment estimates hold the non-finite values
            warnings.warn(
                f"Training stopped in epoch {epoch}: the loss, its gradient or the weights "
                "became NaN or infinite (the parameters diverged). The weights after the last finished "
                "epoch were kept. Lower learning_rate_init, set clip_norm, or scale X "
                "(and y for regression).",
                ConvergenceWarning,
            )
        except KeyboardInterrupt:
            params[:] = last_good
            warnings.warn(
                f"Training interrupted by the user in epoch {epoch}; the weights after the "
                "last finished epoch were kept.",
                UserWarning,
            )
        if validation is not None and self.best_validation_score_ is not None:
            params[:] = best

    def _end_epoch(self, network, n_train, validation, best, start_time):
        """Record a finished epoch, keep the best weights, adapt the learning rate.

        Returns True when training should stop.
        """
        self.n_iter_ += 1
        self.t_ += n_train
        self.loss_curve_.append(self.loss_)
        message = f"Epoch {len(self.loss_curve_)}, loss = {self.loss_:.6f}"
        monitored = self.loss_
        if validation is not None:
            monitored, score = self._evaluate(network, validation)
            self.validation_loss_curve_.append(monitored)
            self.validation_scores_.append(score)
            message += f", validation loss = {monitored:.6f}, validation score = {score:.6f}"
        if monitored < self.best_loss_ - self.tol:
            self._no_improvement_count = 0
        else:
            self._no_improvement_count += 1
        if monitored < self.best_loss_:
            self.best_loss_ = monitored
            if validation is not None:
                best[:] = self.params_
                self.best_validation_score_ = score
        if self.verbose:
            print(f"{message} ({time.perf_counter() - start_time:.2f} s)")
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        what = "Validation" if validation is not None else "Training"
        reason = (
            f"{what} loss did not improve more than tol={self.tol} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )
        optimizer = self._optimizer
        if self.learning_rate == "adaptive" and optimizer.learning_rate / 5 >= _MIN_LEARNING_RATE:
            optimizer.learning_rate /= 5
            self._no_improvement_count = 0
            if self.verbose:
                print(f"{reason} Setting learning rate to {optimizer.learning_rate:g}.")
            return False
        if self.verbose:
            print(f"{reason} Stopping.")
        return True

    def _loss_grad(self, network, params, grad, batch, batch_weight, n_threads=1):
        """The minibatch loss; fills ``grad`` unless the loss is not finite. ``n_threads``
        goes to the kernels (see ``crnn.functional.forward``)."""
        enc, dec, W, b = network.split(params)
        g_enc, g_dec, gW, gb = network.split(grad)
        weights = batch.weights / batch_weight
        directions = network.encoder.num_directions
        # Inputs were checked at fit; a non-finite loss or gradient is caught by the caller.
        train = dict(dropout=self.dropout, random_state=self._random_state, check_finite=False,
                     n_threads=n_threads)
        # The inputs are data (or teacher-forced targets): no gradient for them.
        bptt = dict(truncate=self.truncate_bptt, check_finite=False, input_grad=False)
        x, lengths = batch.x, batch.x_lengths  # sequences come time-major (take)
        if self.pattern_ == "vec2seq":
            lengths = batch.y_lengths
            x = np.ascontiguousarray(np.broadcast_to(x, (lengths.max(), *x.shape)))
        Y, (h_n, c_n), cache = forward(network.encoder, enc, x, lengths, **train)
        if self.pattern_ == "seq2vec":
            features = _final_features(h_n)
            loss, dout = self._loss(features @ W + b, batch.y, weights)
            if not np.isfinite(loss):
                return loss
            dfeatures = _head_backward(features, dout, W, gW, gb)
            dh_n = [np.zeros_like(h) for h in h_n]
            dh_n[-1] = _split_directions(dfeatures, directions)
            g_enc[:] = backward(cache, None, dh_n, **bptt)[3]
            return loss
        if self.pattern_ == "encdec":
            Y, _, decoder_cache = forward(
                network.decoder,
                dec,
                self._teacher_inputs(batch.y),
                batch.y_lengths,
                _bridge(h_n),
                _bridge(c_n),
                **train,
            )
        loss, dY = self._step_loss(Y, batch.y, weights, W, b, gW, gb)
        if not np.isfinite(loss):
            return loss
        dh_n = dc_n = None
        if self.pattern_ == "encdec":
            _, dh0, dc0, g_dec[:] = backward(decoder_cache, dY, **bptt)
            dY, dh_n, dc_n = None, _unbridge(dh0, directions), _unbridge(dc0, directions)
        g_enc[:] = backward(cache, dY, dh_n, dc_n, **bptt)[3]
        return loss

    def _step_loss(self, Y, y, weights, W, b, gW, gb):
        """Loss of the output layer over every step of ``Y`` ``(T, B, width)``, and dY."""
        steps, batch, width = Y.shape
        hidden = Y.reshape(steps * batch, width)
        loss, dout = self._loss(
            hidden @ W + b, y.reshape(steps * batch, *y.shape[2:]), weights.reshape(-1)
        )
        if not np.isfinite(loss):
            return loss, None
        return loss, _head_backward(hidden, dout, W, gW, gb).reshape(Y.shape)

    def _teacher_inputs(self, y):
        """Decoder inputs for teacher forcing: a start flag, then the previous targets."""
        steps, batch = y.shape[:2]
        k = self.n_outputs_
        inputs = np.zeros((steps, batch, k + 1), dtype=self.params_.dtype)
        inputs[0, :, k] = 1
        inputs[1:, :, :k] = self._decoder_input(y[:-1])
        return inputs

    def _evaluate(self, network, data):
        """Loss and score on validation data, predicting as ``predict`` does."""
        out, _ = self._outputs(network, data.x, data.x_lengths, data.y_lengths)
        k = network.n_outputs
        out = out.reshape(-1, k)
        y = data.y.reshape(len(out), *data.y.shape[data.weights.ndim :])
        weights = data.weights.reshape(-1)
        loss, _ = self._loss(out, y, weights / weights.sum())
        return loss, self._score_positions(out, y, weights)

    # ----------------------------------------------------------------- prediction

    def _outputs(self, network, x, lengths, out_lengths=None, state=None, return_state=False):
        """Output-layer values (before any softmax) for validated input.

        Runs over chunks of sequences sorted by length. Returns ``(outputs, state)``:
        outputs ``(N, k)`` for seq2vec, else time-major ``(T_out, N, k)``; state is the
        final ``(h_n, c_n)`` when ``return_state``, else None.
        """
        enc, dec, W, b = network.split(self.params_)
        encoder = network.encoder
        key = lengths if lengths is not None else out_lengths
        n = len(key)
        order = np.argsort(-key, kind="stable")
        width = encoder.num_directions * encoder.gates * max(encoder.hidden_sizes)
        chunk = int(np.clip(_PREDICT_CHUNK_VALUES // (key.max() * width), 1, n))
        n_threads = effective_n_jobs(self.n_jobs)
        dtype = self.params_.dtype
        if self.pattern_ == "seq2vec":
            out = np.empty((n, network.n_outputs), dtype=dtype)
        else:
            steps = (lengths if self.pattern_ == "seq2seq" else out_lengths).max()
            out = np.zeros((steps, n, network.n_outputs), dtype=dtype)
        final = None
        if return_state:
            final = (
                [np.empty((1, n, h), dtype=dtype) for h in encoder.hidden_sizes],
                [np.empty((1, n, h), dtype=dtype) for h in encoder.hidden_sizes]
                if encoder.cell == "lstm"
                else None,
            )
        for start in range(0, n, chunk):
            idx = order[start : start + chunk]
            if lengths is None:
                chunk_lengths = out_lengths[idx]
                xc = np.broadcast_to(x[idx], (chunk_lengths[0], len(idx), x.shape[1]))
                xc = np.ascontiguousarray(xc)
            else:
                chunk_lengths = lengths[idx]
                xc = _time_major(x, idx, chunk_lengths[0])
            h0 = c0 = None
            if state is not None:
                h0 = [h[:, idx] for h in state[0]]
                c0 = None if state[1] is None else [c[:, idx] for c in state[1]]
            Y, (h_n, c_n), _ = forward(
                encoder, enc, xc, chunk_lengths, h0, c0, keep_cache=False, check_finite=False,
                n_threads=n_threads,
            )
            if self.pattern_ == "seq2vec":
                out[idx] = _final_features(h_n) @ W + b
            elif self.pattern_ == "encdec":
                steps = out_lengths[idx].max()
                out[:steps, idx] = self._decode(network, dec, W, b, h_n, c_n, steps)
            else:
                out[: len(Y), idx] = Y @ W + b
            if final is not None:
                for layer, h in enumerate(h_n):
                    final[0][layer][:, idx] = h
                    if c_n is not None:
                        final[1][layer][:, idx] = c_n[layer]
        return out, final

    def _decode(self, network, dec, W, b, h_n, c_n, steps):
        """Run the decoder on its own outputs for ``steps`` steps from the encoder's state."""
        batch = h_n[0].shape[1]
        k = network.n_outputs
        h, c = _bridge(h_n), _bridge(c_n)
        step_input = np.zeros((1, batch, k + 1), dtype=W.dtype)
        step_input[0, :, k] = 1
        out = np.empty((steps, batch, k), dtype=W.dtype)
        for t in range(steps):
            Y, (h, c), _ = forward(
                network.decoder, dec, step_input, None, h, c, keep_cache=False, check_finite=False
            )
            out[t] = Y[0] @ W + b
            step_input[0, :, :k] = self._feedback(out[t])
            step_input[0, :, k] = 0
        return out

    def _output_lengths(self, n_steps_out, n, lengths):
        """Number of output steps of each sequence (None for seq2vec)."""
        if self.pattern_ in ("seq2vec", "seq2seq"):
            if n_steps_out is not None:
                raise ValueError(
                    f"n_steps_out applies to the vec2seq and encdec patterns, not to "
                    f"{self.pattern_!r}, whose outputs follow the input steps."
                )
            return lengths
        if n_steps_out is None:
            return np.full(n, self.n_steps_out_, dtype=np.intp)
        steps = np.asarray(n_steps_out)
        if steps.ndim == 0:
            steps = np.full(n, steps)
        if steps.shape != (n,) or steps.dtype.kind not in "iu" or (steps < 1).any():
            raise ValueError(
                "n_steps_out must be a positive int or an array of n_sequences="
                f"{n} positive ints, got {n_steps_out!r}."
            )
        if steps.max() > _MAX_STEPS:
            raise ValueError(
                f"n_steps_out must be at most {_MAX_STEPS} (the kernels count steps in C "
                f"ints), got {steps.max()}."
            )
        return steps.astype(np.intp)

    def _check_state(self, state, network, n):
        """Validate an ``initial_state`` returned by ``predict(..., return_state=True)``."""
        encoder = network.encoder
        message = (
            "initial_state must be the state returned by an earlier predict(..., "
            f"return_state=True) of this estimator for {n} sequences"
        )
        if not isinstance(state, tuple) or len(state) != 2:
            raise ValueError(message + ".")
        h, c = state
        if (c is None) != (encoder.cell != "lstm"):
            raise ValueError(message + f" (a {encoder.cell!r} state).")
        checked = []
        for part in (h, c):
            if part is None:
                checked.append(None)
                continue
            if len(part) != encoder.num_layers:
                raise ValueError(message + f" (one array per layer, {encoder.num_layers}).")
            arrays = [np.asarray(a, dtype=self.params_.dtype) for a in part]
            for a, size in zip(arrays, encoder.hidden_sizes):
                if a.shape != (1, n, size):
                    raise ValueError(message + f" (got an array of shape {a.shape}).")
                if not np.isfinite(a).all():
                    raise ValueError("initial_state contains NaN or infinity.")
            checked.append(arrays)
        return tuple(checked)

    def _predict_outputs(self, X, n_steps_out, initial_state, return_state):
        """Validate X and compute ``(outputs, out_lengths, state)`` for the public methods."""
        check_is_fitted(self)
        network = self._network()
        x, lengths = self._validate_inputs(X, self.pattern_, reset=False)
        n = len(x) if lengths is None else len(lengths)
        out_lengths = self._output_lengths(n_steps_out, n, lengths)
        state = None
        if initial_state is not None or return_state:
            if self.pattern_ not in ("seq2vec", "seq2seq") or self.bidirectional:
                raise ValueError(
                    "Streaming prediction (initial_state, return_state) needs a one-way "
                    "(bidirectional=False) seq2vec or seq2seq model; this one is "
                    f"{'bidirectional ' if self.bidirectional else ''}{self.pattern_!r}."
                )
            if initial_state is not None:
                state = self._check_state(initial_state, network, n)
        with _serial_blas():
            out, final = self._outputs(network, x, lengths, out_lengths, state, return_state)
        return out, out_lengths, final

    def _finish(self, values, out_lengths, state, return_state):
        """Per-step outputs back to the user's form, with the state if asked."""
        if self.pattern_ != "seq2vec":
            values = unpad(values, out_lengths)
        return (values, state) if return_state else values

    def _score_steps(self, X, y, sample_weight, metric):
        """``metric`` over every step of per-step targets, each step weighted by its sequence."""
        check_is_fitted(self)
        network = self._network()
        x, lengths = self._validate_inputs(X, self.pattern_, reset=False)
        n = len(x) if lengths is None else len(lengths)
        values, y_lengths = pad_targets(
            y,
            n,
            lengths=lengths if self.pattern_ == "seq2seq" else None,
            nan_padding=not self._is_classifier,
        )
        out_lengths = lengths if self.pattern_ == "seq2seq" else y_lengths
        with _serial_blas():
            out, _ = self._outputs(network, x, lengths, out_lengths)
        mask = np.arange(values.shape[1]) < y_lengths[:, np.newaxis]
        sample_weight = _check_sample_weight(sample_weight, np.empty((n, 0)))
        return metric(
            values[mask],
            self._predictions(out.swapaxes(0, 1)[mask]),
            sample_weight=np.broadcast_to(sample_weight[:, np.newaxis], mask.shape)[mask],
        )

    def __sklearn_is_fitted__(self):
        # A fit that failed validation may have set n_features_in_ or classes_ already.
        return hasattr(self, "params_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def _head_backward(hidden, dout, W, gW, gb):
    """Gradients of the dense output layer ``out = hidden @ W + b``; returns dhidden."""
    np.dot(hidden.T, dout, out=gW)
    # Column sums as a product with ones: NumPy's sum(axis=0) of a tall array with a few
    # columns is up to 20x slower (38 us against 2 for 2560 x 4 float32).
    gb[...] = np.ones(len(dout), dtype=dout.dtype) @ dout
    return dout @ W.T
