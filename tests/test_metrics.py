"""crnn.metrics: scikit-learn's scorers over every real step of per-step predictions."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    fbeta_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
)
from sklearn.metrics import get_scorer as sklearn_get_scorer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crnn import RNNClassifier, RNNRegressor
from crnn.metrics import StepScorer, get_scorer, make_step_scorer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _tagging(n=400, steps=20, seed=0):
    """The issue's tagging task: X (n, steps, 2), three labels per step."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, steps, 2))
    Y = (X[..., 0] > 0).astype(int) + (X.cumsum(axis=1)[..., 1] > 1)
    return X, Y


@pytest.fixture(scope="module")
def tagger():
    X, Y = _tagging()
    clf = RNNClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, Y)
    return clf, X, Y


@pytest.fixture(scope="module")
def seq2seq_regressor():
    X, _ = _tagging(n=200)
    Y = X[..., 0].cumsum(axis=1)
    reg = RNNRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, Y)
    return reg, X, Y


def test_sklearn_named_scorers_fail_on_per_step_tasks(tagger, seq2seq_regressor):
    """What the step scorers are for: scikit-learn's own refuse these models."""
    clf, X, Y = tagger
    with pytest.raises(ValueError, match="multiclass-multioutput"):
        sklearn_get_scorer("f1_macro")(clf, X, Y)
    with pytest.raises(ValueError, match="dim 3"):
        sklearn_get_scorer("neg_log_loss")(clf, X, Y)
    reg, X, Y = seq2seq_regressor
    with pytest.raises(ValueError, match="dim 3"):
        sklearn_get_scorer("neg_mean_squared_error")(reg, X, Y[:, :, np.newaxis])
    X_padded, Y_padded = X.copy(), Y.copy()
    X_padded[0, 10:], Y_padded[0, 10:] = np.nan, np.nan
    with pytest.raises(ValueError):  # a list of predictions of different lengths
        sklearn_get_scorer("neg_mean_squared_error")(reg, X_padded, Y_padded)


def test_cross_val_score_with_the_issues_scorers():
    """The issue's reproductions: each fold's score is the metric over all its steps."""
    X, Y = _tagging()
    clf = RNNClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    f1 = cross_val_score(clf, X, Y, cv=2, scoring=get_scorer("f1_macro"))
    ll = cross_val_score(clf, X, Y, cv=2, scoring=get_scorer("neg_log_loss"))
    half = slice(200, None)  # the second fold tests on the second half
    fitted = clone(clf).fit(X[:200], Y[:200])
    expected_f1 = f1_score(Y[half].ravel(), fitted.predict(X[half]).ravel(), average="macro")
    proba = fitted.predict_proba(X[half]).reshape(-1, 3)
    assert f1[1] == pytest.approx(expected_f1)
    assert ll[1] == pytest.approx(-log_loss(Y[half].ravel(), proba))
    assert np.all(ll < 0) and np.all((0 < f1) & (f1 <= 1))
    # accuracy per step is the estimator's own score
    accuracy = cross_val_score(clf, X, Y, cv=2, scoring=get_scorer("accuracy"))
    np.testing.assert_allclose(accuracy, cross_val_score(clf, X, Y, cv=2))


def test_seq2seq_regressor_mean_squared_error(seq2seq_regressor):
    reg, X, Y = seq2seq_regressor
    score = get_scorer("neg_mean_squared_error")(reg, X, Y)
    assert score == pytest.approx(-mean_squared_error(Y.ravel(), reg.predict(X).ravel()))
    assert get_scorer("neg_mean_squared_error")(reg, X, Y[:, :, np.newaxis]) == score
    r2 = get_scorer("r2")(reg, X, Y)
    assert r2 == pytest.approx(reg.score(X, Y))


def test_padding_and_ragged_targets_are_left_out(seq2seq_regressor):
    """NaN-padded arrays and ragged lists: only the real steps are scored."""
    reg, X, Y = seq2seq_regressor
    lengths = np.random.default_rng(1).integers(5, 21, size=len(X))
    X_nan, Y_nan = X.copy(), Y.copy()
    for i, n in enumerate(lengths):
        X_nan[i, n:] = np.nan
        Y_nan[i, n:] = np.nan
    pred = reg.predict([x[:n] for x, n in zip(X, lengths)])
    y_real = np.concatenate([y[:n] for y, n in zip(Y, lengths)])
    expected = -mean_absolute_error(y_real, np.concatenate(pred))
    scorer = get_scorer("neg_mean_absolute_error")
    assert scorer(reg, X_nan, Y_nan) == pytest.approx(expected)
    ragged_X = [x[:n] for x, n in zip(X, lengths)]
    ragged_Y = [y[:n] for y, n in zip(Y, lengths)]
    assert scorer(reg, ragged_X, ragged_Y) == pytest.approx(expected)
    # Targets past the lengths of X (labels cannot be NaN) are ignored, whatever they hold.
    Y_garbage = np.where(np.isnan(Y_nan), 1e6, Y_nan)
    assert scorer(reg, X_nan, Y_garbage) == pytest.approx(expected)


