"""Faults during training and saving, and damaged model files.

Complements the owners' tests (tests/test_estimators.py: a diverging fit stops with a
warning and finite weights, Ctrl-C in the second epoch of fit keeps the first;
tests/test_persistence.py: a simulated ENOSPC during save, truncated, tampered and
wrong-version files) with

- divergence: exactly the weights of the last finished epoch are kept, from the first
  minibatch on, in partial_fit too; an update that overflows the weights is undone;
- interrupts: Ctrl-C as a minibatch's compiled call returns in the first epoch, or in
  partial_fit, leaves
  a model that predicts as before and trains on;
- saving: a real file-size limit (the kernel refuses the write, as on a full disk), a
  target that is a directory, a directory nobody may write and Ctrl-C during the write
  all raise and leave the existing model file intact, with no temporary file left behind;
- loading: random byte flips and cuts of a real model file raise ValueError, or (when
  they hit bytes nothing depends on, such as ZIP timestamps) load the identical model.
"""

import os
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
from harness import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from crnn._estimators import RNNClassifier, RNNRegressor
from crnn._optim import SGD, Adam
from crnn._persistence import load, save
from crnn._step import MinibatchStep

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

rng = np.random.default_rng(0)
X = rng.normal(size=(24, 5, 2))
Y = X.sum(axis=(1, 2))
LABELS = (X[:, -1, 0] > 0).astype(int)
SMALL = dict(hidden_layer_sizes=(4,), batch_size=8, random_state=0)  # 3 minibatches an epoch


def nan_on_call(monkeypatch, call):
    """Make the ``call``-th minibatch loss (1-based) NaN, as a diverging run would."""
    calls = []
    original = MinibatchStep.train

    def train(self, *args):
        calls.append(1)
        if len(calls) == call:  # what the compiled step reports of a non-finite loss
            return np.nan, False
        return original(self, *args)

    monkeypatch.setattr(MinibatchStep, "train", train)


def initial_params(estimator, monkeypatch):
    """The weights ``estimator.fit`` starts from: the fit with every update skipped."""
    with monkeypatch.context() as m:
        m.setattr(Adam, "step_size", lambda self: 0.0)
        m.setattr(SGD, "step_size", lambda self: 0.0)
        return estimator.fit(X, Y).params_.copy()


# -- divergence -------------------------------------------------------------------------------


@pytest.mark.parametrize("epoch, minibatch", [(1, 1), (1, 3), (3, 2)])
def test_divergence_keeps_exactly_the_last_finished_epoch(monkeypatch, epoch, minibatch):
    if epoch == 1:
        expected = initial_params(RNNRegressor(max_iter=1, **SMALL), monkeypatch)
    else:
        expected = RNNRegressor(max_iter=epoch - 1, **SMALL).fit(X, Y).params_
    nan_on_call(monkeypatch, 3 * (epoch - 1) + minibatch)
    reg = RNNRegressor(max_iter=5, **SMALL)
    with pytest.warns(
        ConvergenceWarning,
        match=f"stopped in epoch {epoch}: the loss, its "
        "gradient or the weights became NaN or infinite",
    ):
        reg.fit(X, Y)
    np.testing.assert_array_equal(reg.params_, expected)
    assert reg.n_iter_ == epoch - 1
    assert np.isfinite(reg.predict(X)).all()


def test_divergence_in_partial_fit_keeps_the_weights_before_the_call(monkeypatch):
    reg = RNNRegressor(max_iter=2, **SMALL).fit(X, Y)
    before, predicted = reg.params_.copy(), reg.predict(X)
    nan_on_call(monkeypatch, 2)
    with pytest.warns(ConvergenceWarning, match="became NaN or infinite"):
        reg.partial_fit(X, Y)
    np.testing.assert_array_equal(reg.params_, before)
    np.testing.assert_array_equal(reg.predict(X), predicted)
    monkeypatch.undo()
    reg.partial_fit(X, Y)  # a fresh optimizer: training goes on
    assert not np.array_equal(reg.params_, before)


@pytest.mark.parametrize(
    "case",
    [
        # Adam moves every weight by about learning_rate_init on its first step: past float32.
        dict(learning_rate_init=1e39),
        # epsilon underflows to 0 in float32; a weight whose gradient is exactly 0 (the input
        # feature is always 0, and there is no L2 term) becomes 0 / 0.
        dict(epsilon=1e-300, alpha=0.0, zero_feature=True),
    ],
    ids=["overflowing-step", "underflowing-epsilon"],
)
@pytest.mark.parametrize("max_iter", [1, 3])
def test_an_update_that_makes_the_weights_non_finite_is_undone(case, max_iter):
    case = dict(case)
    X_fit = X.copy()
    if case.pop("zero_feature", False):
        X_fit[:, :, 1] = 0.0
    # One minibatch an epoch: the overflowing update is the last of its epoch.
    params = dict(SMALL, batch_size=len(X), max_iter=max_iter, dtype="float32", **case)
    reg = RNNRegressor(**params).fit(X_fit, Y)
    assert np.isfinite(reg.params_).all()
    assert np.isfinite(reg.predict(X_fit)).all()


# -- interrupts -------------------------------------------------------------------------------


