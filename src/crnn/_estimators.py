"""Recurrent neural network estimators: RNNClassifier and RNNRegressor."""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call

from ._base import BaseRNN
from ._chunked import is_chunked
from ._heads import LinearHead, SoftmaxHead
from ._loss import log_softmax, softmax

__all__ = ["RNNClassifier", "RNNRegressor"]

_COMMON_PARAMETERS = """
    pattern : {"auto", "seq2vec", "seq2seq", "vec2seq", "encdec"}, default="auto"
        Which sequence pattern to learn (see the table above). "auto" reads it
        from the shapes of X and y at the first fit.

    cell : {"lstm", "gru", "rnn"}, default="lstm"
        The recurrent cell: long short-term memory, gated recurrent unit, or
        the vanilla (Elman) cell. The LSTM is the robust default for long
        dependencies; the GRU is a little cheaper.

    hidden_layer_sizes : int or tuple of int, default=(64,)
        Units of each stacked recurrent layer, first layer first. 64 units
        learn most small and medium problems in reasonable time on a CPU;
        widen or stack layers for large data.

    bidirectional : bool, default=False
        Also run every layer backward in time and concatenate both
        directions. Not available for streaming prediction.

    nonlinearity : {"tanh", "relu"}, default="tanh"
        Activation of the vanilla ``cell="rnn"``; ignored by the gated cells.

    dropout : float in [0, 1), default=0.0
        Probability of dropping each unit between stacked recurrent layers
        while training (no effect with a single layer).

    recurrent_dropout : float in [0, 1), default=0.2
        Variational dropout of the recurrent state while training: each
        sequence drops each hidden unit of each layer with this probability
        from the state that enters the next step's recurrent product, the
        same units at every step (Gal and Ghahramani, 2016). A regularizer
        for small data; it costs 1-3% of an LSTM or GRU training step
        (``bench/RESULTS.md``). 0.2 by evidence (``bench/ACCURACY.md``): on
        classification tasks of 15 to 1300 sequences it raised accuracy by
        up to 0.12 and lost nowhere; it lowered the error of three of four
        regression tasks; 0.1 did about as well, 0.4 lost on small data
        sets. 0 trains without it.

    input_dropout : float in [0, 1), default=0.0
        Dropout of the input features while training: each sequence drops
        each feature with this probability at all its steps.

    readout : {"last", "mean", "max", "attention"}, default="max" (RNNClassifier), \
            "last" (RNNRegressor)
        How pattern "seq2vec" turns a sequence into the vector that feeds the
        output layer: the last layer's final state (each direction's, when
        bidirectional), the mean or the max of its outputs over the
        sequence's own steps (padding never counts), or attention pooling
        (learned softmax weights over the steps from a small scoring layer
        of ``max(1, F // 4)`` units, F the output width; it starts as the
        mean). On long sequences pooling finds what the final state has
        forgotten. Costs, against an LSTM or GRU training step: mean and max
        0-4%, attention 8-13%. Ignored by the per-step patterns; streaming
        prediction (``return_state``) needs "last". The defaults are chosen
        by evidence (``bench/ACCURACY.md``): to classify a sequence, max
        pooling finds a shape wherever it occurs (it beat the final state by
        up to 0.21 accuracy on long or small data sets, and lost by at most
        0.04); to regress or forecast a value, the final state carries the
        latest steps, which pooling blurs (max had 11-17% more RMSE on the
        weather forecast).

    pool_steps : int or None, default=None
        Average every ``pool_steps`` input steps before the first layer (a
        sequence of n steps becomes ``ceil(n / pool_steps)`` steps, a partial
        last block averaged over its real steps): fewer, coarser steps for
        long series, ``pool_steps`` times less recurrent work. Patterns
        "seq2vec" and "encdec" only (the others' outputs follow the input
        steps: fitting them with it raises an error), not with streaming
        prediction; None reads every step.

    solver : {"adam", "sgd"}, default="adam"
        The stochastic optimizer: Adam, or SGD with ``momentum``.

    alpha : float, default=1e-4
        Strength of the L2 penalty: the objective is the mean loss plus
        ``alpha / (2 n)`` times the sum of squared weights (not biases), ``n``
        being the number of training sequences (of the call, in
        ``partial_fit``), whatever the batch size. This is the penalty
        ``alpha / 2 ||W||^2`` of the whole training set against its summed
        loss, as for a full-batch MLP, so its weight against the data falls
        as ``1 / n``: it matters on tiny data sets and fades on large ones.
        scikit-learn's MLP in minibatches adds ``alpha / (2 batch_size)``
        per minibatch instead, a weight that does not fall with ``n``.

    batch_size : int or "auto", default="auto"
        Sequences per minibatch; "auto" is ``min(32, n_sequences)``, small
        enough to make many updates per epoch on small data sets. Clipped
        to the number of training sequences.

    learning_rate : {"constant", "adaptive"}, default="constant"
        Learning-rate schedule. "constant" keeps ``learning_rate_init``;
        "adaptive" reduces it on plateaus: each time the monitored loss
        (training loss, or validation loss with early stopping) fails to
        improve by ``tol`` for ``n_iter_no_change`` epochs, the rate is
        divided by 5, and training stops once it would fall below 1e-6.

    learning_rate_init : float, default=1e-3
        Initial learning rate, the usual choice for Adam on recurrent
        networks; SGD typically needs about 0.01 to 0.1.

    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).

    shuffle : bool, default=True
        Whether to shuffle the sequences before each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, shuffling, dropout and the validation
        split; an int makes fits reproducible.

    tol : float in [0, 1), default=1e-4
        Minimum relative decrease of the monitored loss that counts as an
        improvement for ``n_iter_no_change``: an epoch improves when its loss
        is below ``(1 - tol)`` times the best loss so far. Relative, so that
        it means the same for a loss near 1e-3 and one near 1e3.

    verbose : bool, default=False
        Print the loss of every epoch (and validation loss and score with
        early stopping) with its duration, and within an epoch that runs
        longer than a few seconds its progress and the time it has left, at
        most every few seconds.

    warm_start : bool, default=False
        Continue from the fitted weights when ``fit`` is called again (same
        architecture and pattern; a fresh optimizer).

    momentum : float in [0, 1], default=0.9
        Momentum of ``solver="sgd"``.

    nesterovs_momentum : bool, default=True
        Whether ``solver="sgd"`` uses Nesterov's momentum.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the sequences, monitor the
        validation loss instead of the training loss for stopping (see
        ``n_iter_no_change``), and restore the weights of the epoch with the
        lowest validation loss. The split is stratified for seq2vec
        classification. "auto" turns it on in ``fit`` from 1000 training
        sequences on (100 or more held out at the default fraction); below
        that the held-out sequences are worth more as training data (see
        bench/ACCURACY.md). ``partial_fit`` never holds out data: "auto" is
        off there, and True raises.

    validation_fraction : float in (0, 1), default=0.1
        Share of the training sequences held out for early stopping.

    beta_1 : float in [0, 1), default=0.9
        Decay rate of Adam's first-moment estimates.

    beta_2 : float in [0, 1), default=0.999
        Decay rate of Adam's second-moment estimates.

    epsilon : float, default=1e-8
        Numerical-stability term of Adam.

    n_iter_no_change : int or np.inf, default=10
        Patience: training stops after more than ``n_iter_no_change`` epochs
        without an improvement (see ``tol``) of the monitored loss, and never
        before those epochs also hold 500 optimizer updates, however few
        updates an epoch makes. A small data set (one or two minibatches an
        epoch) thus gets as many epochs of patience as 500 updates take, a
        large one ``n_iter_no_change`` epochs; ``max_iter`` still ends
        training. With ``learning_rate="adaptive"``, each plateau of more
        than ``n_iter_no_change`` epochs divides the learning rate instead
        (without the update minimum), until it would fall below 1e-6.
        np.inf never stops early.

    clip_norm : float or None, default=5.0
        Gradient clipping: rescale each minibatch gradient (all parameters
        together) to this Euclidean norm when it is larger, the remedy for
        exploding gradients in recurrent networks. 5.0 only acts on unusual
        spikes of the mean-loss gradient; None disables clipping.

    truncate_bptt : int or None, default=None
        Truncated backpropagation through time: gradients flow back through
        only the last ``truncate_bptt`` steps of each sequence (and of each
        direction). Cheaper on very long sequences; None is full BPTT.

    dtype : {"float32", "float64"}, default="float32"
        Floating type of the weights and of every computation. float32 is
        about twice as fast and accurate enough for training; float64 suits
        gradient checks and ill-conditioned problems.

    n_jobs : int or None, default=None
        Threads for training and prediction: each minibatch is split into up
        to ``n_jobs`` parts run in parallel (BLAS stays on one thread, which is
        faster than BLAS's own threads on the small per-step products). A part
        too small to pay for its thread is not made (see ``n_threads`` in
        :func:`crnn.functional.forward`), so small networks run on one thread
        anyway. None means 1 (unless in a joblib ``parallel_config`` context),
        -1 all cores. Results agree with one thread to rounding.

    scale_inputs : bool, default=True
        Standardize each input feature: the network sees
        ``(x - input_mean_) / input_scale_``, the mean and standard deviation
        of each feature over every real step of every training sequence
        (padding excluded; over the vectors for vec2seq), as
        :class:`crnn.preprocessing.SequenceScaler` computes them; a constant
        feature is only centred. The statistics come from the first ``fit``
        (or the first ``partial_fit`` call) and are then kept, by later
        ``partial_fit`` calls and ``warm_start`` fits too: the weights were
        learned in those units, and moving the units under them would change
        what every learned weight means. Turn it off for inputs whose raw
        scale the network must see.

    callback : callable or None, default=None
        Called after every epoch (of ``fit`` and ``partial_fit``) as
        ``callback(estimator, info)``, to checkpoint, log or stop on a metric
        of your own. ``info`` is a dict of the epoch's figures: ``epoch`` (its
        number, counting every epoch since the first fit), ``loss``,
        ``validation_loss`` and ``validation_score`` (None without early
        stopping), ``learning_rate``, ``time`` (seconds) and ``updates``
        (optimizer steps in the epoch). The estimator holds that epoch's
        weights and fitted attributes, so it can be saved or scored. A true
        return value stops training there (``callback_stopped_``); with early
        stopping the best epoch's weights are still restored. Not saved by
        :func:`crnn.save`, being code.
"""

