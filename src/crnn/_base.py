"""The machinery shared by RNNClassifier and RNNRegressor: parameters and entry points.

:class:`BaseRNN` holds the hyper-parameters, validates input, and wires ``fit``,
``partial_fit`` and prediction to the pieces that do the work, each in its own module:

- :mod:`crnn._patterns`: the sequence pattern (``pattern_``), which lays out targets,
  computes a minibatch's loss and gradient, and predicts; also the flat parameter
  array's layout (:class:`~crnn._patterns.Network`);
- :mod:`crnn._heads`: the output layer (``_head``: softmax or linear), its loss, target
  encoding and predictions;
- :mod:`crnn._training`: the epoch loop, the stopping rule, early stopping, divergence and
  Ctrl-C handling;
- :mod:`crnn.preprocessing`: the input statistics (``scale_inputs``), which
  :meth:`BaseRNN._standardize` applies to every input; the head scales the targets;
- :mod:`crnn._optim`: the optimizers and their learning-rate plateau rule;
- :mod:`crnn._parallel`: the one-BLAS-thread guard.
"""

import itertools
from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_feature_names, _check_sample_weight, check_is_fitted

from ._chunked import ChunkedSequences, ChunkedTrainingData, chunk_bounds, is_chunked
from ._data import TrainingData, check_step_weights, is_step_weights, pad_targets, unpad
from ._heads import init_dense
from ._optim import SGD, Adam
from ._parallel import serial_blas
from ._patterns import PATTERNS, Network, get_pattern, infer_pattern
from ._step import MinibatchStep
from ._stream import PredictionStream
from ._training import Trainer, split_validation, uses_validation
from .functional import READOUTS, RNNLayout, init_params, init_readout_params
from .preprocessing import sequence_moments, standard_scale


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
        "recurrent_dropout": [Interval(Real, 0, 1, closed="left")],
        "input_dropout": [Interval(Real, 0, 1, closed="left")],
        "readout": [StrOptions(set(READOUTS))],
        "pool_steps": [Interval(Integral, 1, None, closed="left"), None],
        "solver": [StrOptions({"adam", "sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, 1, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean", StrOptions({"auto"})],
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
        "scale_inputs": ["boolean"],
        "callback": [callable, None],
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
        recurrent_dropout,
        input_dropout,
        readout,
        pool_steps,
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
        scale_inputs,
        callback,
    ):
        self.pattern = pattern
        self.cell = cell
        self.hidden_layer_sizes = hidden_layer_sizes
        self.bidirectional = bidirectional
        self.nonlinearity = nonlinearity
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.input_dropout = input_dropout
        self.readout = readout
        self.pool_steps = pool_steps
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
        self.scale_inputs = scale_inputs
        self.callback = callback

    # ----------------------------------------------------------------- strategies

    # The output layer: a crnn._heads head, set by each estimator class.
    _head = None

    @property
    def _pattern(self):
        """The fitted pattern's strategy object (looked up from ``pattern_``, so that
        crnn.save and pickle need store only the name)."""
        return get_pattern(self.pattern_)

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
        encoder = RNNLayout(
            self.cell,
            self.n_features_in_,
            self._hidden_sizes(),
            self.bidirectional,
            self.nonlinearity,
        )
        pattern = self._pattern
        decoder = pattern.decoder(encoder, self.n_outputs_)
        if self.pool_steps is not None and not pattern.whole_input:
            raise ValueError(
                f"pool_steps applies to the seq2vec and encdec patterns, whose encoder reads "
                f"the whole input first; the outputs of {pattern.name!r} follow its input "
                "steps. Set pool_steps=None (or shorten X yourself with "
                "crnn.functional.pool_steps)."
            )
        # The readout is seq2vec's; the per-step patterns ignore it.
        readout = "last" if pattern.per_step else self.readout
        return Network(encoder, decoder, self.n_outputs_, readout, self.pool_steps)

    def _check_n_features(self, n_features, reset):
        if reset:
            self.n_features_in_ = n_features
        elif n_features != self.n_features_in_:
            expected = self.n_features_in_
            message = (
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{expected} features as input"
            )
            if self.pattern_ == "vec2seq":
                raise ValueError(f"{message} (the length of each input vector).")
            message += " (the last axis of X: the values of every step)."
            if n_features == 1:
                message += (
                    " A 2D X is read as univariate sequences (n_sequences, n_steps); pass a "
                    f"3D X of shape (n_sequences, n_steps, {expected})."
                )
            elif expected == 1:
                message += (
                    " The model was fitted on univariate sequences: pass a 2D X "
                    "(n_sequences, n_steps) or a 3D X with one feature."
                )
            raise ValueError(message)

    def _compute_dtype(self, reset):
        return np.dtype(self.dtype) if reset else self.params_.dtype

    def _validate_inputs(self, X, pattern, reset):
        """``(x, lengths)`` as ``pattern`` reads X: sequences ``(N, T, F)`` and lengths, or
        vectors ``(N, F)`` and None."""
        # A DataFrame's column names (the steps of 2D univariate X, the features of vec2seq's
        # vectors) are recorded at fit and checked after, as scikit-learn's estimators do.
        _check_feature_names(self, X, reset=reset)
        x, lengths = pattern.check_inputs(X, self._compute_dtype(reset))
        self._check_n_features(x.shape[-1], reset)
        return x, lengths

    def _validate_data(self, X, y, sample_weight, reset, classes=None):
        """Validate training data; returns the pattern's name and the :class:`TrainingData`."""
        name = self.pattern if reset else self.pattern_
        # "auto" reads sequences: vec2seq, whose X holds vectors, is never inferred.
        pattern = get_pattern("seq2seq" if name == "auto" else name)
        if is_chunked(y) or hasattr(y, "__dask_graph__"):
            y = np.asarray(y)  # targets are read whole: they are smaller than X
        if is_chunked(X) and not pattern.vector_input:  # read by chunks (crnn._chunked)
            x = ChunkedSequences(X, self._compute_dtype(reset))
            x_lengths = x.lengths
            self._check_n_features(x.shape[-1], reset)
        else:
            x, x_lengths = self._validate_inputs(X, pattern, reset)
        if name == "auto":
            pattern = get_pattern(infer_pattern(y, x_lengths))
        n = len(x) if x_lengths is None else len(x_lengths)
        if not is_step_weights(sample_weight):
            sample_weight = _check_sample_weight(
                sample_weight, np.empty((n, 0)), dtype=x.dtype, ensure_non_negative=True
            )
        elif not pattern.per_step:
            raise ValueError(
                f"sample_weight has one weight per step, but pattern {pattern.name!r} has one "
                f"target per sequence: pass sample_weight of shape ({n},)."
            )
        y, y_lengths, weights, mask = pattern.targets(
            self, self._head, y, n, x_lengths, sample_weight, reset, classes
        )
        target_weights = self._head.target_weights(self, y, mask)
        if target_weights is not None:
            weights = weights * target_weights
        if not weights.sum() > 0:
            raise ValueError(
                "The sample weights sum to zero: at least one sequence (or step) needs a "
                "positive weight."
            )
        weights = weights.astype(x.dtype, copy=False)
        data = ChunkedTrainingData if isinstance(x, ChunkedSequences) else TrainingData
        return pattern.name, data(x, x_lengths, y, y_lengths, weights)

    # ----------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to sequences X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_steps, n_features) or \
                (n_sequences, n_steps), or list of array-like of shape \
                (n_steps_i, n_features)
            The input sequences, in any form the class docstring describes; for
            ``pattern="vec2seq"``, vectors of shape ``(n_sequences, n_features)``.
        y : array-like or list of array-like
            The targets; with ``pattern="auto"`` their shape picks the pattern
            (see the table in the class docstring).
        sample_weight : array-like of shape (n_sequences,) or (n_sequences, n_steps), \
                default=None
            Weight of each sequence in the loss (of each of its steps for the
            per-step patterns). None gives every sequence weight 1. Per-step
            patterns also take one weight per target step: an array as wide as
            the longest target sequence, or a list of 1D arrays. A step of
            weight zero adds nothing to the loss and, except in encdec (whose
            decoder reads every previous target), its target is not read: it
            may hold anything.

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
        if incremental and uses_validation(self, None):
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
            self.n_steps_out_ = self._pattern.n_steps_out(data.y_lengths)
            network = self._network()
            with serial_blas():  # the orthogonal init's QR, too, is small work for threads
                self._initialize(network)
            self._fit_input_scaling(data)
            self._head.fit_scaling(self, data)
        else:
            network = self._network()
            self._check_fitted_network(network)
        # Training standardizes each minibatch in its compiled step (no copy of X); chunked
        # arrays are standardized as each chunk is read.
        input_scaling = None
        if isinstance(data.x, ChunkedSequences):
            data.x.standardize = self._standardize
        else:
            input_scaling = self._input_scaling(self.params_.dtype)
        self._head.scale_targets(self, data)
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        self._optimizer.schedule = self.learning_rate  # may change between partial_fit calls
        # joblib's effective_n_jobs: ~20 us
        trainer = Trainer(self, network, effective_n_jobs(self.n_jobs), input_scaling)
        if incremental:
            # A loaded model (crnn.load) has no private counters: its stopping rule starts over.
            self.__dict__.setdefault("_no_improvement_count", 0)
            self.__dict__.setdefault("_updates_no_improvement", 0)
            with serial_blas():
                trainer.run(data, None, epochs=1, incremental=True)
            return self
        train, validation = data, None
        validating = uses_validation(self, len(data))
        if validating and isinstance(data, ChunkedTrainingData):
            if self.early_stopping == "auto":
                validating = False  # the split would be read into memory
            else:
                raise ValueError(
                    "early_stopping=True is not supported for chunked arrays (dask, zarr): "
                    "the validation split would be read into memory. Fit with "
                    "early_stopping=False, or call partial_fit per epoch and score a "
                    "validation set yourself."
                )
        self.validation_scores_ = [] if validating else None
        self.validation_loss_curve_ = [] if validating else None
        self.best_validation_score_ = None
        if validating:
            train, validation = split_validation(self, data)
            if input_scaling is not None:  # predicted as predict does, from standardized X
                validation.x = self._standardize(validation.x, validation.x_lengths)
        self.n_iter_ = 0
        self.best_loss_ = np.inf
        self._no_improvement_count = 0
        self._updates_no_improvement = 0
        with serial_blas():
            trainer.run(train, validation, epochs=self.max_iter, incremental=False)
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
        network.readout_params(params)[:] = init_readout_params(
            network.readout, network.encoder.output_size, random_state=rng, dtype=dtype
        )
        init_dense(W, b, rng)
        self.params_ = params
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_ = None
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.validation_scores_ = None
        self.validation_loss_curve_ = None
        self.best_validation_score_ = None
        self._no_improvement_count = 0
        self._updates_no_improvement = 0
        self.__dict__.pop("_optimizer", None)

    def _fit_input_scaling(self, data):
        """``input_mean_`` and ``input_scale_`` from the first fit's inputs (then kept: the
        weights are learned in these units), or None without ``scale_inputs``."""
        self.input_mean_ = self.input_scale_ = None
        if self.scale_inputs:
            x, lengths = data.x, data.x_lengths
            if isinstance(x, ChunkedSequences):
                n, mean, var = x.moments
            else:
                if lengths is None:  # vec2seq: each vector counts as one step
                    x, lengths = x[:, np.newaxis], np.ones(len(x), dtype=np.intp)
                n, mean, var = sequence_moments(x, lengths)
            self.input_mean_, self.input_scale_ = mean, standard_scale(var, mean, n)

    def _input_scaling(self, dtype):
        """``(input_mean_, input_scale_)`` in ``dtype`` for the compiled step, or None
        without ``scale_inputs``."""
        if getattr(self, "input_mean_", None) is None:
            return None
        return self.input_mean_.astype(dtype), self.input_scale_.astype(dtype)

    def _standardize(self, x, lengths):
        """Validated inputs in the network's units: ``(x - input_mean_) / input_scale_`` at
        every real step (padding stays 0); ``x`` itself without ``scale_inputs``."""
        if getattr(self, "input_mean_", None) is None:
            return x
        z = x - self.input_mean_.astype(x.dtype)  # one copy of the data, scaled in place
        z /= self.input_scale_.astype(x.dtype)
        if lengths is not None and (lengths < x.shape[1]).any():
            z[np.arange(x.shape[1]) >= lengths[:, np.newaxis]] = 0
        return z

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

    def _loss_grad(self, network, params, grad, batch, batch_weight, n_threads=1):
        """A minibatch's loss (without the L2 penalty) at ``params``, its inputs as validated
        (standardized here, as in training); fills ``grad`` unless the loss is not finite:
        the compiled step's gradient, without its update (the gradient tests check it
        against finite differences)."""
        step = MinibatchStep(self, network, n_threads, params, self._input_scaling(params.dtype))
        return step.gradient(batch, batch_weight, grad)

    # ----------------------------------------------------------------- prediction

    def _outputs(self, network, x, lengths, out_lengths=None, state=None, return_state=False):
        """Output-layer values for validated input (see ``_Pattern.outputs``)."""
        return self._pattern.outputs(
            network,
            self.params_,
            self._head,
            x,
            lengths,
            out_lengths,
            state,
            return_state,
            n_threads=effective_n_jobs(self.n_jobs),
        )

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
        pattern = self._pattern
        x, lengths = self._validate_inputs(X, pattern, reset=False)
        x = self._standardize(x, lengths)
        n = len(x) if lengths is None else len(lengths)
        out_lengths = pattern.output_lengths(n_steps_out, n, lengths, self.n_steps_out_)
        state = None
        if initial_state is not None or return_state:
            self._check_streamable(network, "Streaming prediction (initial_state, return_state)")
            if initial_state is not None:
                state = self._check_state(initial_state, network, n)
        with serial_blas():
            out, final = self._outputs(network, x, lengths, out_lengths, state, return_state)
        return out, out_lengths, final

    def _predict_chunks(self, method, X, n_steps_out, initial_state, return_state):
        """``method`` on a chunked array: lazily for a dask array (a dask array back, see
        :func:`crnn.dask.predict`), else chunk by chunk into NumPy."""
        if initial_state is not None or return_state:
            raise ValueError(
                "Streaming prediction (initial_state, return_state) needs in-memory arrays, "
                "not a chunked array."
            )
        if hasattr(X, "__dask_graph__"):
            from .dask import predict  # dask is optional: imported only for dask input

            return predict(self, X, method=method, n_steps_out=n_steps_out)
        bounds = chunk_bounds(X)
        parts = [
            getattr(self, method)(np.asarray(X[start:stop]), n_steps_out=n_steps_out)
            for start, stop in itertools.pairwise(bounds)
        ]
        if all(isinstance(p, np.ndarray) and p.shape[1:] == parts[0].shape[1:] for p in parts):
            return np.concatenate(parts)
        return [seq for part in parts for seq in part]  # per-step outputs of varied lengths

    def _check_streamable(self, network, what):
        """Refuse to stream a model whose predictions need more than the steps so far."""
        if not self._pattern.streaming or self.bidirectional:
            raise ValueError(
                f"{what} needs a one-way (bidirectional=False) seq2vec or seq2seq model; "
                f"this one is {'bidirectional ' if self.bidirectional else ''}"
                f"{self.pattern_!r}."
            )
        if network.readout != "last" or network.pool_steps is not None:
            raise ValueError(
                f"{what} carries the final state from one step to the next: it needs "
                f"readout='last' and pool_steps=None; this model has "
                f"readout={network.readout!r}, pool_steps={network.pool_steps!r}."
            )

    def _finish(self, values, out_lengths, state, return_state):
        """Outputs ``(N, ...)`` or time-major per-step ones back to the user's form."""
        if self._pattern.per_step:
            values = unpad(values, out_lengths)
        return (values, state) if return_state else values

    def _predictions(self, outputs):
        """Outputs ``(..., k)`` as what ``predict`` returns (labels, or float64 values)."""
        return self._head.predictions(self, outputs)

    def _scores_per_step(self):
        """Whether ``score`` pools every step (the fitted pattern is per step)."""
        return hasattr(self, "pattern_") and self._pattern.per_step

    def _score_steps(self, X, y, sample_weight, metric):
        """``metric`` over every step of per-step targets, weighted by step or by sequence."""
        check_is_fitted(self)
        network = self._network()
        pattern = self._pattern
        x, lengths = self._validate_inputs(X, pattern, reset=False)
        x = self._standardize(x, lengths)
        n = len(x) if lengths is None else len(lengths)
        values, y_lengths = pad_targets(
            y, n, lengths=pattern.target_lengths(lengths), nan_padding=self._head.nan_padding
        )
        out_lengths = pattern.scoring_lengths(lengths, y_lengths)
        with serial_blas():
            out, _ = self._outputs(network, x, lengths, out_lengths)
        mask = np.arange(values.shape[1]) < y_lengths[:, np.newaxis]
        if is_step_weights(sample_weight):
            weights = check_step_weights(sample_weight, y_lengths)
            mask &= weights > 0  # masked steps: their targets are not read
        else:
            sample_weight = _check_sample_weight(sample_weight, np.empty((n, 0)))
            weights = np.broadcast_to(sample_weight[:, np.newaxis], mask.shape)
        return metric(
            values[mask], self._predictions(out.swapaxes(0, 1)[mask]), sample_weight=weights[mask]
        )

    def stream(self, batch_size=1, method="predict"):
        """Predict step by step, with the output layer: for online use at low latency.

        A one-way (``bidirectional=False``) seq2vec or seq2seq model only. Much faster per
        step than ``predict(x, initial_state=..., return_state=True)``, which validates and
        allocates on every call; the same predictions as ``method`` on whole sequences.

        Parameters
        ----------
        batch_size : int, default=1
            Number of independent sequences advanced together.
        method : {"predict", "predict_proba", "predict_log_proba"}, default="predict"
            What each step returns (the probabilities: classifiers only).

        Returns
        -------
        stream : PredictionStream
            With ``step(x)`` for ``x`` of shape ``(batch_size, n_features)``,
            returning each sequence's prediction after that step; ``state``; and
            ``reset(state=None)``. Keep BLAS on one thread around the steps
            (``threadpoolctl.threadpool_limits(1)``), as in ``predict``.

        Examples
        --------
        >>> import numpy as np
        >>> from crnn import RNNRegressor
        >>> X = np.random.default_rng(0).normal(size=(20, 6, 2))
        >>> reg = RNNRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        >>> reg.fit(X, X.sum(axis=2).cumsum(axis=1))  # seq2seq
        RNNRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        >>> stream = reg.stream()
        >>> steps = [stream.step(x) for x in X[0][:, np.newaxis]]  # (1, 2) each
        >>> bool(np.allclose(np.concatenate(steps), reg.predict(X[:1])[0]))
        True
        """
        return PredictionStream(self, batch_size, method)

    def __sklearn_is_fitted__(self):
        # A fit that failed validation may have set n_features_in_ or classes_ already.
        return hasattr(self, "params_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
