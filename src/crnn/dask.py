"""crnn on Dask: prediction mapped over a cluster, and data-parallel training.

Dask moves the data and the parameters; this module adds only what is specific to crnn:
how a fitted model maps over chunks of sequences, and how the models trained on several
shards are combined into one.

- :func:`predict` maps a fitted estimator over the chunks of a 3D dask array (or the
  partitions of a dask bag of sequences) on the cluster and returns a lazy result.
- :func:`fit` trains one model on shards held by the workers, by local SGD with periodic
  model averaging.

Hyper-parameter searches need nothing from this module: scikit-learn's ``GridSearchCV``
runs on a cluster through ``joblib.parallel_config(backend="dask")``.

Workers: start them with one thread each (``threads_per_worker=1``), one process per core,
and leave the estimators' ``n_jobs=1``: a fit is then one core's work, and as many fits run
at a time as there are cores. BLAS stays on one thread in the worker processes: distributed
sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` to 1 before it
spawns them (its ``distributed.nanny.pre-spawn-environ`` config); keep them so. That config
also sets ``MALLOC_TRIM_THRESHOLD_=65536``, which makes crnn's training 1.4x slower (a fixed
threshold turns off glibc's adaptive one, and every minibatch's buffers are then mapped and
unmapped again): start clusters with
``dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})``.

dask-ml's wrappers are replaced, not supported: ``ParallelPostFit.predict`` probes the
estimator with 2D blocks (``(1, n_features)``, which crnn reads as one univariate sequence)
and ``Incremental.fit`` hands ``partial_fit`` the block keys of a 2D array. Use
:func:`predict` instead of ``ParallelPostFit``, and :func:`fit` (or an estimator's own
``fit`` / ``partial_fit`` on a dask array, which stream its chunks) instead of
``Incremental``.
"""

try:
    import dask
    import dask.array as da
    import dask.bag as db
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError('crnn.dask needs Dask: install it with pip install "crnn[dask]".') from exc

import copy
from numbers import Integral

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._training import uses_validation

__all__ = ["fit", "predict"]

_METHODS = ("predict", "predict_proba", "predict_log_proba")


# ----------------------------------------------------------------------------- prediction