_COMMON_ATTRIBUTES = """
    pattern_ : str
        The pattern that was fitted ("seq2vec", "seq2seq", "vec2seq" or "encdec").

    params_ : ndarray of shape (n_params,)
        Every trained parameter in one flat array of ``dtype``: the recurrent
        layers in :mod:`crnn.functional`'s layout, then (encdec) the decoder,
        then the output layer's weights ``(output_size, n_outputs_)`` and bias.

    n_features_in_ : int
        Number of features of each input step (or of each input vector for
        vec2seq); 1 for 2D X.

    feature_names_in_ : ndarray of shape (n_columns,)
        The column names of a pandas DataFrame X at fit, when they are all
        strings: the steps of univariate sequences, or the features of
        vec2seq's vectors. X at predict must then have the same columns in
        the same order (a NumPy array is accepted with a warning). Defined
        only when X at fit had such names.

    n_outputs_ : int
        Number of units of the output layer.

    n_steps_out_ : int or None
        Output steps predicted by default for vec2seq and encdec (the longest
        target sequence seen at the first fit); None for the other patterns.

    loss_ : float
        Training loss (with the L2 penalty) of the last epoch; for
        ``RNNRegressor`` with ``scale_targets``, in standardized target units.

    loss_curve_ : list of float
        Training loss of every epoch.

    best_loss_ : float
        The lowest monitored loss of the last ``fit``: the training loss, or
        the validation loss with early stopping.

    validation_loss_curve_ : list of float or None
        Validation loss of every epoch with early stopping, else None.

    validation_scores_ : list of float or None
        Validation score (see ``score``) of every epoch with early stopping,
        else None.

    best_validation_score_ : float or None
        Validation score of the epoch whose weights were kept.

    n_iter_ : int
        Epochs run by the last ``fit`` (plus one per later ``partial_fit``).

    input_mean_ : ndarray of shape (n_features,) or None
        Mean of each input feature over the real steps of the first fit's
        sequences (float64); None with ``scale_inputs=False``.

    input_scale_ : ndarray of shape (n_features,) or None
        Standard deviation of each input feature (1 for a constant one), the
        divisor of the inputs (float64); None with ``scale_inputs=False``.

    callback_stopped_ : bool
        Whether ``callback`` stopped the last ``fit`` or ``partial_fit``.

    t_ : int
        Number of training sequences seen, over all epochs and calls.
"""

