"""DataFrames: column names are recorded at fit and checked at predict, as scikit-learn does."""

import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import crnn
from crnn import RNNClassifier, RNNRegressor

pd = pytest.importorskip("pandas", reason="pandas is optional")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = {"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0}
rng = np.random.default_rng(0)
VALUES = rng.normal(size=(30, 8))
STEPS = [f"t{i}" for i in range(8)]


@pytest.fixture(scope="module")
def fitted():
    X = pd.DataFrame(VALUES, columns=STEPS)
    return RNNRegressor(**SMALL).fit(X, VALUES.sum(axis=1)), X


def test_fit_records_the_columns_as_steps(fitted):
    reg, X = fitted
    np.testing.assert_array_equal(reg.feature_names_in_, STEPS)
    assert reg.n_features_in_ == 1  # 2D X: univariate sequences, one step per column
    plain = RNNRegressor(**SMALL).fit(VALUES, VALUES.sum(axis=1))
    assert not hasattr(plain, "feature_names_in_")
    np.testing.assert_array_equal(reg.predict(X), plain.predict(VALUES))


def test_reordered_columns_are_refused(fitted):
    """The issue's case: time reversed at predict used to pass silently."""
    reg, X = fitted
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        reg.predict(X[STEPS[::-1]])
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        reg.predict(X.rename(columns={"t3": "x"}))
    with pytest.raises(ValueError, match="seen at fit time, yet now missing"):
        reg.score(X[STEPS[:6]], VALUES.sum(axis=1))


def test_missing_names_warn_as_in_scikit_learn(fitted):
    reg, X = fitted
    with pytest.warns(UserWarning, match="X does not have valid feature names, but RNNRegressor"):
        reg.predict(VALUES)
    plain = RNNRegressor(**SMALL).fit(VALUES, VALUES.sum(axis=1))
    with pytest.warns(
        UserWarning, match="X has feature names, but RNNRegressor was fitted without"
    ):
        plain.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.predict(X)  # the same columns: no warning


def test_vec2seq_columns_are_features():
    X = pd.DataFrame(VALUES[:, :3], columns=["amplitude", "phase", "offset"])
    reg = RNNRegressor(pattern="vec2seq", **SMALL).fit(X, VALUES[:, :5])
    assert reg.feature_names_in_.tolist() == ["amplitude", "phase", "offset"]
    assert reg.n_features_in_ == 3
    with pytest.raises(ValueError, match="same order"):
        reg.predict(X[["phase", "amplitude", "offset"]])


def test_per_step_classifier_and_a_pandas_pipeline():
    X = pd.DataFrame(VALUES, columns=STEPS)
    labels = (VALUES.cumsum(axis=1) > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), RNNClassifier(**SMALL)).set_output(transform="pandas")
    pipe.fit(X, labels)
    np.testing.assert_array_equal(pipe[-1].feature_names_in_, STEPS)
    assert pipe.predict(X).shape == labels.shape
    with pytest.raises(ValueError, match="same order"):
        pipe[-1].predict(X[STEPS[::-1]])


def test_names_survive_saving(fitted, tmp_path):
    reg, X = fitted
    crnn.save(reg, tmp_path / "model.npz")
    loaded = crnn.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.feature_names_in_, STEPS)
    with pytest.raises(ValueError, match="same order"):
        loaded.predict(X[STEPS[::-1]])
