"""Tests of crnn.save / crnn.load: exact round trips, no pickle, damaged files refused."""

import errno
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone

from crnn import _persistence
from crnn._estimators import RNNClassifier, RNNRegressor
from crnn._forecast import RNNForecaster
from crnn._persistence import load, save

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class StandIn(RegressorMixin, BaseEstimator):
    """A small estimator whose fitted state uses every kind of value the format supports."""

    def __init__(self, hidden=3, dtype="float32", scale=1.0, random_state=None, inner=None):
        self.hidden = hidden
        self.dtype = dtype
        self.scale = scale
        self.random_state = random_state
        self.inner = inner

    def fit(self, X, y):
        rng = np.random.RandomState(0)
        self.coef_ = np.asfortranarray(
            rng.standard_normal((X.shape[1], self.hidden)).astype(self.dtype)
        )
        self.out_ = rng.standard_normal(self.hidden)
        self.classes_ = np.array(["cat", "dog"])
        self.names_ = np.array(["a", "b"], dtype=object)
        self.loss_curve_ = [1.5, 0.25, float("nan")]
        self.best_loss_ = float("inf")
        self.t_ = np.int64(len(X))
        self.n_iter_ = 3
        self.shapes_ = (X.shape[1], (self.hidden,))
        self.class_weight_ = {0: 1.0, "dog": np.float32(2.5)}
        self.flags_ = np.array([True, False])
        self.validation_scores_ = None
        self.inner_ = StandIn(hidden=1).fit(X[:, :1], y) if self.inner is not None else None
        self._private = object()  # not saved: private state
        return self

    def predict(self, X):
        return np.tanh(X.astype(self.dtype) @ self.coef_) @ self.out_ * self.scale


@pytest.fixture(autouse=True)
def stand_in_classes(monkeypatch):
    """Let the format accept StandIn besides crnn's estimators."""
    classes = {**_persistence._estimator_classes(), "tests.StandIn": StandIn}
    monkeypatch.setattr(_persistence, "_estimator_classes", lambda: classes)


@pytest.fixture
def data():
    rng = np.random.RandomState(1)
    return rng.standard_normal((20, 4)), rng.standard_normal(20)


@pytest.fixture
def saved(tmp_path, data):
    path = tmp_path / "model.npz"
    save(StandIn(inner=StandIn(), random_state=np.random.RandomState(3)).fit(*data), path)
    return path