_NOTES = """
    Notes
    -----
    ``fit``, ``partial_fit`` and ``predict`` run BLAS on one thread: the matrix
    products of a recurrent step are too small for a second thread to pay, and
    on a busy machine its synchronisation made training several times slower.
    To use more cores, split the minibatches over threads (``n_jobs``), or run
    several fits in parallel (``n_jobs`` of scikit-learn's model selection
    tools; then leave this estimator's ``n_jobs`` at None).
"""

_PATTERNS = """
    Four sequence patterns are learned; ``pattern="auto"`` infers the first,
    second or fourth from the shapes (``n_steps`` is the longest sequence of X):

    ========  ======================================  ==========================
    pattern   y                                       prediction
    ========  ======================================  ==========================
    seq2vec   ``(n_sequences,)``, or (regressor)      from each sequence's own
              ``(n_sequences, m)`` with               steps, pooled or the last
              ``m != n_steps``                        one (see ``readout``)
    seq2seq   ``(n_sequences, n_steps[, m])``, or a   at every step
              list of sequences as long as X's
    encdec    ``(n_sequences, t[, m])`` with          a decoder started from the
              ``t != n_steps``, or a list of          encoder's final state,
              sequences of other lengths              feeding back its outputs
    vec2seq   like encdec; X is ``(n_sequences,       at every step, X fed at
              n_features)`` (never inferred)          every step
    ========  ======================================  ==========================

    X may be a 3D array ``(n_sequences, n_steps, n_features)``, a 2D array
    ``(n_sequences, n_steps)`` of univariate sequences (so that scalers,
    pipelines and cross-validation work unchanged), or a list of 2D arrays
    ``(n_steps_i, n_features)`` of different lengths. In arrays, trailing
    steps that are all NaN are padding. A sequence's prediction does not
    depend on the other sequences of the batch or on padding. Per-step
    predictions come back as an array ``(n_sequences, n_steps, ...)`` when all
    sequences have the same length, else as a list of arrays.

    Data larger than memory: a 3D dask array, zarr array or HDF5 dataset is
    read one chunk of sequences (a block of the first axis) at a time by
    ``fit``, ``partial_fit`` and ``predict``; training visits the chunks, and
    the sequences within each, in a shuffled order. ``predict`` of a dask
    array returns a dask array (:func:`crnn.dask.predict`).

    Streaming: with a one-way seq2vec or seq2seq model,
    ``predict(X_chunk, initial_state=state, return_state=True)`` carries the
    hidden state from one chunk of a long sequence to the next; feeding a
    stream in chunks gives the same predictions as feeding it whole.
"""


