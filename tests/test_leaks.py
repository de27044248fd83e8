"""Repeated use keeps memory flat.

Thousands of forward/backward calls (and calls the glue refuses, whose error paths must
release their buffers too), and of fit / predict / partial_fit / pickle / save / load
calls, must not grow the resident set size by more than 10 MB: leaking a copy of the
parameters in every estimator cycle, say, grows it by about 16 MB, and leaking the
buffers of each kernel call by hundreds of MB. A warm-up fills the allocator's caches
first; without a leak the growth measures well under 1 MB.

Leaks that RSS is too coarse for are valgrind's job: ``python tools/valgrind_fit.py``
runs a small fit under memcheck and fails on any definite leak from crnn's code (see
SECURITY.md).
"""

import gc
import os
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import crnn._kernels as K
from crnn._estimators import RNNClassifier, RNNRegressor
from crnn._persistence import load, save
from crnn.functional import RNNLayout, backward, forward, init_params

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists("/proc/self/statm"), reason="reads the resident set size from /proc"
    ),
    pytest.mark.skipif(
        "asan" in os.environ.get("LD_PRELOAD", ""),
        reason="AddressSanitizer holds freed memory in quarantine",
    ),
]

BOUND_MB = 10  # measured growth without a leak: well under 1 MB


def rss_mb():
    gc.collect()
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def growth_mb(cycle, warm_up, repeats):
    """RSS growth over ``repeats`` calls of ``cycle(i)``, after ``warm_up`` calls."""
    for i in range(warm_up):
        cycle(i)
    before = rss_mb()
    for i in range(repeats):
        cycle(i)
    return rss_mb() - before


def test_forward_backward_and_refused_calls_keep_memory_flat():
    rng = np.random.default_rng(0)
    layouts = [RNNLayout(cell, 3, (16, 16), bidirectional=True) for cell in ("rnn", "lstm", "gru")]
    params = [init_params(layout, random_state=0, dtype=np.float32) for layout in layouts]
    X = rng.normal(size=(20, 16, 3)).astype(np.float32)
    cell = K.CELLS["lstm"]
    reserve_size, workspace_size = K.buffer_sizes(cell, 4, 3, 2, 5)
    bad_X = X.copy()
    bad_X[0, 0, 0] = np.nan
    glue = [
        np.zeros((4, 3, 2)),
        np.array([4, 3, 1], np.intc),
        np.zeros((2, 20)),
        np.zeros((5, 20)),
        np.zeros(20),
        None,
        None,
        None,
        np.zeros((4, 3, 5)),
        0,
        np.zeros((3, 5)),
        np.zeros((3, 5)),
        np.empty(reserve_size),
        np.empty(10),
        False,
    ]  # workspace too small: refused after taking every buffer
    assert workspace_size > 10

    def cycle(i):
        k = i % 3
        lengths = rng.integers(1, 21, size=16)
        Y, (h_n, _), cache = forward(
            layouts[k], params[k], X, lengths, h0=None, dropout=0.25, random_state=i
        )
        backward(cache, np.ones_like(Y), truncate=1 + i % 20)
        with pytest.raises(ValueError):
            forward(layouts[k], params[k], bad_X, lengths)
        with pytest.raises(ValueError, match="workspace too small"):
            K.forward(cell, *glue)

    assert growth_mb(cycle, warm_up=200, repeats=2000) < BOUND_MB


def test_estimator_cycles_keep_memory_flat(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 6, 3)).astype(np.float32)
    y = X.sum(axis=(1, 2))
    tags = (X[:, :, 0] > 0).astype(int)
    models = [
        (RNNRegressor(cell="lstm", hidden_layer_sizes=(4,), max_iter=1, random_state=0), y),
        (
            RNNClassifier(
                cell="gru", bidirectional=True, hidden_layer_sizes=(4,), max_iter=1, random_state=0
            ),
            tags,
        ),
        (
            RNNRegressor(
                cell="rnn", pattern="encdec", hidden_layer_sizes=(4,), max_iter=1, random_state=0
            ),
            X[:, :3],
        ),
    ]
    path = tmp_path / "model.npz"

    def cycle(i):
        model, target = models[i % 3]
        model.fit(X, target)
        model.predict(X)
        model.partial_fit(X, target)
        pickle.loads(pickle.dumps(model)).predict(X[:4])
        save(model, path)
        load(path).predict(X[:4])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert growth_mb(cycle, warm_up=30, repeats=300) < BOUND_MB
