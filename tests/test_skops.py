"""Saving estimators and pipelines with skops: exact round trips, crnn's stable trusted types."""

import importlib
import os
import pickle

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import crnn
from crnn import RNNClassifier, RNNForecaster, RNNRegressor
from crnn.preprocessing import SequenceScaler

sio = pytest.importorskip("skops.io", reason="skops is optional: pip install crnn[skops]")

TRUSTED = crnn.skops_trusted_types()

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

rng = np.random.default_rng(0)
X3 = rng.normal(size=(40, 6, 2))
X2 = rng.normal(size=(40, 6)) * 3 + 1
SERIES = np.sin(np.arange(120) / 3) * 10 + 20
SMALL = {"hidden_layer_sizes": (5,), "max_iter": 3, "random_state": 0}


def _fit_all():
    """``(name, fitted estimator, input)`` for each estimator and pattern, bare or in pipelines."""
    labels = (X3[..., 0] > 0).astype(int)
    values = X3.sum(axis=2)
    ragged = [x[: 3 + i % 4] for i, x in enumerate(X3)]
    return [
        ("classifier seq2vec", RNNClassifier(**SMALL).fit(X3, labels[:, -1]), X3),
        ("classifier seq2seq", RNNClassifier(cell="gru", **SMALL).fit(X3, labels), X3),
        (
            "classifier encdec",
            RNNClassifier(pattern="encdec", **SMALL).fit(X3, labels[:, :3]),
            X3,
        ),
        ("regressor seq2seq sgd", RNNRegressor(solver="sgd", **SMALL).fit(X3, values), X3),
        (
            "regressor ragged float64",
            RNNRegressor(dtype="float64", **SMALL).fit(ragged, [r.sum(axis=1) for r in ragged]),
            ragged,
        ),
        (
            "regressor vec2seq",
            RNNRegressor(pattern="vec2seq", cell="rnn", **SMALL).fit(X2, values[:, :4]),
            X2,
        ),
        (
            "pipeline regressor",
            make_pipeline(StandardScaler(), RNNRegressor(**SMALL)).fit(X2, X2.sum(axis=1)),
            X2,
        ),
        (
            "pipeline classifier",
            make_pipeline(StandardScaler(), RNNClassifier(**SMALL)).fit(X2, X2[:, -1] > 1),
            X2,
        ),
        (
            "pipeline sequence scaler",
            make_pipeline(SequenceScaler(), RNNClassifier(**SMALL)).fit(X3, labels),
            X3,
        ),
        (
            "forecaster",
            RNNForecaster(RNNRegressor(**SMALL), window=5, horizon=2).fit(SERIES),
            SERIES[:60],
        ),
    ]


NAMES = [
    "classifier seq2vec",
    "classifier seq2seq",
    "classifier encdec",
    "regressor seq2seq sgd",
    "regressor ragged float64",
    "regressor vec2seq",
    "pipeline regressor",
    "pipeline classifier",
    "pipeline sequence scaler",
    "forecaster",
]


@pytest.fixture(scope="module")
def fitted():
    cases = {name: (model, X) for name, model, X in _fit_all()}
    assert list(cases) == NAMES
    return cases


def _predictions(model, X):
    out = [model.predict(X)]
    if hasattr(model, "predict_proba"):
        out.append(model.predict_proba(X))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_is_exact(name, fitted, tmp_path):
    model, X = fitted[name]
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    loaded = sio.load(path, trusted=TRUSTED)
    assert type(loaded) is type(model)
    for expected, got in zip(_predictions(model, X), _predictions(loaded, X), strict=True):
        if isinstance(expected, list):
            for e, g in zip(expected, got, strict=True):
                np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_array_equal(got, expected)
    assert repr(loaded.get_params()) == repr(model.get_params())


def test_training_continues_exactly_after_a_round_trip():
    """The optimizer's moments and the random state are saved: partial_fit goes on identically."""
    y = X3.sum(axis=2)
    model = RNNRegressor(**SMALL).fit(X3, y)
    loaded = sio.loads(sio.dumps(model), trusted=TRUSTED)
    model.partial_fit(X3, y)
    loaded.partial_fit(X3, y)
    np.testing.assert_array_equal(loaded.params_, model.params_)


def test_crnn_save_keeps_the_model_but_not_the_optimizer(tmp_path):
    """What the README says of the two formats: only skops continues training exactly."""
    y = X3.sum(axis=2)
    model = RNNRegressor(**SMALL).fit(X3, y)
    crnn.save(model, tmp_path / "model.npz")
    from_npz = crnn.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(from_npz.predict(X3), model.predict(X3))
    from_skops = sio.loads(sio.dumps(model), trusted=TRUSTED)
    for m in (model, from_npz, from_skops):
        m.partial_fit(X3, y)
    np.testing.assert_array_equal(from_skops.params_, model.params_)
    assert not np.allclose(from_npz.params_, model.params_, rtol=1e-6, atol=0)


def test_trusted_types_are_exactly_what_files_hold(fitted):
    """Every name is needed by some file, and no file needs another crnn type."""
    needed = set()
    for model, _ in fitted.values():
        untrusted = set(sio.get_untrusted_types(data=sio.dumps(model)))
        assert untrusted <= set(TRUSTED)
        needed |= untrusted
    assert needed == set(TRUSTED)


@pytest.mark.parametrize("name", TRUSTED)
def test_trusted_names_are_public_paths(name):
    """Stored names do not follow the private modules the classes are defined in."""
    module, attribute = name.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), attribute)
    assert f"{cls.__module__}.{cls.__qualname__}" == name
    assert module in ("crnn", "crnn.preprocessing")  # public modules only


def test_pickle_stores_the_public_paths_too(fitted):
    model = fitted["regressor seq2seq sgd"][0]
    data = pickle.dumps(model)
    assert b"crnn._estimators" not in data and b"crnn._optim" not in data
    np.testing.assert_array_equal(pickle.loads(data).predict(X3), model.predict(X3))


def test_untrusted_types_are_refused(fitted):
    data = sio.dumps(fitted["pipeline regressor"][0])
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="crnn.RNNRegressor"):
        sio.loads(data)
    # Trusting crnn's types does not trust anything else a file holds.
    hostile = make_pipeline(FunctionTransformer(os.system), RNNRegressor(**SMALL))  # not fitted
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="posix.system"):
        sio.loads(sio.dumps(hostile), trusted=TRUSTED)


def test_crnn_save_points_pipelines_to_skops(fitted, tmp_path):
    with pytest.raises(
        TypeError, match=r"skops\.io\.load\(path, trusted=crnn.skops_trusted_types\(\)"
    ):
        crnn.save(fitted["pipeline regressor"][0], tmp_path / "model.npz")