class RNNClassifier(ClassifierMixin, BaseRNN):
    __doc__ = f"""Recurrent neural network classifier for sequences.

    Labels a whole sequence (seq2vec), each step of a sequence (seq2seq,
    tagging), or produces a label sequence (encdec, vec2seq). Trained with
    softmax cross-entropy by minibatch Adam or SGD over one flat parameter
    array, with the recurrent layers running in crnn's C kernels.
{_PATTERNS}
    Parameters
    ----------{_COMMON_PARAMETERS}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplying ``sample_weight``:
        ``{{label: weight}}``, or "balanced" for
        ``n_positions / (n_classes * count(label))``. Not "balanced" in
        ``partial_fit``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
{_COMMON_ATTRIBUTES}
    See Also
    --------
    RNNRegressor : The same networks for real-valued targets.
    sklearn.neural_network.MLPClassifier : A feed-forward network, for vectors.
{_NOTES}
    Examples
    --------
    Digits read row by row, as 8 steps of 8 pixels:

    >>> from sklearn.datasets import load_digits
    >>> from crnn import RNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16
    >>> clf = RNNClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0)
    >>> clf.fit(X[:1000], y[:1000]).predict(X[1000:1003]).shape
    (3,)
    >>> clf.predict_proba(X[1000:1003]).shape
    (3, 10)
    """

    _parameter_constraints: dict = {
        **BaseRNN._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    _head = SoftmaxHead()

    def __init__(
        self,
        pattern="auto",
        cell="lstm",
        hidden_layer_sizes=(64,),
        *,
        bidirectional=False,
        nonlinearity="tanh",
        dropout=0.0,
        recurrent_dropout=0.2,
        input_dropout=0.0,
        readout="max",
        pool_steps=None,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping="auto",
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        clip_norm=5.0,
        truncate_bptt=None,
        dtype="float32",
        n_jobs=None,
        scale_inputs=True,
        callback=None,
        class_weight=None,
    ):
        super().__init__(
            pattern=pattern,
            cell=cell,
            hidden_layer_sizes=hidden_layer_sizes,
            bidirectional=bidirectional,
            nonlinearity=nonlinearity,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            input_dropout=input_dropout,
            readout=readout,
            pool_steps=pool_steps,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            clip_norm=clip_norm,
            truncate_bptt=truncate_bptt,
            dtype=dtype,
            n_jobs=n_jobs,
            scale_inputs=scale_inputs,
            callback=callback,
        )
        self.class_weight = class_weight

    # ---------------------------------------------------------------- public API

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Update the model with one pass over X and y (online learning).

        The optimizer state is kept between calls. Works on a model fitted by
        ``fit`` too (continuing from its weights), and with ``sample_weight``.
        The input statistics (``scale_inputs``) are those of the first call
        (or of ``fit``), kept by later calls.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences, as for ``fit``.
        y : array-like or list of array-like
            Targets, as for ``fit``; the pattern is fixed by the first call.
        classes : array-like of shape (n_classes,), default=None
            Every class that any call will see. Required on the first call
            (unless the model was fitted by ``fit``); later calls may omit it
            or must repeat the same classes.
        sample_weight : array-like of shape (n_sequences,) or (n_sequences, n_steps), \
                default=None
            Weight of each sequence, or of each target step, as for ``fit``;
            None for equal weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: the class "
                "counts of one call do not describe the stream. Pass a dict computed with "
                "sklearn.utils.class_weight.compute_class_weight instead."
            )
        _check_partial_fit_first_call(self, classes)
        first = not hasattr(self, "params_")
        return self._fit(
            X, y, sample_weight, incremental=True, classes=self.classes_ if first else None
        )

    def predict(self, X, *, n_steps_out=None, initial_state=None, return_state=False):
        """Predict class labels.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences (vectors for vec2seq), as for ``fit``.
        n_steps_out : int or array-like of int of shape (n_sequences,), default=None
            For vec2seq and encdec: the number of steps to produce for each
            sequence; None for ``n_steps_out_``.
        initial_state : tuple, default=None
            Streaming: the state returned by the previous call with
            ``return_state=True``; None starts from zeros.
        return_state : bool, default=False
            Streaming: also return the state after each sequence's last step.

        Returns
        -------
        y : ndarray of shape (n_sequences,) or (n_sequences, n_steps), or list of ndarray
            One label per sequence (seq2vec) or per step; a list of arrays
            when the sequences have different lengths.
        state : tuple
            Only with ``return_state=True``; pass it as ``initial_state``.
        """
        if is_chunked(X):
            return self._predict_chunks("predict", X, n_steps_out, initial_state, return_state)
        out, out_lengths, state = self._predict_outputs(
            X, n_steps_out, initial_state, return_state
        )
        return self._finish(self._predictions(out), out_lengths, state, return_state)

    def predict_proba(self, X, *, n_steps_out=None, initial_state=None, return_state=False):
        """Predict class probabilities.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences (vectors for vec2seq), as for ``fit``.
        n_steps_out : int or array-like of int of shape (n_sequences,), default=None
            For vec2seq and encdec: the number of steps to produce for each
            sequence; None for ``n_steps_out_``.
        initial_state : tuple, default=None
            Streaming: the state returned by the previous call with
            ``return_state=True``; None starts from zeros.
        return_state : bool, default=False
            Streaming: also return the state after each sequence's last step.

        Returns
        -------
        proba : ndarray of shape (n_sequences, n_classes) or \
                (n_sequences, n_steps, n_classes), or list of ndarray
            Probabilities of ``classes_`` (float64), per sequence (seq2vec) or
            per step; a list of arrays when the sequences have different lengths.
        state : tuple
            Only with ``return_state=True``; pass it as ``initial_state``.
        """
        if is_chunked(X):
            return self._predict_chunks(
                "predict_proba", X, n_steps_out, initial_state, return_state
            )
        out, out_lengths, state = self._predict_outputs(
            X, n_steps_out, initial_state, return_state
        )
        proba = softmax(out.reshape(-1, out.shape[-1]).astype(np.float64)).reshape(out.shape)
        return self._finish(proba, out_lengths, state, return_state)

    def predict_log_proba(self, X, *, n_steps_out=None, initial_state=None, return_state=False):
        """Predict the logarithm of class probabilities.

        Computed from the output layer directly (log-softmax), so it stays finite where
        ``np.log(predict_proba(X))`` would underflow to ``-inf``.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences (vectors for vec2seq), as for ``fit``.
        n_steps_out : int or array-like of int of shape (n_sequences,), default=None
            For vec2seq and encdec: the number of steps to produce for each
            sequence; None for ``n_steps_out_``.
        initial_state : tuple, default=None
            Streaming: the state returned by the previous call with
            ``return_state=True``; None starts from zeros.
        return_state : bool, default=False
            Streaming: also return the state after each sequence's last step.

        Returns
        -------
        log_proba : ndarray of shape (n_sequences, n_classes) or \
                (n_sequences, n_steps, n_classes), or list of ndarray
            Log-probabilities of ``classes_`` (float64), shaped as by
            :meth:`predict_proba`.
        state : tuple
            Only with ``return_state=True``; pass it as ``initial_state``.
        """
        if is_chunked(X):
            return self._predict_chunks(
                "predict_log_proba", X, n_steps_out, initial_state, return_state
            )
        out, out_lengths, state = self._predict_outputs(
            X, n_steps_out, initial_state, return_state
        )
        log_proba = log_softmax(out.reshape(-1, out.shape[-1]).astype(np.float64))
        return self._finish(log_proba.reshape(out.shape), out_lengths, state, return_state)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy, over sequences (seq2vec) or over all steps of all sequences.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences, as for ``fit``.
        y : array-like or list of array-like
            True labels, as for ``fit``.
        sample_weight : array-like of shape (n_sequences,) or (n_sequences, n_steps), \
                default=None
            Weight of each sequence (shared by its steps), or of each target
            step; steps of weight zero are left out.

        Returns
        -------
        score : float
            The accuracy.
        """
        if self._scores_per_step():
            return self._score_steps(X, y, sample_weight, accuracy_score)
        return super().score(X, y, sample_weight)


class RNNRegressor(RegressorMixin, BaseRNN):
    __doc__ = f"""Recurrent neural network regressor for sequences.

    Predicts one value or vector per sequence (seq2vec), one per step
    (seq2seq, e.g. the next value of a series at every step), or a target
    sequence (encdec, vec2seq). Trained on the squared error by minibatch
    Adam or SGD over one flat parameter array, with the recurrent layers
    running in crnn's C kernels. Inputs and targets are standardized
    internally (``scale_inputs``, ``scale_targets``): raw units need no
    scaling, and predictions come back in the targets' units.
{_PATTERNS}
    Parameters
    ----------{_COMMON_PARAMETERS}
    scale_targets : bool, default=True
        Train on standardized targets, ``(y - target_mean_) / target_scale_``
        for each target over every real position of the first fit (then kept,
        as the input statistics are), and predict in the original units. The
        squared error then weighs each target by its own spread, and a target
        in the thousands trains as well as one near 1. The encoder-decoder's
        fed-back outputs stay in standardized units.

    Attributes
    ----------{_COMMON_ATTRIBUTES}
    target_mean_ : ndarray of shape (n_outputs,) or None
        Mean of each target over the first fit's real positions (float64);
        None with ``scale_targets=False``.

    target_scale_ : ndarray of shape (n_outputs,) or None
        Standard deviation of each target (1 for a constant one), float64;
        None with ``scale_targets=False``.

    See Also
    --------
    RNNClassifier : The same networks for class labels.
    sklearn.neural_network.MLPRegressor : A feed-forward network, for vectors.
{_NOTES}
    Examples
    --------
    The next value of a noisy sine wave at every step:

    >>> import numpy as np
    >>> from crnn import RNNRegressor
    >>> t = np.linspace(0, 60, 3001)
    >>> series = np.sin(t) + 0.05 * np.random.default_rng(0).normal(size=t.size)
    >>> windows = np.lib.stride_tricks.sliding_window_view(series, 31)[::10]
    >>> X, y = windows[:, :-1], windows[:, 1:]          # (n, 30) each: seq2seq
    >>> reg = RNNRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    >>> reg.fit(X, y).predict(X[:2]).shape
    (2, 30)
    """

    _parameter_constraints: dict = {
        **BaseRNN._parameter_constraints,
        "scale_targets": ["boolean"],
    }
    _head = LinearHead()

    def __init__(
        self,
        pattern="auto",
        cell="lstm",
        hidden_layer_sizes=(64,),
        *,
        bidirectional=False,
        nonlinearity="tanh",
        dropout=0.0,
        recurrent_dropout=0.2,
        input_dropout=0.0,
        readout="last",
        pool_steps=None,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping="auto",
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        clip_norm=5.0,
        truncate_bptt=None,
        dtype="float32",
        n_jobs=None,
        scale_inputs=True,
        callback=None,
        scale_targets=True,
    ):
        super().__init__(
            pattern=pattern,
            cell=cell,
            hidden_layer_sizes=hidden_layer_sizes,
            bidirectional=bidirectional,
            nonlinearity=nonlinearity,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            input_dropout=input_dropout,
            readout=readout,
            pool_steps=pool_steps,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            clip_norm=clip_norm,
            truncate_bptt=truncate_bptt,
            dtype=dtype,
            n_jobs=n_jobs,
            scale_inputs=scale_inputs,
            callback=callback,
        )
        self.scale_targets = scale_targets

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ---------------------------------------------------------------- public API

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one pass over X and y (online learning).

        The optimizer state is kept between calls. Works on a model fitted by
        ``fit`` too (continuing from its weights), and with ``sample_weight``.
        The input and target statistics (``scale_inputs``, ``scale_targets``)
        are those of the first call (or of ``fit``), kept by later calls.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences, as for ``fit``.
        y : array-like or list of array-like
            Targets, as for ``fit``; the pattern is fixed by the first call.
        sample_weight : array-like of shape (n_sequences,) or (n_sequences, n_steps), \
                default=None
            Weight of each sequence, or of each target step, as for ``fit``;
            None for equal weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X, *, n_steps_out=None, initial_state=None, return_state=False):
        """Predict targets.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences (vectors for vec2seq), as for ``fit``.
        n_steps_out : int or array-like of int of shape (n_sequences,), default=None
            For vec2seq and encdec: the number of steps to produce for each
            sequence; None for ``n_steps_out_``.
        initial_state : tuple, default=None
            Streaming: the state returned by the previous call with
            ``return_state=True``; None starts from zeros.
        return_state : bool, default=False
            Streaming: also return the state after each sequence's last step.

        Returns
        -------
        y : ndarray of shape (n_sequences,), (n_sequences, n_targets), \
                (n_sequences, n_steps) or (n_sequences, n_steps, n_targets), \
                or list of ndarray
            The float64 predictions per sequence (seq2vec) or per step; the
            targets axis is dropped for a single target; a list of arrays when
            the sequences have different lengths.
        state : tuple
            Only with ``return_state=True``; pass it as ``initial_state``.
        """
        if is_chunked(X):
            return self._predict_chunks("predict", X, n_steps_out, initial_state, return_state)
        out, out_lengths, state = self._predict_outputs(
            X, n_steps_out, initial_state, return_state
        )
        return self._finish(self._predictions(out), out_lengths, state, return_state)

    def score(self, X, y, sample_weight=None):
        """R^2, over sequences (seq2vec) or pooled over all steps of all sequences.

        Parameters
        ----------
        X : array-like or list of array-like
            Input sequences, as for ``fit``.
        y : array-like or list of array-like
            True targets, as for ``fit``.
        sample_weight : array-like of shape (n_sequences,) or (n_sequences, n_steps), \
                default=None
            Weight of each sequence (shared by its steps), or of each target
            step; steps of weight zero are left out.

        Returns
        -------
        score : float
            The coefficient of determination.
        """
        if self._scores_per_step():
            return self._score_steps(X, y, sample_weight, r2_score)
        return super().score(X, y, sample_weight)
