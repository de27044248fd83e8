"""crnn.preprocessing.SequenceScaler: statistics, forms, streaming, scikit-learn checks."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from crnn import RNNClassifier
from crnn.preprocessing import SequenceScaler

# scikit-learn's checks pass 2D X, which the scaler reads as univariate sequences (columns
# are steps): n_features_in_ is 1, and X with another number of columns is a valid input.
_COLUMNS_ARE_STEPS = (
    "2D X is read as univariate sequences (columns are time steps): n_features_in_ is 1 "
    "and a different number of columns is a valid sequence length, not a feature mismatch"
)
EXPECTED_FAILED_CHECKS = {
    "check_n_features_in": _COLUMNS_ARE_STEPS,
    "check_n_features_in_after_fitting": _COLUMNS_ARE_STEPS,
    # Fails only at its feature-count step; test_transformer_general_without_feature_count
    # runs the rest of it.
    "check_transformer_general": _COLUMNS_ARE_STEPS,
}


@parametrize_with_checks(
    [SequenceScaler(), SequenceScaler(with_mean=False), SequenceScaler(with_std=False)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _ragged(seed=0, n=12, n_features=3):
    rng = np.random.default_rng(seed)
    scales = np.array([1.0, 1e3, 1e-3])[:n_features]
    return [
        rng.normal(loc=5.0, size=(int(k), n_features)) * scales for k in rng.integers(1, 9, size=n)
    ]


def _nan_padded(seqs):
    out = np.full((len(seqs), max(len(s) for s in seqs), seqs[0].shape[1]), np.nan)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def test_transformer_general_without_feature_count():
    """check_transformer_general without its feature-count step (see EXPECTED_FAILED_CHECKS)."""
    X = np.random.default_rng(0).normal(size=(30, 4))
    scaler = SequenceScaler()
    np.testing.assert_allclose(scaler.fit_transform(X), clone(scaler).fit(X).transform(X))
    np.testing.assert_allclose(scaler.fit(X.tolist()).transform(X.tolist()), scaler.transform(X))


def test_3d_equals_standard_scaler_over_all_steps():
    X = np.random.default_rng(1).normal(3.0, [1.0, 50.0], size=(20, 7, 2))
    scaler = SequenceScaler().fit(X)
    reference = StandardScaler().fit(X.reshape(-1, 2))
    np.testing.assert_allclose(scaler.mean_, reference.mean_)
    np.testing.assert_allclose(scaler.var_, reference.var_)
    np.testing.assert_allclose(scaler.scale_, reference.scale_)
    assert scaler.n_samples_seen_ == 140 and scaler.n_features_in_ == 2
    Z = scaler.transform(X)
    assert Z.shape == X.shape
    np.testing.assert_allclose(Z.reshape(-1, 2), reference.transform(X.reshape(-1, 2)))


def test_ragged_list_keeps_its_form_and_ignores_nothing():
    seqs = _ragged()
    scaler = SequenceScaler().fit(seqs)
    flat = np.concatenate(seqs)
    reference = StandardScaler().fit(flat)
    np.testing.assert_allclose(scaler.mean_, reference.mean_)
    np.testing.assert_allclose(scaler.scale_, reference.scale_)
    assert scaler.n_samples_seen_ == len(flat)
    Z = scaler.transform(seqs)
    assert isinstance(Z, list) and [z.shape for z in Z] == [s.shape for s in seqs]
    np.testing.assert_allclose(np.concatenate(Z), reference.transform(flat))
    back = scaler.inverse_transform(Z)
    for b, s in zip(back, seqs):
        np.testing.assert_allclose(b, s)


def test_univariate_list_items_stay_1d():
    seqs = [np.arange(4.0), np.arange(2.0) * 10]
    Z = SequenceScaler().fit_transform(seqs)
    assert [z.shape for z in Z] == [(4,), (2,)]
    flat = np.concatenate(seqs)
    np.testing.assert_allclose(np.concatenate(Z), (flat - flat.mean()) / flat.std())


def test_nan_padding_is_excluded_and_kept():
    seqs = _ragged(seed=2)
    X = _nan_padded(seqs)
    scaler = SequenceScaler().fit(X)
    ragged = SequenceScaler().fit(seqs)
    np.testing.assert_allclose(scaler.mean_, ragged.mean_)
    np.testing.assert_allclose(scaler.scale_, ragged.scale_)
    Z = scaler.transform(X)
    np.testing.assert_array_equal(np.isnan(Z), np.isnan(X))
    for i, z in enumerate(ragged.transform(seqs)):
        np.testing.assert_allclose(Z[i, : len(z)], z)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X)


def test_2d_is_univariate_sequences():
    X = np.random.default_rng(3).normal(2.0, 4.0, size=(10, 6))
    X[0, 4:] = np.nan  # padding
    scaler = SequenceScaler().fit(X)
    real = X[~np.isnan(X)]
    assert scaler.n_features_in_ == 1 and scaler.n_samples_seen_ == real.size
    np.testing.assert_allclose(scaler.mean_, [real.mean()])
    np.testing.assert_allclose(scaler.scale_, [real.std()])
    Z = scaler.transform(X)
    assert Z.shape == X.shape
    np.testing.assert_allclose(Z, (X - real.mean()) / real.std())  # NaN where X is


@pytest.mark.parametrize("with_mean", [True, False])
@pytest.mark.parametrize("with_std", [True, False])
def test_partial_fit_equals_fit(with_mean, with_std):
    seqs = _ragged(seed=4, n=30)
    whole = SequenceScaler(with_mean=with_mean, with_std=with_std).fit(seqs)
    parts = SequenceScaler(with_mean=with_mean, with_std=with_std)
    for lo, hi in [(0, 1), (1, 7), (7, 8), (8, 30)]:
        parts.partial_fit(seqs[lo:hi])
    assert parts.n_samples_seen_ == whole.n_samples_seen_ == sum(len(s) for s in seqs)
    reference = StandardScaler(with_mean=with_mean, with_std=with_std).fit(np.concatenate(seqs))
    for name in ("mean_", "var_", "scale_"):
        expected = getattr(reference, name)
        for scaler in (whole, parts):
            got = getattr(scaler, name)
            if expected is None:
                assert got is None, name
            else:
                np.testing.assert_allclose(got, expected, rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(
        np.concatenate(parts.transform(seqs)), reference.transform(np.concatenate(seqs))
    )


def test_constant_feature_is_only_centred():
    X = np.zeros((5, 4, 2))
    X[..., 0] = 7.0
    X[..., 1] = np.arange(4.0)
    scaler = SequenceScaler().fit(X)
    reference = StandardScaler().fit(X.reshape(-1, 2))
    np.testing.assert_allclose(scaler.scale_, reference.scale_)
    assert scaler.scale_[0] == 1.0
    np.testing.assert_allclose(scaler.transform(X)[..., 0], 0.0)


def test_float32_stays_float32():
    X = np.random.default_rng(5).normal(size=(4, 3, 2)).astype(np.float32)
    assert SequenceScaler().fit_transform(X).dtype == np.float32
    assert SequenceScaler().fit_transform([X[0], X[1, :2]])[1].dtype == np.float32
    assert SequenceScaler().fit_transform(X.astype(int)).dtype == np.float64


def test_bad_input_is_refused_clearly():
    scaler = SequenceScaler().fit(np.ones((3, 4, 2)))
    with pytest.raises(ValueError, match="has 3 features per step.*fitted with 2"):
        scaler.transform(np.ones((3, 4, 3)))
    with pytest.raises(ValueError, match="has 3 features per step"):
        scaler.partial_fit([np.ones((2, 3)), np.ones((4, 3))])
    with pytest.raises(ValueError, match="NaN"):
        SequenceScaler().fit(np.array([[np.nan, 1.0, 2.0]]))


def test_pipeline_in_front_of_a_classifier():
    """Features on scales 1 and 1e4, sequences of different lengths, in a Pipeline."""
    rng = np.random.default_rng(6)
    n, steps = 300, 10
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, steps, 2))
    X[..., 0] += np.where(y == 1, 0.8, -0.8)[:, np.newaxis]  # the class is in feature 0
    X[..., 1] = 1e4 * X[..., 1] + 5e4  # a large, useless feature
    X_list = [x[: rng.integers(5, steps + 1)] for x in X]
    model = RNNClassifier(
        cell="gru", hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=1e-2, random_state=0
    )
    pipe = make_pipeline(SequenceScaler(), model).fit(X_list[:200], y[:200])
    assert pipe.score(X_list[200:], y[200:]) > 0.9
    assert isinstance(pipe[0].transform(X_list[:3]), list)
