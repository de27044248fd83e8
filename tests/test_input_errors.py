"""Input errors that speak of sequences: what was read, and how to write what was meant."""

import re

import numpy as np
import pytest

from crnn import RNNClassifier, RNNRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = {"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0}


def _object_array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


@pytest.fixture(scope="module")
def fitted():
    """A regressor on 3D X with 2 features, and one on 2D univariate X."""
    X = np.random.default_rng(0).normal(size=(20, 5, 2))
    return (
        RNNRegressor(**SMALL).fit(X, X.sum(axis=(1, 2))),
        RNNRegressor(**SMALL).fit(X[..., 0], X[..., 0].sum(axis=1)),
    )


def test_1d_X_says_which_reshape_means_what(fitted):
    X = np.linspace(0, 1, 10_000) * 1.23456789  # dumping it would make a huge message
    for call in (lambda: RNNRegressor(**SMALL).fit(X, X), lambda: fitted[0].predict(X)):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "X.reshape(-1, 1, 1) for 10000 sequences of one step each" in message
        assert "X.reshape(1, -1, 1) for one sequence of 10000 steps" in message
        assert "2D X is read as univariate sequences (n_sequences, n_steps)" in message
        assert len(message) < 400 and "1.23" not in message
    with pytest.raises(ValueError, match=re.escape("X.reshape(-1, 1, 1) for 3 sequences")):
        RNNClassifier(**SMALL).fit([1.0, 2.0, 3.0], [0, 1, 0])


def test_empty_input_has_its_own_message(fitted):
    with pytest.raises(ValueError, match="X is an empty list: it needs at least one sequence"):
        RNNRegressor(**SMALL).fit([], [])
    with pytest.raises(ValueError, match=re.escape("X is empty (shape (0,))")):
        fitted[0].predict(np.array([]))
    with pytest.raises(ValueError, match="X is an empty list: it needs at least one vector"):
        RNNRegressor(pattern="vec2seq", **SMALL).fit([], [])


def test_object_array_of_ragged_sequences_is_the_list_it_holds():
    rng = np.random.default_rng(1)
    ragged = [rng.normal(size=(n, 2)) for n in (3, 5, 4, 2, 6, 3)]
    targets = [x.sum(axis=1) for x in ragged]
    from_list = RNNRegressor(**SMALL).fit(ragged, targets)
    from_objects = RNNRegressor(**SMALL).fit(_object_array(ragged), _object_array(targets))
    assert from_objects.pattern_ == "seq2seq"
    np.testing.assert_array_equal(from_objects.params_, from_list.params_)
    for a, b in zip(from_objects.predict(_object_array(ragged)), from_list.predict(ragged)):
        np.testing.assert_array_equal(a, b)
    # Equal lengths in an object array: the 3D array they stack to.
    same = _object_array([x[:2] for x in ragged])
    np.testing.assert_array_equal(
        from_list.predict(same), from_list.predict(np.stack([x[:2] for x in ragged]))
    )
    # seq2vec labels that are strings stay labels.
    clf = RNNClassifier(**SMALL).fit(_object_array(ragged), _object_array(list("abcabc")))
    assert clf.pattern_ == "seq2vec" and clf.classes_.tolist() == ["a", "b", "c"]


def test_vec2seq_says_what_it_expects():
    X = np.ones((4, 3, 2))
    reg = RNNRegressor(pattern="vec2seq", **SMALL)
    with pytest.raises(ValueError, match=r"vec2seq' takes one vector per sequence.*got shape "):
        reg.fit(X, np.ones((4, 3)))
    with pytest.raises(ValueError, match="use pattern='seq2seq'"):
        reg.fit([np.ones((2, 2)), np.ones((3, 2))], np.ones((2, 3)))
    with pytest.raises(ValueError, match=re.escape("data: X.reshape(-1, 1) for 4 vectors of one")):
        reg.fit(np.ones(4), np.ones((4, 3)))
    fitted = reg.fit(X[:, 0], np.ones((4, 3)))
    with pytest.raises(ValueError, match="the length of each input vector"):
        fitted.predict(np.ones((4, 3)))


def test_feature_count_mismatch_says_how_steps_are_read(fitted):
    three_d, univariate = fitted
    with pytest.raises(ValueError, match=r"pass a 3D X of shape \(n_sequences, n_steps, 2\)"):
        three_d.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match="X has 3 features, but RNNRegressor is expecting 2"):
        three_d.predict(np.ones((3, 5, 3)))
    with pytest.raises(ValueError, match="fitted on univariate sequences: pass a 2D X"):
        univariate.predict(np.ones((3, 5, 2)))


def test_nan_inside_a_sequence_names_the_sequence_and_step():
    with pytest.raises(ValueError, match=r"X\[1\] contains NaN or infinity at step 1"):
        RNNRegressor(**SMALL).fit([np.ones((2, 1)), np.array([[1.0], [np.nan], [2.0]])], [1, 2])
    with pytest.raises(ValueError, match="NaN in sequence 1 at step 2, before later"):
        RNNRegressor(**SMALL).fit(np.array([[1.0, 2, 3, 4], [1, 2, np.nan, 4]]), [1, 2])


def test_empty_sequences_are_named():
    with pytest.raises(ValueError, match=r"X\[1\] is an empty sequence"):
        RNNRegressor(**SMALL).fit([np.ones((2, 1)), np.ones((0, 1))], [1, 2])
    with pytest.raises(ValueError, match="every sequence needs at least one step"):
        RNNRegressor(**SMALL).fit(np.ones((2, 0, 1)), [1, 2])
    with pytest.raises(ValueError, match="sequence 0 is all NaN"):
        RNNRegressor(**SMALL).fit(np.array([[np.nan, np.nan], [1, 2]]), [1, 2])
