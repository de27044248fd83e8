"""Scorers for per-step predictions, usable wherever scikit-learn takes ``scoring``.

scikit-learn's scorers see one target per sample, so on a tagging classifier
(y of shape ``(n_sequences, n_steps)``) ``scoring="f1_macro"`` fails with
"multiclass-multioutput is not supported", and ``"neg_log_loss"`` with
"Found array with dim 3". The scorers of this module evaluate the same metric
over every real step of every sequence instead, as if each step were a sample:

>>> import numpy as np
>>> from sklearn.model_selection import cross_val_score
>>> from crnn import RNNClassifier
>>> from crnn.metrics import get_scorer
>>> X = np.random.default_rng(0).normal(size=(60, 10, 2))
>>> Y = (X[..., 0] > 0).astype(int)  # a label per step
>>> clf = RNNClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
>>> cross_val_score(clf, X, Y, cv=3, scoring=get_scorer("f1_macro")).shape
(3,)

Padding does not count: neither the steps past a sequence's length (ragged
lists, NaN-padded arrays) nor, with per-step sample weights, the steps of
weight zero. On a seq2vec model, or any estimator that is not a crnn
sequence model, a scorer returns exactly what the scikit-learn scorer it
wraps returns. Inside a :class:`~sklearn.pipeline.Pipeline` the pattern is
read from the final step.
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import make_scorer
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_sample_weight, _num_samples

from ._data import check_sequences, check_step_weights, is_step_weights, pad_targets

__all__ = ["StepScorer", "get_scorer", "make_step_scorer"]


class StepScorer:
    """A scorer that evaluates a scikit-learn scorer over every real step.

    Build it with :func:`get_scorer` or :func:`make_step_scorer`.

    Parameters
    ----------
    scorer : callable
        A scikit-learn scorer, ``scorer(estimator, X, y, sample_weight=None)``,
        such as ``sklearn.metrics.get_scorer("f1_macro")``.

    Notes
    -----
    ``scorer(estimator, X, y, sample_weight=None)`` takes ``sample_weight`` of
    shape ``(n_sequences,)`` (shared by the steps of each sequence) or, for the
    per-step patterns, ``(n_sequences, n_steps)``: one weight per step, zero
    leaving a step out.
    """

    def __init__(self, scorer):
        self.scorer = scorer

    def __repr__(self):
        return f"StepScorer({self.scorer!r})"

    def __call__(self, estimator, X, y, sample_weight=None):
        """Score ``estimator`` on ``X`` against ``y``.

        Parameters
        ----------
        estimator : object
            A fitted estimator, or a Pipeline ending in one.
        X : array-like or list of array-like
            The input sequences, as for the estimator's ``predict``.
        y : array-like or list of array-like
            The true targets, as for the estimator's ``fit``.
        sample_weight : array-like of shape (n_sequences,) or (n_sequences, n_steps), \
                default=None
            Weights of the sequences, or of the steps of per-step targets.

        Returns
        -------
        score : float
            The wrapped scorer's value, over sequences (seq2vec) or over all
            real steps of all sequences.
        """
        final, Xt = _final_step(estimator, X)
        pattern = getattr(final, "pattern_", None)
        if pattern in (None, "seq2vec"):
            weights = {} if sample_weight is None else {"sample_weight": sample_weight}
            return self.scorer(estimator, X, y, **weights)
        n = _num_samples(Xt)
        nan_padding = not is_classifier(final)
        if pattern == "seq2seq":
            # Outputs follow the steps of X: the targets past each sequence's length are padding.
            _, lengths = check_sequences(Xt, dtype=np.float64)
            values, lengths = pad_targets(y, n, lengths=lengths, nan_padding=nan_padding)
            predict_params = {}
        else:
            values, lengths = pad_targets(y, n, nan_padding=nan_padding)
            predict_params = {"n_steps_out": lengths}
        keep = np.arange(values.shape[1]) < lengths[:, np.newaxis]
        weights = {}
        if sample_weight is not None:
            if is_step_weights(sample_weight):
                step_weight = check_step_weights(sample_weight, lengths)
            else:
                step_weight = np.broadcast_to(
                    _check_sample_weight(sample_weight, values)[:, np.newaxis], keep.shape
                )
            keep &= step_weight != 0
            weights["sample_weight"] = step_weight[keep]
        if not keep.any():
            raise ValueError("No step has a positive sample weight: there is nothing to score.")
        responses = _StepResponses(final, keep, predict_params)
        return self.scorer(responses, Xt, values[keep], **weights)


def get_scorer(scoring):
    """The per-step version of a scikit-learn scorer.

    Parameters
    ----------
    scoring : str or callable
        The name of a scikit-learn scorer (see
        :func:`sklearn.metrics.get_scorer_names`), such as ``"f1_macro"``,
        ``"neg_log_loss"`` or ``"neg_mean_squared_error"``; or a scorer
        callable ``scorer(estimator, X, y, sample_weight=None)``, such as one
        made by :func:`sklearn.metrics.make_scorer`. A :class:`StepScorer` is
        returned as it is.

    Returns
    -------
    scorer : StepScorer
        Pass it as ``scoring`` to :func:`~sklearn.model_selection.cross_val_score`,
        :class:`~sklearn.model_selection.GridSearchCV` and the like, alone or in
        a dict of several.

    Examples
    --------
    >>> from crnn.metrics import get_scorer
    >>> get_scorer("f1_macro")
    StepScorer(make_scorer(f1_score, ...))
    """
    if isinstance(scoring, StepScorer):
        return scoring
    if isinstance(scoring, str):
        return StepScorer(_sklearn_get_scorer(scoring))
    if callable(scoring):
        return StepScorer(scoring)
    raise TypeError(
        f"scoring must be the name of a scikit-learn scorer or a scorer callable, got {scoring!r}."
    )


def make_step_scorer(score_func, *, response_method="predict", greater_is_better=True, **kwargs):
    """Make a per-step scorer from a metric, as :func:`sklearn.metrics.make_scorer` does.

    Parameters
    ----------
    score_func : callable
        A metric ``score_func(y_true, y_pred, **kwargs)``, such as
        :func:`sklearn.metrics.f1_score`.
    response_method : {"predict", "predict_proba", "predict_log_proba"} or list, \
            default="predict"
        The estimator's method whose per-step output ``y_pred`` is.
    greater_is_better : bool, default=True
        Whether higher values of ``score_func`` are better; if not, the scorer
        returns its negation, as scikit-learn's do.
    **kwargs
        Further arguments of ``score_func``.

    Returns
    -------
    scorer : StepScorer
        ``score_func`` over every real step, for the ``scoring`` of scikit-learn's
        model selection tools.

    Examples
    --------
    >>> from sklearn.metrics import fbeta_score
    >>> from crnn.metrics import make_step_scorer
    >>> scorer = make_step_scorer(fbeta_score, beta=2, average="macro")
    """
    return StepScorer(
        make_scorer(
            score_func,
            response_method=response_method,
            greater_is_better=greater_is_better,
            **kwargs,
        )
    )


def _final_step(estimator, X):
    """The last step of a (nested) Pipeline and X as that step receives it."""
    while hasattr(estimator, "steps"):
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator.steps[-1][1]
    return estimator, X


def _has(name):
    return lambda self: hasattr(self.estimator, name)


class _StepResponses:
    """An estimator's per-step outputs at the kept steps, one row per step.

    What a scikit-learn scorer sees in place of the estimator: it has the
    estimator's tags and classes, and its response methods return the kept
    steps ``(n_kept,)`` or ``(n_kept, k)`` in the order of ``values[keep]``.
    """

    def __init__(self, estimator, keep, predict_params):
        self.estimator, self.keep, self.predict_params = estimator, keep, predict_params

    def __sklearn_tags__(self):
        return get_tags(self.estimator)

    @property
    def classes_(self):
        return self.estimator.classes_

    def _steps(self, method, X):
        out = getattr(self.estimator, method)(X, **self.predict_params)
        if isinstance(out, list):  # sequences of different lengths: pad to keep's width
            padded = np.zeros(self.keep.shape + out[0].shape[1:], dtype=out[0].dtype)
            for i, seq in enumerate(out):
                padded[i, : len(seq)] = seq
            out = padded
        return out[self.keep]

    @available_if(_has("predict"))
    def predict(self, X):
        return self._steps("predict", X)

    @available_if(_has("predict_proba"))
    def predict_proba(self, X):
        return self._steps("predict_proba", X)

    @available_if(_has("predict_log_proba"))
    def predict_log_proba(self, X):
        return self._steps("predict_log_proba", X)

    @available_if(_has("decision_function"))
    def decision_function(self, X):
        return self._steps("decision_function", X)
