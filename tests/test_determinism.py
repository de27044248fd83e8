"""Determinism: the same random_state and data give bit-identical models, run to run.

The C kernels are deterministic: no threads of their own, no atomics, a fixed order of
every sum. BLAS is the only part whose arithmetic could depend on the thread count. So:

- the estimators, which run BLAS on one thread inside fit, partial_fit and predict,
  give bit-identical weights and predictions in every process, whatever BLAS thread
  count the caller set;
- crnn.functional with BLAS on one thread gives bit-identical results run to run; with
  more BLAS threads it agrees to rounding (OpenBLAS happens to be reproducible at a fixed
  thread count, but no BLAS promises it; MKL, for one, does not without its CNR mode).

"Run to run" means fresh interpreters whose heaps are laid out differently, so that
neither memory alignment nor leftover state can change a bit.
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from crnn.functional import RNNLayout, backward, forward, init_params

# Every source of randomness and every code path that could break determinism: dropout,
# shuffling, the early-stopping split, both directions, every cell, both dtypes, SGD and
# Adam, class weights, the decoder of encdec, float32 reductions in the losses.
_FITS = """
import hashlib, sys, warnings
import numpy as np
from crnn._estimators import RNNClassifier, RNNRegressor

warnings.simplefilter("ignore")
heap = [bytearray(n) for n in range(int(sys.argv[1]))]  # a different heap layout per run
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 7, 3))
y = X.sum(axis=(1, 2))
labels = (X[:, -1, 0] > 0).astype(int)
small = dict(hidden_layer_sizes=(6, 5), max_iter=3, random_state=7)
fits = [
    (RNNRegressor(cell="lstm", dropout=0.3, early_stopping=True, validation_fraction=0.25,
                  **small), X, y),
    (RNNRegressor(cell="gru", bidirectional=True, dtype="float64", solver="sgd", **small),
     X, y),
    (RNNClassifier(cell="rnn", nonlinearity="relu", class_weight={0: 2.0}, **small),
     X, labels),
    (RNNClassifier(cell="gru", pattern="seq2seq", truncate_bptt=3, **small), X, X[:, :, 0] > 0),
    (RNNRegressor(cell="lstm", pattern="encdec", random_state=np.random.RandomState(3),
                  hidden_layer_sizes=(4,), max_iter=2), X, X[:, ::-1][:, :4]),
]
for model, X_fit, y_fit in fits:
    model.fit(X_fit, y_fit)
    if not model.early_stopping:
        model.partial_fit(X_fit, y_fit)
    out = model.predict_proba(X_fit) if hasattr(model, "predict_proba") else model.predict(X_fit)
    digest = hashlib.sha256(model.params_.tobytes() + np.ascontiguousarray(out).tobytes())
    print(digest.hexdigest())
"""


def run_fits(heap_blocks, blas_threads):
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": str(blas_threads),
        "OMP_NUM_THREADS": str(blas_threads),
        "MKL_NUM_THREADS": str(blas_threads),
    }
    out = subprocess.run(
        [sys.executable, "-c", _FITS, str(heap_blocks)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    digests = out.stdout.split()
    assert len(digests) == 5
    return digests


def test_estimators_are_bit_identical_run_to_run_whatever_the_blas_threads():
    # The estimators put BLAS on one thread themselves, so the caller's setting is moot.
    assert run_fits(0, blas_threads=1) == run_fits(3000, blas_threads=2)


def _functional_run(cell, dtype):
    layout = RNNLayout(cell, 8, (64, 32), bidirectional=True)
    params = init_params(layout, random_state=0, dtype=dtype)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 64, 8)).astype(dtype)
    lengths = rng.integers(1, 31, size=64)
    Y, _, cache = forward(layout, params, X, lengths, dropout=0.2, random_state=2)
    dX, _, _, grad = backward(cache, np.cos(Y), truncate=10)
    return Y, dX, grad


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_is_bit_identical_on_one_blas_thread(cell, dtype):
    with threadpool_limits(1, user_api="blas"):
        first = _functional_run(cell, dtype)
        # A different heap layout for the second run's buffers.
        padding = [np.empty(n, dtype=np.uint8) for n in range(1, 2000, 37)]
        second = _functional_run(cell, dtype)
    del padding
    for a, b in zip(first, second):
        assert hashlib.sha256(a.tobytes()).digest() == hashlib.sha256(b.tobytes()).digest()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_functional_with_more_blas_threads_agrees_to_rounding(cell):
    with threadpool_limits(1, user_api="blas"):
        serial = _functional_run(cell, np.float64)
    with threadpool_limits(2, user_api="blas"):
        threaded = _functional_run(cell, np.float64)
    for a, b in zip(threaded, serial):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
