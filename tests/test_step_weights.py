"""Per-step sample weights: sample_weight (n_sequences, n_steps) weights and masks steps."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, r2_score

from crnn import RNNClassifier, RNNRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 8, 2))
VALUES = X.sum(axis=2).cumsum(axis=1)
LABELS = (VALUES > 0).astype(int)
MASK = rng.uniform(size=VALUES.shape) < 0.3  # the steps given weight zero
WEIGHTS = np.where(MASK, 0.0, rng.uniform(0.5, 2, size=VALUES.shape))
SMALL = {"hidden_layer_sizes": (6,), "max_iter": 3, "random_state": 0, "dtype": "float64"}


@pytest.mark.parametrize("fit", ["fit", "partial_fit"])
def test_masked_steps_do_not_influence_training(fit):
    """Garbage targets at steps of weight zero give the very model clean targets give."""
    garbage_values = np.where(MASK, np.nan, VALUES)
    garbage_labels = np.where(MASK, 99, LABELS)  # a label seen nowhere else
    extra = {"classes": [0, 1]} if fit == "partial_fit" else {}
    for Estimator, clean, garbage, kwargs in [
        (RNNRegressor, VALUES, garbage_values, {}),
        (RNNClassifier, LABELS, garbage_labels, extra),
    ]:
        a = getattr(Estimator(**SMALL), fit)(X, clean, sample_weight=WEIGHTS, **kwargs)
        b = getattr(Estimator(**SMALL), fit)(X, garbage, sample_weight=WEIGHTS, **kwargs)
        np.testing.assert_array_equal(a.params_, b.params_)
        unweighted = getattr(Estimator(**SMALL), fit)(X, clean, **kwargs)
        assert not np.allclose(a.params_, unweighted.params_)
    assert b.classes_.tolist() == [0, 1]


def test_per_sequence_weights_spread_over_steps_are_the_same_weights():
    per_sequence = rng.uniform(0.5, 2, size=len(X))
    a = RNNRegressor(**SMALL).fit(X, VALUES, sample_weight=per_sequence)
    b = RNNRegressor(**SMALL).fit(X, VALUES, sample_weight=np.repeat(per_sequence[:, None], 8, 1))
    np.testing.assert_array_equal(a.params_, b.params_)


def test_masking_the_tail_of_each_sequence_equals_cutting_it():
    """With the inputs unscaled (cutting X changes their statistics, masking y does not) and
    no recurrent dropout (each minibatch is sorted by the lengths of X, which differ between
    the two fits, so the same sequence would draw another row of the dropout mask)."""
    lengths = rng.integers(3, 9, size=len(X))
    tail = np.arange(8) >= lengths[:, None]
    kwargs = {**SMALL, "scale_inputs": False, "recurrent_dropout": 0.0}
    masked = RNNRegressor(**kwargs).fit(X, VALUES, sample_weight=(~tail).astype(float))
    cut = RNNRegressor(**kwargs).fit(
        [x[:n] for x, n in zip(X, lengths)], [v[:n] for v, n in zip(VALUES, lengths)]
    )
    # Batches are sorted by the lengths of X, so sums run in another order: equal to rounding.
    np.testing.assert_allclose(masked.params_, cut.params_, rtol=1e-8, atol=1e-10)


def test_ragged_targets_take_a_list_of_step_weights():
    ragged_X = [x[: 3 + i % 5] for i, x in enumerate(X)]
    ragged_y = [v[: len(x)] for v, x in zip(VALUES, ragged_X)]
    weights = [w[: len(x)] for w, x in zip(WEIGHTS, ragged_X)]
    padded = np.zeros((len(X), 7))
    for i, w in enumerate(weights):
        padded[i, : len(w)] = w
    a = RNNRegressor(**SMALL).fit(ragged_X, ragged_y, sample_weight=weights)
    b = RNNRegressor(**SMALL).fit(ragged_X, ragged_y, sample_weight=padded)
    np.testing.assert_array_equal(a.params_, b.params_)
    with pytest.raises(ValueError, match=r"sample_weight\[0\] has 4 weights but target sequence"):
        RNNRegressor(**SMALL).fit(ragged_X, ragged_y, sample_weight=[np.ones(4)] * len(X))


def test_score_with_step_weights_leaves_masked_steps_out():
    reg = RNNRegressor(**SMALL).fit(X, VALUES)
    clf = RNNClassifier(**SMALL).fit(X, LABELS)
    keep = ~MASK
    expected = r2_score(VALUES[keep], reg.predict(X)[keep], sample_weight=WEIGHTS[keep])
    assert reg.score(X, np.where(MASK, np.nan, VALUES), sample_weight=WEIGHTS) == pytest.approx(
        expected
    )
    expected = accuracy_score(LABELS[keep], clf.predict(X)[keep], sample_weight=WEIGHTS[keep])
    assert clf.score(X, np.where(MASK, 7, LABELS), sample_weight=WEIGHTS) == pytest.approx(
        expected
    )


def test_encdec_and_early_stopping_take_step_weights():
    y = VALUES[:, :4, None]
    weights = np.ones((len(X), 4))
    weights[:, 0] = 0
    a = RNNRegressor(pattern="encdec", **SMALL).fit(X, y, sample_weight=weights)
    b = RNNRegressor(pattern="encdec", **SMALL).fit(X, y)
    assert not np.allclose(a.params_, b.params_)
    reg = RNNRegressor(early_stopping=True, validation_fraction=0.2, **SMALL)
    reg.fit(X, VALUES, sample_weight=WEIGHTS)
    assert len(reg.validation_scores_) == reg.n_iter_


def test_bad_step_weights_are_refused_clearly():
    reg = RNNRegressor(**SMALL)
    with pytest.raises(ValueError, match=r"per-step weights need shape .* = \(40, 8\)"):
        reg.fit(X, VALUES, sample_weight=np.ones((40, 5)))
    with pytest.raises(ValueError, match="finite and non-negative at every real step"):
        reg.fit(X, VALUES, sample_weight=-WEIGHTS)
    with pytest.raises(ValueError, match="one target per sequence: pass sample_weight of shape"):
        reg.fit(X, VALUES[:, -1], sample_weight=WEIGHTS)
    with pytest.raises(ValueError, match=r"sum to zero: at least one sequence \(or step\)"):
        reg.fit(X, VALUES, sample_weight=np.zeros((40, 8)))
    fitted = reg.fit(X, VALUES)
    with pytest.raises(ValueError, match=r"per-step weights need shape"):
        fitted.score(X, VALUES, sample_weight=np.ones((40, 3)))