def predict(estimator, X, *, method="predict", **kwargs):
    """Predict lazily on a cluster, one chunk of sequences per task.

    Parameters
    ----------
    estimator : RNNClassifier or RNNRegressor
        A fitted estimator. It enters the task graph once, as one key that every task
        depends on (Dask ships it to each worker once).
    X : dask.array.Array of shape (n_sequences, n_steps, n_features) or \
            (n_sequences, n_steps), or dask.bag.Bag of arrays of shape (n_steps_i, n_features)
        The sequences (vectors ``(n_sequences, n_features)`` for ``pattern="vec2seq"``).
        An array is mapped over its chunks along the first axis (the other axes are merged
        into one chunk first); NaN-padded arrays hold sequences of different lengths as
        ``fit`` reads them. A bag is the form for ragged sequences: each partition is
        predicted as one list.
    method : {"predict", "predict_proba", "predict_log_proba"}, default="predict"
        The estimator's method to map.
    **kwargs
        Passed to ``method``; ``n_steps_out`` must be an int here (one value for every
        chunk). Streaming state (``initial_state``, ``return_state``) is not mapped.

    Returns
    -------
    dask.array.Array or dask.bag.Bag
        For an array, a dask array chunked like ``X`` along sequences: ``(n_sequences,)``
        or ``(n_sequences, k)`` per sequence (seq2vec), ``(n_sequences, n_steps, ...)``
        per step. Steps past a padded sequence's end are NaN (float outputs; per-step
        labels of padded sequences raise, use ``predict_proba`` or a bag). For a bag, a
        bag with one prediction per sequence, in order.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from crnn import RNNClassifier
    >>> from crnn.dask import predict
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 6, 3))
    >>> clf = RNNClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    >>> clf = clf.fit(X, X[:, :, 0].sum(axis=1) > 0)
    >>> labels = predict(clf, da.from_array(X, chunks=(50, 6, 3)))
    >>> labels.shape, labels.chunks
    ((200,), ((50, 50, 50, 50),))
    >>> bool((labels.compute() == clf.predict(X)).all())
    True
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if not hasattr(estimator, method):
        raise ValueError(f"{type(estimator).__name__} has no method {method!r}.")
    check_is_fitted(estimator)
    if kwargs.get("initial_state") is not None or kwargs.get("return_state"):
        raise ValueError(
            "crnn.dask.predict does not map streaming state (initial_state, return_state); "
            "call the estimator's method on NumPy chunks for that."
        )
    steps = kwargs.get("n_steps_out")
    if steps is not None and not isinstance(steps, Integral):
        raise ValueError(
            "n_steps_out must be an int in crnn.dask.predict (one value for every chunk), "
            f"got {type(steps).__name__}."
        )
    model = dask.delayed(estimator, pure=True)
    if isinstance(X, db.Bag):
        return X.map_partitions(_predict_partition, model, method, kwargs)
    if not isinstance(X, da.Array):
        raise TypeError(
            f"crnn.dask.predict takes a dask array or a dask bag, got {type(X).__name__}; "
            "call the estimator's own method on in-memory data."
        )
    if X.ndim not in (2, 3):
        raise ValueError(
            f"X must be a 2D or 3D dask array, got {X.ndim} dimensions (shape {X.shape})."
        )
    if any(np.isnan(s) for s in X.shape):
        raise ValueError("X has chunks of unknown size; call X.compute_chunk_sizes() first.")
    X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    # One sequence of zeros, predicted here, gives the output's dtype and trailing shape.
    probe = np.asarray(getattr(estimator, method)(np.zeros((1, *X.shape[1:]), X.dtype), **kwargs))
    tail = probe.shape[1:]
    return da.map_blocks(
        _predict_block,
        X,
        model,
        method,
        kwargs,
        tail,
        dtype=probe.dtype,
        chunks=(X.chunks[0], *((n,) for n in tail)),
        drop_axis=list(range(probe.ndim, X.ndim)),
        new_axis=list(range(X.ndim, probe.ndim)),
        meta=np.empty((0,) * (1 + len(tail)), dtype=probe.dtype),
    )


def _predict_block(block, estimator, method, kwargs, tail):
    """``method`` on one chunk, padded back to an array where it returns a list."""
    out = getattr(estimator, method)(block, **kwargs)
    if not isinstance(out, list):
        return out
    first = out[0]
    if first.dtype.kind != "f":
        raise ValueError(
            "Per-step labels of NaN-padded sequences have no value past each sequence's "
            "end: use method='predict_proba', or pass the sequences as a dask bag."
        )
    padded = np.full((len(out), *tail), np.nan, dtype=first.dtype)
    for i, seq in enumerate(out):
        padded[i, : len(seq)] = seq
    return padded


def _predict_partition(sequences, estimator, method, kwargs):
    """``method`` on one bag partition; one prediction per sequence."""
    sequences = list(sequences)
    if not sequences:
        return []
    return list(getattr(estimator, method)(sequences, **kwargs))


# ----------------------------------------------------------------------------- training


def fit(estimator, X, y, *, classes=None, sync_every=16, client=None):
    """Train one model on shards of the data held by Dask workers (local SGD).

    Each worker holds one shard of the sequences. Every round, each worker starts from the
    current model and takes ``sync_every`` minibatch steps on its shard (one
    ``partial_fit`` over ``sync_every * batch_size`` of its sequences, drawn without
    replacement within an epoch); then the parameters and the optimizer's state (Adam's
    moment estimates, SGD's velocity) are averaged, weighted by the sequences each worker
    used. This is local SGD with periodic model averaging (Stich, 2019, "Local SGD
    converges fast and communicates little"; the weighted average is FedAvg, McMahan et
    al., 2017); averaging once, at the end, is the parallel SGD of Zinkevich et al. (2010).
    The workers run crnn's kernels; Dask moves the shards (once) and the models (each
    round); this function adds only the averaging rule.

    An epoch is one pass over every shard, ``max_iter`` epochs in all. Each epoch makes
    about ``1 / n_workers`` as many sequential updates as ``estimator.fit`` would, each
    from an average over ``n_workers`` minibatches: scale ``learning_rate_init`` by
    ``n_workers`` (the linear scaling rule of Goyal et al., 2017) to reach the loss of
    ``fit`` in as many epochs. ``tests/test_dask.py`` checks that 2 workers with twice the
    learning rate reach the single-process training loss within 15% after 10 epochs. A
    larger ``sync_every`` communicates less; each round moves ``2 (n_workers - 1)`` copies
    of the model state (3 x the parameters for Adam), measured in ``bench/RESULTS.md``.

    The first round runs on the first shard alone: it initializes the weights and, with
    ``scale_inputs`` / ``scale_targets``, the input and target statistics, from that round's
    ``sync_every * batch_size`` sequences (as ``partial_fit`` would); every later round runs
    on all workers.

    Parameters
    ----------
    estimator : RNNClassifier or RNNRegressor
        The model to train, with its hyper-parameters; it is fitted in place, from scratch
        (``early_stopping`` and ``class_weight="balanced"`` are not supported).
    X : ndarray, list of ndarray or dask.array.Array
        The sequences, as ``fit`` takes them. NumPy data is split at random into one shard
        per worker and scattered; a dask array is split along its chunks (each worker
        assembles whole chunks), so shuffle its sequences first if they are ordered.
    y : ndarray, list of ndarray or dask.array.Array
        The targets, as ``fit`` takes them (a dask array when ``X`` is one).
    classes : array-like, default=None
        Classifiers: every class label; None reads them from ``y``.
    sync_every : int, default=16
        Minibatch steps each worker takes between two averages.
    client : distributed.Client, default=None
        The cluster; None for the current default client.

    Returns
    -------
    estimator : RNNClassifier or RNNRegressor
        The fitted estimator. ``loss_curve_`` holds each epoch's mean minibatch loss
        over all workers.
    """
    from distributed import default_client

    client = client or default_client()
    if uses_validation(estimator, None):  # early_stopping=True ("auto" holds out nothing)
        raise ValueError("crnn.dask.fit does not support early_stopping=True.")
    if not (isinstance(sync_every, Integral) and sync_every >= 1):
        raise ValueError(f"sync_every must be a positive int, got {sync_every!r}.")
    if is_classifier(estimator) and classes is None:
        classes = _classes(y)
    rng = check_random_state(estimator.random_state)
    workers = sorted(client.scheduler_info()["workers"])
    shards = _shards(client, X, y, workers, rng)
    n_total = sum(n for _, _, _, n in shards)
    batch_size = 32 if estimator.batch_size == "auto" else estimator.batch_size
    per_round = sync_every * min(batch_size, n_total)
    rounds = -(-max(n for *_, n in shards) // per_round)
    model = clone(estimator).set_params(random_state=int(rng.randint(2**31 - 1)))
    epoch_losses = []
    for epoch in range(estimator.max_iter):
        orders = [rng.permutation(n) for *_, n in shards]
        losses, counts = [], []
        for r in range(rounds):
            updated, weights = [], []
            for i, ((worker, x, y_shard, _), order) in enumerate(zip(shards, orders)):
                idx = order[r * per_round : (r + 1) * per_round]
                # The first round initializes the model (weights, and the input and target
                # statistics of scale_inputs / scale_targets) on the first shard alone: models
                # started on other shards would be learned in other units, and averaging them
                # would mix those units.
                if len(idx) == 0 or (epoch == 0 and r == 0 and i > 0):
                    continue
                seed = int(rng.randint(2**31 - 1))
                updated.append(
                    client.submit(
                        _local_steps,
                        model,
                        x,
                        y_shard,
                        idx,
                        seed,
                        classes,
                        n_total,
                        workers=[worker],
                        pure=False,
                    )
                )
                weights.append(len(idx))
            model = client.submit(_average, weights, *updated, pure=False)
            losses.append(client.submit(_loss_of, model, pure=False))
            counts.append(sum(weights))
        epoch_losses.append(float(np.dot(client.gather(losses), counts) / sum(counts)))
    fitted = client.gather(model)
    params = estimator.get_params()
    estimator.__dict__.update(fitted.__dict__)
    estimator.set_params(**params)
    estimator.n_iter_ = estimator.max_iter
    estimator.t_ = estimator.max_iter * n_total
    estimator.loss_curve_ = epoch_losses
    estimator.loss_ = epoch_losses[-1]
    estimator.best_loss_ = min(epoch_losses)
    return estimator


def _classes(y):
    """Every label in ``y`` (an array, a dask array or a list of label sequences)."""
    if isinstance(y, da.Array):
        return np.unique(da.unique(y.ravel()).compute())
    if isinstance(y, (list, tuple)):
        return np.unique(np.concatenate([np.ravel(item) for item in y]))
    return np.unique(np.asarray(y))


def _shards(client, X, y, workers, rng):
    """One ``(worker, x, y, n_sequences)`` per worker that holds data; x and y are futures."""
    if isinstance(X, da.Array):
        if not isinstance(y, da.Array):
            y = da.from_array(np.asarray(y), chunks=(X.chunks[0],) + np.shape(y)[1:])
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
        y = y.rechunk({0: X.chunks[0], **{axis: -1 for axis in range(1, y.ndim)}})
        x_blocks, y_blocks = X.to_delayed().ravel(), y.to_delayed().ravel()
        groups = np.array_split(rng.permutation(len(x_blocks)), len(workers))
        shards = []
        for worker, group in zip(workers, groups):
            if len(group) == 0:
                continue
            concat = dask.delayed(np.concatenate)
            x, y_ = client.compute(
                [concat([x_blocks[i] for i in group]), concat([y_blocks[i] for i in group])],
                workers=[worker],
            )
            shards.append((worker, x, y_, int(sum(X.chunks[0][i] for i in group))))
        return shards
    n = len(X)
    shards = []
    for worker, idx in zip(workers, np.array_split(rng.permutation(n), len(workers))):
        if len(idx) == 0:
            continue
        x, y_ = client.scatter([_take(X, idx), _take(y, idx)], workers=[worker])
        shards.append((worker, x, y_, len(idx)))
    return shards


def _take(data, idx):
    """Sequences ``idx`` of an array or a list."""
    return [data[i] for i in idx] if isinstance(data, (list, tuple)) else np.asarray(data)[idx]


def _local_steps(model, x, y, idx, seed, classes, n_total):
    """``model`` after one ``partial_fit`` on the sequences ``idx`` of a worker's shard."""
    model = copy.deepcopy(model)  # tasks in one process may share their input object
    params = model.get_params()
    # partial_fit spreads the L2 penalty over the sequences of the call; the objective
    # spreads it over all of them (alpha / n_total per sequence, as fit does).
    model.set_params(alpha=params["alpha"] * len(idx) / n_total)
    if hasattr(model, "params_"):  # the first round initializes from the common seed
        model.set_params(random_state=seed)
    extra = {} if classes is None else {"classes": classes}
    model.partial_fit(_take(x, idx), _take(y, idx), **extra)
    if not hasattr(model, "_optimizer"):
        raise FloatingPointError(
            "Training diverged on a worker (see its ConvergenceWarning): lower "
            "learning_rate_init or set clip_norm."
        )
    return model.set_params(**params)


def _average(weights, *models):
    """The models' parameters and optimizer states averaged, weighted by ``weights``."""
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    out = copy.deepcopy(models[0])
    out.params_[:] = sum(w * m.params_ for w, m in zip(weights, models))
    state = vars(out._optimizer)
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            value[:] = sum(w * vars(m._optimizer)[name] for w, m in zip(weights, models))
    if "t" in state:  # Adam's step count, for its bias correction
        state["t"] = max(m._optimizer.t for m in models)
    out.loss_ = float(sum(w * m.loss_ for w, m in zip(weights, models)))
    out.loss_curve_ = []
    return out


def _loss_of(model):
    """The averaged minibatch loss of a round (``loss_`` of ``_average``'s model)."""
    return model.loss_