def assert_same_value(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.flags.f_contiguous == b.flags.f_contiguous
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_value(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same_value(a[key], b[key])
    elif isinstance(a, BaseEstimator):
        assert_same_estimator(a, b)
    elif isinstance(a, np.random.RandomState):
        assert_same_value(a.get_state(), b.get_state())
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def assert_same_estimator(a, b):
    assert type(a) is type(b)
    assert_same_value(a.get_params(deep=False), b.get_params(deep=False))
    assert_same_value(fitted_attributes(a), fitted_attributes(b))


def fitted_attributes(estimator):
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("_")}


def test_round_trip_is_exact(saved, data):
    X, y = data
    model = StandIn(inner=StandIn(), random_state=np.random.RandomState(3)).fit(X, y)
    loaded = load(saved)
    assert_same_estimator(model, loaded)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.predict(X).dtype == model.predict(X).dtype
    assert not hasattr(loaded, "_private")


def test_unfitted_round_trip(tmp_path):
    path = tmp_path / "unfitted.npz"
    save(StandIn(hidden=7, dtype="float64"), path)
    loaded = load(path)
    assert loaded.get_params() == StandIn(hidden=7, dtype="float64").get_params()
    assert not hasattr(loaded, "coef_")


def test_file_is_an_npz_without_pickle_and_strict_json(saved):
    with np.load(saved, allow_pickle=False) as npz:
        arrays = [npz[name] for name in npz.files if name != "metadata.json"]
    assert arrays and all(a.dtype != object for a in arrays)
    with zipfile.ZipFile(saved) as archive:
        text = archive.read("metadata.json").decode()

    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    document = json.loads(text, parse_constant=reject)
    assert document["format"] == "crnn-model" and document["format_version"] == 1
    assert document["estimator"]["__estimator__"]["class"] == "tests.StandIn"
    assert document["estimator"]["__estimator__"]["params"]["hidden"] == 3


def test_save_refuses_what_it_cannot_store_without_pickle(tmp_path, data):
    with pytest.raises(TypeError, match="crnn.save supports crnn's estimators"):
        save(object(), tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"cannot save scale: values of type function"):
        save(StandIn(scale=lambda: 1), tmp_path / "m.npz")
    model = StandIn().fit(*data)
    model.names_ = np.array([object()], dtype=object)
    with pytest.raises(TypeError, match="cannot save names_: object arrays may hold only"):
        save(model, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# Damaged and tampered files --------------------------------------------------------------


def rewrite(path, change):
    """Rewrite the archive at path with change(members) -> members (a valid ZIP again)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def change_metadata(path, change):
    def edit(members):
        document = json.loads(members["metadata.json"])
        change(document)
        members["metadata.json"] = json.dumps(document).encode()
        return members

    rewrite(path, edit)


def first_array(document):
    attributes = document["estimator"]["__estimator__"]["attributes"]
    return attributes["coef_"]["__ndarray__"]


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -30, -1])
def test_truncated_file_is_refused(saved, keep):
    content = saved.read_bytes()
    keep = int(keep * len(content)) if isinstance(keep, float) else keep
    saved.write_bytes(content[:keep])
    with pytest.raises(ValueError, match="not a crnn model file|not a valid crnn model file"):
        load(saved)


def test_flipped_byte_in_an_array_is_refused(saved):
    content = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("a0.npy")
    # Past the local file header and the .npy header: a byte of the array data.
    position = info.header_offset + 30 + len(info.filename) + info.file_size - 3
    content[position] ^= 0xFF
    saved.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="BadZipFile: Bad CRC-32"):
        load(saved)


def test_replaced_array_is_refused(saved):
    def swap(members):
        with zipfile.ZipFile(saved) as archive, archive.open("a0.npy") as member:
            array = np.lib.format.read_array(member)
        array.flat[0] += 1
        members["a0.npy"] = npy_bytes(array)
        return members

    rewrite(saved, swap)
    with pytest.raises(ValueError, match="does not match its SHA-256 digest"):
        load(saved)


def npy_bytes(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: first_array(d).update(shape=[3, 4]), r"metadata says \(\(3, 4\)"),
        (lambda d: first_array(d).update(dtype="<f8"), "its metadata says"),
        (lambda d: first_array(d).update(dtype="|O"), "dtype '|O' is not allowed"),
        (lambda d: first_array(d).update(key="a99"), "array member 'a99.npy' is missing"),
        (
            lambda d: d["estimator"]["__estimator__"].update({"class": "os.system"}),
            "unknown estimator class",
        ),
        (
            lambda d: d["estimator"]["__estimator__"]["params"].update(bogus=1),
            "parameters do not fit",
        ),
        (
            lambda d: d["estimator"]["__estimator__"]["attributes"].update(_x=1),
            "not a fitted attribute",
        ),
        (
            lambda d: d["estimator"]["__estimator__"]["params"].update(scale={"__pickle__": "x"}),
            "unexpected value",
        ),
        (lambda d: d.update(format="something-else"), "does not describe a crnn model"),
        (lambda d: d.update(extra=1), "unexpected fields"),
    ],
)
def test_tampered_metadata_is_refused(saved, change, message):
    change_metadata(saved, change)
    with pytest.raises(ValueError, match=message):
        load(saved)


def test_compressed_members_are_refused(saved):
    with zipfile.ZipFile(saved) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(saved, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match=r"members \['metadata.json', 'a0.npy'.* are compressed"):
        load(saved)


def test_extra_or_missing_members_are_refused(saved, tmp_path):
    rewrite(saved, lambda members: {**members, "payload.npy": b"x"})
    with pytest.raises(ValueError, match=r"unexpected members \['payload.npy'\]"):
        load(saved)
    rewrite(saved, lambda members: {k: v for k, v in members.items() if k != "metadata.json"})
    with pytest.raises(ValueError, match="it has no metadata.json"):
        load(saved)


@pytest.mark.parametrize(
    "version, message", [(2, "reads version 1: upgrade crnn"), (0, "reads version 1.")]
)
def test_other_format_version_is_refused(saved, version, message):
    change_metadata(saved, lambda d: d.update(format_version=version))
    with pytest.raises(ValueError, match=f"format version {version}.*{message}"):
        load(saved)


class Payload:
    def __reduce__(self):
        return (open, ("pwned", "w"))


def test_pickle_and_other_files_are_refused_without_running_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="not a crnn model file"):
        load(path)
    np.savez(path, x=np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="it has no metadata.json"):
        load(path)
    assert not (tmp_path / "pwned").exists()


def test_a_pickled_array_member_is_refused_without_running_it(saved, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def plant(members):
        members["a0.npy"] = npy_bytes(np.array([Payload()], dtype=object), allow_pickle=True)
        return members

    rewrite(saved, plant)
    with pytest.raises(ValueError, match="its metadata says"):
        load(saved)
    assert not (tmp_path / "pwned").exists()


# Atomic writes ---------------------------------------------------------------------------


def test_failed_save_leaves_the_existing_file_intact(saved, data, monkeypatch):
    before = saved.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save(StandIn(hidden=2).fit(*data), saved)
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]


def test_save_into_a_missing_directory_raises(tmp_path, data):
    with pytest.raises(FileNotFoundError):
        save(StandIn().fit(*data), tmp_path / "missing" / "model.npz")


def test_save_replaces_an_existing_file_with_umask_permissions(saved, data):
    umask = os.umask(0o022)
    try:
        save(StandIn(hidden=5).fit(*data), saved)
    finally:
        os.umask(umask)
    assert load(saved).hidden == 5
    assert saved.stat().st_mode & 0o777 == 0o644
    assert os.listdir(saved.parent) == [saved.name]


# crnn's estimators ---------------------------------------------------------------------------

rng = np.random.RandomState(0)
SEQUENCES = rng.standard_normal((24, 5, 3))
LABELS = np.array(["cat", "dog", "emu"])[rng.randint(0, 3, 24)]
TAGS = rng.randint(0, 2, (24, 5))
VALUES = rng.standard_normal((24, 2))
SERIES = np.column_stack([np.sin(np.arange(80) / 3), np.cos(np.arange(80) / 5)])

CASES = {
    "classifier": (
        RNNClassifier(
            cell="lstm",
            hidden_layer_sizes=(6, 4),
            class_weight={"cat": 2.0},
            max_iter=2,
            random_state=np.random.RandomState(0),
        ),
        (SEQUENCES, LABELS),
    ),
    "tagger": (
        RNNClassifier(cell="gru", bidirectional=True, max_iter=2, random_state=0),
        (SEQUENCES, TAGS),
    ),
    "regressor": (
        RNNRegressor(
            cell="rnn",
            nonlinearity="relu",
            dtype="float64",
            early_stopping=True,
            max_iter=3,
            random_state=0,
        ),
        (SEQUENCES, VALUES),
    ),
    "encdec": (
        RNNRegressor(pattern="encdec", max_iter=2, random_state=0),
        (SEQUENCES, VALUES[:, :, None]),
    ),
    "vec2seq": (RNNRegressor(pattern="vec2seq", max_iter=2, random_state=0), (VALUES, SEQUENCES)),
    "forecaster": (
        RNNForecaster(RNNRegressor(cell="gru", max_iter=2, random_state=0), window=6, horizon=2),
        (SERIES,),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_crnn_estimators_round_trip_bit_identically(tmp_path, case):
    estimator, data = CASES[case]
    estimator = clone(estimator).fit(*data)
    path = tmp_path / f"{case}.npz"
    save(estimator, path)
    loaded = load(path)
    assert_same_estimator(estimator, loaded)
    X = SERIES[:30] if case == "forecaster" else data[0]
    methods = ["predict", "predict_proba"] if isinstance(estimator, RNNClassifier) else ["predict"]
    for method in methods:
        expected, got = getattr(estimator, method)(X), getattr(loaded, method)(X)
        assert expected.dtype == got.dtype
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("case", ["classifier", "regressor"])
def test_a_loaded_estimator_trains_on(tmp_path, case):
    estimator, (X, y) = CASES[case]
    path = tmp_path / "model.npz"
    save(clone(estimator).set_params(early_stopping=False).fit(X, y), path)
    loaded = load(path)
    params, seen = loaded.params_.copy(), loaded.t_
    loaded.partial_fit(X, y)
    assert loaded.t_ == seen + len(X)
    assert not np.array_equal(loaded.params_, params)
    loaded.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert loaded.predict(X).shape == np.shape(y)


def test_inconsistent_parameter_array_is_refused(tmp_path):
    estimator, data = CASES["regressor"]
    path = tmp_path / "model.npz"
    save(clone(estimator).fit(*data), path)

    def drop_last_parameter(members):
        document = json.loads(members["metadata.json"])
        spec = document["estimator"]["__estimator__"]["attributes"]["params_"]["__ndarray__"]
        with zipfile.ZipFile(path) as archive, archive.open(f"{spec['key']}.npy") as member:
            params = np.lib.format.read_array(member)[:-1]
        members[f"{spec['key']}.npy"] = npy_bytes(params)
        spec.update(shape=[params.size], sha256=_persistence._digest(params))
        members["metadata.json"] = json.dumps(document).encode()
        return members

    rewrite(path, drop_last_parameter)
    with pytest.raises(
        ValueError, match=r"its fitted crnn.RNNRegressor is inconsistent \(params_ is float64"
    ):
        load(path)


def test_forecaster_with_a_mismatched_scale_is_refused(tmp_path):
    estimator, data = CASES["forecaster"]
    path = tmp_path / "model.npz"
    save(clone(estimator).fit(*data), path)
    change_metadata(
        path, lambda d: d["estimator"]["__estimator__"]["attributes"].update(n_series_=3)
    )
    with pytest.raises(
        ValueError, match="the scaling, the network and the number of series disagree"
    ):
        load(path)
