"""The estimators' readout, pool_steps, recurrent_dropout and input_dropout, through the public
API: a long-sequence task the pooled readouts solve and the final state does not, padding
invariance, what the per-step patterns do with them, save/load and pickle."""

import pickle

import numpy as np
import pytest

from crnn import RNNClassifier, RNNRegressor, load, save
from crnn.functional import pool_steps

READOUTS = ("last", "mean", "max", "attention")


def shape_task(n, T=200, seed=0):
    """A 12-step bump, up (class 1) or down (class 0), at a random position in unit noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, 1))
    y = rng.integers(0, 2, size=n)
    bump = 3 * np.sin(np.linspace(0, np.pi, 12))
    for i, start in enumerate(rng.integers(0, T - 12, size=n)):
        X[i, start : start + 12, 0] += bump if y[i] else -bump
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def shape_scores():
    X, y = shape_task(300, seed=0)
    X_test, y_test = shape_task(300, seed=1)

    def score(**params):
        est = RNNClassifier(
            cell="gru", hidden_layer_sizes=16, max_iter=20, random_state=0, **params
        )
        with pytest.warns(Warning):  # max_iter reached
            est.fit(X, y)
        return est.score(X_test, y_test)

    scores = {readout: score(readout=readout) for readout in READOUTS}
    scores["last, pool_steps=8"] = score(readout="last", pool_steps=8)
    return scores


def test_pooled_readouts_find_a_shape_the_final_state_forgets(shape_scores):
    """200 steps of noise: the final state stays near chance, every pooling finds the bump."""
    assert shape_scores["last"] < 0.7
    assert shape_scores["max"] > 0.95
    for readout in ("mean", "attention", "last, pool_steps=8"):
        assert shape_scores[readout] > shape_scores["last"] + 0.15, (readout, shape_scores)


def ragged_data(seed=0, n=12):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, size=n)
    X = [rng.normal(size=(L, 2)).astype(np.float32) for L in lengths]
    y = np.array([int(x[:, 0].sum() > 0) for x in X])
    return X, y


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("readout", READOUTS)
def test_prediction_is_the_same_alone_and_in_a_padded_batch(readout, bidirectional):
    X, y = ragged_data()
    est = RNNClassifier(
        cell="lstm",
        hidden_layer_sizes=5,
        readout=readout,
        bidirectional=bidirectional,
        max_iter=3,
        random_state=0,
        recurrent_dropout=0.2,
        input_dropout=0.1,
        pool_steps=2,
    )
    with pytest.warns(Warning):
        est.fit(X, y)
    batch = est.predict_proba(X)
    alone = np.concatenate([est.predict_proba([x]) for x in X])
    np.testing.assert_allclose(batch, alone, rtol=1e-5, atol=1e-6)
    expected_size = {"attention": (10 + 2) * 2 if bidirectional else (5 + 2) * 1}
    last = RNNClassifier(
        cell="lstm", hidden_layer_sizes=5, bidirectional=bidirectional, max_iter=1, random_state=0
    )
    with pytest.warns(Warning):
        last.fit(X, y)
    assert est.params_.size == last.params_.size + expected_size.get(readout, 0)


def test_per_step_patterns_ignore_the_readout():
    X, _ = ragged_data(seed=1)
    y = [x[:, 0] * 2 for x in X]  # seq2seq regression
    fits = []
    for readout in ("last", "attention"):
        est = RNNRegressor(
            cell="gru", hidden_layer_sizes=4, readout=readout, max_iter=2, random_state=0
        )
        with pytest.warns(Warning):
            fits.append(est.fit(X, y))
    assert fits[0].pattern_ == "seq2seq"
    np.testing.assert_array_equal(fits[0].params_, fits[1].params_)


@pytest.mark.parametrize("pattern", ["seq2seq", "vec2seq"])
def test_pool_steps_is_refused_where_outputs_follow_the_input_steps(pattern):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, 5, 2)) if pattern == "seq2seq" else rng.normal(size=(6, 2))
    y = rng.normal(size=(6, 5))
    est = RNNRegressor(pattern=pattern, hidden_layer_sizes=3, pool_steps=2, max_iter=1)
    with pytest.raises(ValueError, match="pool_steps applies to the seq2vec and encdec"):
        est.fit(X, y)


@pytest.mark.parametrize("pattern", ["seq2vec", "encdec"])
def test_pool_steps_is_training_on_the_pooled_input(pattern):
    """pool_steps=k fits exactly what pooling X first and fitting without it does."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 22, 2)).astype(np.float32)  # 22 = 5 blocks of 4 and one of 2
    if pattern == "seq2vec":
        Estimator, y = RNNClassifier, (X[:, :, 0].mean(axis=1) > 0).astype(int)
    else:
        Estimator, y = RNNRegressor, rng.normal(size=(20, 3, 2))
    pooled, lengths = pool_steps(X.swapaxes(0, 1), 4)
    pooled = pooled.swapaxes(0, 1)
    assert pooled.shape[1] == 6 and (lengths == 6).all()
    np.testing.assert_allclose(pooled[:, 5], X[:, 20:].mean(axis=1), rtol=1e-6)
    params = dict(
        pattern=pattern,
        cell="gru",
        hidden_layer_sizes=4,
        max_iter=3,
        random_state=0,
        recurrent_dropout=0.1,
        input_dropout=0.1,
        # The input statistics are of the raw steps, whose spread pooling shrinks.
        scale_inputs=False,
    )
    with pytest.warns(Warning):
        on_raw = Estimator(pool_steps=4, **params).fit(X, y)
        on_pooled = Estimator(**params).fit(pooled, y)
    np.testing.assert_allclose(on_raw.params_, on_pooled.params_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(on_raw.predict(X), on_pooled.predict(pooled), rtol=1e-6)


def test_dropouts_act_in_training_only():
    X, y = ragged_data(seed=5, n=16)
    base = dict(cell="lstm", hidden_layer_sizes=6, max_iter=3, random_state=0)
    with pytest.warns(Warning):
        plain = RNNClassifier(**base).fit(X, y)
        dropped = RNNClassifier(recurrent_dropout=0.3, input_dropout=0.3, **base).fit(X, y)
    assert not np.allclose(plain.params_, dropped.params_)
    first = dropped.predict_proba(X)
    np.testing.assert_array_equal(first, dropped.predict_proba(X))  # no masks at prediction
    dropped.set_params(recurrent_dropout=0.0, input_dropout=0.0)
    np.testing.assert_array_equal(first, dropped.predict_proba(X))
    # partial_fit trains with them too: the same update as fit's single epoch
    one_epoch = dict(base, max_iter=1, shuffle=False, recurrent_dropout=0.3, readout="attention")
    with pytest.warns(Warning):
        fitted = RNNClassifier(**one_epoch).fit(X, y)
    partial = RNNClassifier(**one_epoch).partial_fit(X, y, classes=[0, 1])
    np.testing.assert_allclose(partial.params_, fitted.params_, rtol=1e-6, atol=1e-7)


def test_save_load_and_pickle_round_trip(tmp_path):
    X, y = ragged_data(seed=6)
    est = RNNClassifier(
        cell="gru",
        hidden_layer_sizes=4,
        readout="attention",
        pool_steps=2,
        recurrent_dropout=0.2,
        input_dropout=0.1,
        max_iter=2,
        random_state=0,
    )
    with pytest.warns(Warning):
        est.fit(X, y)
    save(est, tmp_path / "model.crnn")
    for copy in (load(tmp_path / "model.crnn"), pickle.loads(pickle.dumps(est))):
        assert copy.get_params() == est.get_params()
        np.testing.assert_array_equal(copy.params_, est.params_)
        np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("params", [{"readout": "mean"}, {"pool_steps": 2}])
def test_streaming_needs_the_final_state_readout(params):
    X, y = ragged_data(seed=7)
    est = RNNClassifier(hidden_layer_sizes=3, max_iter=1, **params)
    with pytest.warns(Warning):
        est.fit(X, y)
    with pytest.raises(ValueError, match="needs readout='last' and pool_steps=None"):
        est.predict(X, return_state=True)


@pytest.mark.parametrize(
    "params",
    [
        {"readout": "median"},
        {"pool_steps": 0},
        {"recurrent_dropout": 1.0},
        {"input_dropout": -0.1},
    ],
)
def test_bad_values_are_refused(params):
    X, y = ragged_data(seed=8)
    with pytest.raises(ValueError, match=f"'{next(iter(params))}' parameter"):
        RNNClassifier(**params).fit(X, y)