def interrupt_backward_on_call(monkeypatch, call):
    """Ctrl-C as the ``call``-th minibatch's compiled step returns, after it updated the
    weights (the signal waits while the GIL is released: it lands when C returns)."""
    calls = []
    original = MinibatchStep.train

    def train(self, *args):
        calls.append(1)
        result = original(self, *args)
        if len(calls) == call:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(MinibatchStep, "train", train)


def test_interrupt_in_the_first_epoch_leaves_the_initial_model(monkeypatch):
    expected = initial_params(RNNRegressor(max_iter=1, **SMALL), monkeypatch)
    interrupt_backward_on_call(monkeypatch, 2)
    reg = RNNRegressor(max_iter=5, **SMALL)
    with pytest.warns(UserWarning, match="interrupted by the user in epoch 1"):
        reg.fit(X, Y)
    np.testing.assert_array_equal(reg.params_, expected)
    assert reg.n_iter_ == 0 and np.isfinite(reg.predict(X)).all()
    monkeypatch.undo()
    reg.partial_fit(X, Y)
    assert reg.n_iter_ == 1


@pytest.mark.parametrize("Estimator, y", [(RNNRegressor, Y), (RNNClassifier, LABELS)])
def test_interrupt_in_partial_fit_keeps_the_model(monkeypatch, Estimator, y):
    model = Estimator(max_iter=2, **SMALL).fit(X, y)
    before = model.params_.copy()
    expected = model.predict_proba(X) if Estimator is RNNClassifier else model.predict(X)
    interrupt_backward_on_call(monkeypatch, 3)
    with pytest.warns(UserWarning, match="interrupted by the user"):
        model.partial_fit(X, y)
    np.testing.assert_array_equal(model.params_, before)
    got = model.predict_proba(X) if Estimator is RNNClassifier else model.predict(X)
    np.testing.assert_array_equal(got, expected)


# -- saving -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return RNNRegressor(max_iter=1, **SMALL).fit(X, Y)


@pytest.fixture
def existing(tmp_path, model):
    """A saved model file, and its bytes."""
    path = tmp_path / "model.npz"
    save(model, path)
    return path, path.read_bytes()


def assert_intact(path, content):
    assert path.read_bytes() == content
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temporary file left


_SAVE_PAST_A_FILE_SIZE_LIMIT = """
import errno, resource, signal, sys
from crnn._persistence import load, save
from crnn._step import MinibatchStep
model = load(sys.argv[1])
# Ignoring SIGXFSZ makes a write past the limit fail with EFBIG, as one fails with ENOSPC
# on a full disk: the kernel refuses the bytes, whatever Python does.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))
try:
    save(model, sys.argv[1])
except OSError as exc:
    print(errno.errorcode[exc.errno])
"""


def test_save_past_a_file_size_limit_leaves_the_existing_file_intact(existing):
    path, content = existing
    assert len(content) > 2048
    out = subprocess.run(
        [sys.executable, "-c", _SAVE_PAST_A_FILE_SIZE_LIMIT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "EFBIG", out.stdout + out.stderr
    assert_intact(path, content)


def test_save_onto_a_directory_raises_and_leaves_it_alone(tmp_path, model):
    target = tmp_path / "model.npz"
    target.mkdir()
    (target / "keep").write_bytes(b"x")
    with pytest.raises(IsADirectoryError):
        save(model, target)
    assert os.listdir(tmp_path) == ["model.npz"] and os.listdir(target) == ["keep"]


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux's sysfs")
def test_save_into_a_directory_nobody_may_write_raises(model):
    # sysfs refuses new files even to root (EACCES, or EROFS where it is mounted read-only).
    with pytest.raises(OSError):
        save(model, "/sys/crnn-model.npz")
    assert not os.path.exists("/sys/crnn-model.npz")


def test_interrupted_save_leaves_the_existing_file_intact(existing, model, monkeypatch):
    path, content = existing
    original = np.lib.format.write_array

    def write_then_interrupt(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save(model, path)
    assert_intact(path, content)


# -- damaged files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, offset, value",
    [
        ("version needed to extract", 6, 84),
        ("flags: encrypted", 8, 0x1),
        ("compression method", 10, 99),
    ],
)
def test_damaged_zip_headers_are_refused(existing, field, offset, value):
    # Fields of the first member's central directory record: one flipped byte in a real
    # file can set each of them; zipfile then raises NotImplementedError or RuntimeError.
    path, content = existing
    damaged = bytearray(content)
    record = content.index(b"PK\x01\x02")
    damaged[record + offset : record + offset + 2] = struct.pack("<H", value)
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="not a (valid )?crnn model file"):
        load(path)


@FUZZ
@given(st.data())
def test_damaged_model_files_are_refused_or_load_identically(existing, model, data):
    path, content = existing
    damaged = bytearray(content)
    how = data.draw(st.sampled_from(["flip", "flip", "cut", "zero-run"]))
    at = data.draw(st.integers(0, len(content) - 1))
    if how == "flip":
        damaged[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del damaged[at:]
    else:
        damaged[at : at + 64] = bytes(len(damaged[at : at + 64]))
    path.write_bytes(bytes(damaged))
    try:
        loaded = load(path)
    except ValueError:
        return
    finally:
        path.write_bytes(content)
    # Only bytes nothing reads (ZIP timestamps, attributes) may change without an error.
    np.testing.assert_array_equal(loaded.params_, model.params_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params()