def test_per_step_sample_weights(tagger):
    clf, X, Y = tagger
    X, Y = X[:100], Y[:100]
    weights = np.random.default_rng(2).uniform(0, 2, size=Y.shape)
    weights[:, :5] = 0
    Y_masked = Y.copy()
    Y_masked[:, :5] = 7  # a label the model never saw, at steps of weight zero
    pred, proba = clf.predict(X), clf.predict_proba(X)
    real = weights > 0
    expected = f1_score(Y[real], pred[real], average="macro", sample_weight=weights[real])
    assert get_scorer("f1_macro")(clf, X, Y_masked, sample_weight=weights) == pytest.approx(
        expected
    )
    expected = -log_loss(Y[real], proba[real], sample_weight=weights[real])
    score = get_scorer("neg_log_loss")(clf, X, Y_masked, sample_weight=weights)
    assert score == pytest.approx(expected)
    # One weight per sequence is shared by its steps.
    per_sequence = weights[:, 6]
    expected = accuracy_score(
        Y.ravel(), pred.ravel(), sample_weight=np.repeat(per_sequence, Y.shape[1])
    )
    score = get_scorer("accuracy")(clf, X, Y, sample_weight=per_sequence)
    assert score == pytest.approx(expected)
    with pytest.raises(
        ValueError, match=r"per-step weights need shape \(n_sequences, n_steps\) = \(100, 20\)"
    ):
        get_scorer("accuracy")(clf, X, Y, sample_weight=np.ones((100, 3)))
    with pytest.raises(ValueError, match="nothing to score"):
        get_scorer("accuracy")(clf, X, Y, sample_weight=np.zeros(Y.shape))


@pytest.mark.parametrize("name", ["f1_macro", "neg_log_loss", "accuracy", "roc_auc_ovr"])
def test_seq2vec_classifier_scores_equal_sklearns(name):
    X, Y = _tagging(n=120)
    y = Y[:, -1]
    clf = RNNClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    weights = np.linspace(0.5, 2, len(y))
    assert get_scorer(name)(clf, X, y) == sklearn_get_scorer(name)(clf, X, y)
    assert get_scorer(name)(clf, X, y, sample_weight=weights) == sklearn_get_scorer(name)(
        clf, X, y, sample_weight=weights
    )


def test_seq2vec_regressor_and_other_estimators_equal_sklearns():
    X, _ = _tagging(n=120)
    y = X[:, :, 0].sum(axis=1)
    reg = RNNRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    scorer = get_scorer("neg_mean_squared_error")
    assert scorer(reg, X, y) == sklearn_get_scorer("neg_mean_squared_error")(reg, X, y)
    from sklearn.linear_model import Ridge

    flat = X.reshape(len(X), -1)
    ridge = Ridge().fit(flat, y)
    assert scorer(ridge, flat, y) == sklearn_get_scorer("neg_mean_squared_error")(ridge, flat, y)


def test_grid_search_with_a_dict_of_step_scorers():
    X, Y = _tagging(n=160, steps=10)
    scoring = {name: get_scorer(name) for name in ("f1_macro", "neg_log_loss", "accuracy")}
    search = GridSearchCV(
        RNNClassifier(max_iter=2, random_state=0),
        {"hidden_layer_sizes": [(4,), (8,)]},
        scoring=scoring,
        refit="f1_macro",
        cv=2,
    ).fit(X, Y)
    for name in scoring:
        assert np.isfinite(search.cv_results_[f"mean_test_{name}"]).all()
    default = GridSearchCV(
        RNNClassifier(max_iter=2, random_state=0), {"hidden_layer_sizes": [(4,), (8,)]}, cv=2
    ).fit(X, Y)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_accuracy"], default.cv_results_["mean_test_score"]
    )


def test_pipeline_on_2d_univariate_sequences():
    """In a Pipeline the final step's pattern decides; X reaches it transformed."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 12)) * 10 + 5
    Y = (np.cumsum(X - 5, axis=1) > 0).astype(int)
    pipe = make_pipeline(
        StandardScaler(), RNNClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    ).fit(X, Y)
    expected = f1_score(Y.ravel(), pipe.predict(X).ravel())
    assert get_scorer("f1")(pipe, X, Y) == pytest.approx(expected)
    assert get_scorer("accuracy")(pipe, X, Y) == pytest.approx(pipe.score(X, Y))


def test_encdec_targets_of_other_lengths_are_scored_at_their_lengths():
    rng = np.random.default_rng(4)
    X = [rng.normal(size=(int(n), 1)) for n in rng.integers(3, 8, size=60)]
    Y = [np.cumsum(x[::-1, 0])[: max(1, len(x) - 2)] for x in X]  # other lengths than X
    reg = RNNRegressor(pattern="encdec", hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    reg.fit(X, Y)
    pred = reg.predict(X, n_steps_out=np.array([len(y) for y in Y]))
    expected = -mean_squared_error(np.concatenate(Y), np.concatenate(pred))
    assert get_scorer("neg_mean_squared_error")(reg, X, Y) == pytest.approx(expected)
    assert get_scorer("r2")(reg, X, Y) == pytest.approx(reg.score(X, Y))


def test_make_step_scorer_wraps_any_metric(tagger):
    clf, X, Y = tagger
    scorer = make_step_scorer(fbeta_score, beta=2, average="macro")
    assert isinstance(scorer, StepScorer)
    expected = fbeta_score(Y.ravel(), clf.predict(X).ravel(), beta=2, average="macro")
    assert scorer(clf, X, Y) == pytest.approx(expected)
    loss = make_step_scorer(log_loss, response_method="predict_proba", greater_is_better=False)
    assert loss(clf, X, Y) == pytest.approx(get_scorer("neg_log_loss")(clf, X, Y))
    assert get_scorer(scorer) is scorer
    with pytest.raises(TypeError, match="name of a scikit-learn scorer"):
        get_scorer(3)
    with pytest.raises(ValueError, match="not a valid scoring value"):
        get_scorer("f2_macro")
