"""Progress within long epochs (verbose) and the per-epoch callback: log, checkpoint, stop."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score

import crnn
from crnn import RNNClassifier, RNNRegressor

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 6, 2))
Y = (X.cumsum(axis=1)[..., 0] > 0).astype(int)
SMALL = {"hidden_layer_sizes": (6,), "random_state": 0, "batch_size": 16}


def test_callback_sees_every_epochs_figures():
    seen = []
    reg = RNNRegressor(
        max_iter=4, early_stopping=True, callback=lambda est, info: seen.append(info), **SMALL
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, X.sum(axis=2))
    assert [info["epoch"] for info in seen] == [1, 2, 3, 4]
    assert [info["loss"] for info in seen] == reg.loss_curve_
    assert [info["validation_loss"] for info in seen] == reg.validation_loss_curve_
    assert [info["validation_score"] for info in seen] == reg.validation_scores_
    n_train = 60 - 6  # validation_fraction=0.1 holds out 6
    assert all(info["updates"] == -(-n_train // 16) for info in seen)
    assert all(info["learning_rate"] == 1e-3 and info["time"] > 0 for info in seen)
    assert reg.callback_stopped_ is False
    # partial_fit: one epoch a call, numbered on; no validation figures.
    seen.clear()
    reg.set_params(early_stopping=False).partial_fit(X, X.sum(axis=2))
    assert seen[0]["epoch"] == 5 and seen[0]["validation_loss"] is None


def test_callback_stops_on_a_metric_of_its_own():
    """Stop once the held-out macro F1 passes a bar: a usable model, and no warning."""
    X_val, Y_val = X[:20], Y[:20]
    scores = []

    def stop_when_good(est, info):
        scores.append(f1_score(Y_val.ravel(), est.predict(X_val).ravel(), average="macro"))
        return scores[-1] >= 0.8 or info["epoch"] == 30

    clf = RNNClassifier(max_iter=200, learning_rate_init=0.02, callback=stop_when_good, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopping is not non-convergence
        clf.fit(X[20:], Y[20:])
    assert clf.callback_stopped_ is True
    assert clf.n_iter_ == len(scores) < 200
    assert scores[-1] >= 0.8 and all(s < 0.8 for s in scores[:-1])
    final = f1_score(Y_val.ravel(), clf.predict(X_val).ravel(), average="macro")
    assert final == scores[-1]  # the weights of the epoch the callback judged


def test_checkpoints_from_a_callback_equal_shorter_fits(tmp_path):
    def checkpoint(est, info):
        crnn.save(est, tmp_path / f"epoch{info['epoch']}.npz")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        RNNClassifier(max_iter=4, callback=checkpoint, **SMALL).fit(X, Y)
        two_epochs = RNNClassifier(max_iter=2, **SMALL).fit(X, Y)
    loaded = crnn.load(tmp_path / "epoch2.npz")
    assert loaded.callback is None  # code is not saved
    np.testing.assert_array_equal(loaded.params_, two_epochs.params_)
    np.testing.assert_array_equal(loaded.predict_proba(X), two_epochs.predict_proba(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"epoch{i}.npz" for i in range(1, 5)]


def test_verbose_reports_progress_within_long_epochs_rate_limited(capsys, monkeypatch):
    """A fake clock that advances 1 s per reading: progress lines at most every 5 s."""
    import crnn._training as training

    clock = iter(np.arange(0.0, 1e6))
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(clock)))
    reg = RNNRegressor(max_iter=1, verbose=True, **{**SMALL, "batch_size": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, X.sum(axis=2))
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if "ETA" in line]
    assert 2 <= len(progress) < 30  # 30 minibatches, one clock reading each
    assert progress[0].startswith("Epoch 1: ") and "/60 sequences (" in progress[0]
    done = [int(line.split(": ")[1].split("/")[0]) for line in progress]
    assert done == sorted(done) and done[-1] < 60
    assert lines[-1].startswith("Epoch 1, loss = ")


def test_short_epochs_print_only_their_summary(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        RNNRegressor(max_iter=2, verbose=True, **SMALL).fit(X, X.sum(axis=2))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("Epoch ") for line in lines)


def test_callback_stop_is_reported_with_verbose(capsys):
    clf = RNNClassifier(max_iter=5, verbose=True, callback=lambda est, info: True, **SMALL)
    clf.fit(X, Y)
    assert clf.n_iter_ == 1 and clf.callback_stopped_
    assert "Training stopped by the callback after epoch 1." in capsys.readouterr().out


def test_invalid_callback_is_refused():
    with pytest.raises(ValueError, match="callback"):
        RNNRegressor(callback="print").fit(X, X.sum(axis=2))
