"""Estimators in threads: shared models predict exactly, separate models fit exactly, and
BLAS stays on one thread inside fit and predict, and as it was after them.

(The kernels themselves in threads, and their release of the GIL, are tested in
tests/test_kernel_threads.py.)

fit, partial_fit and predict limit BLAS to one thread (threadpoolctl) while they run and
restore the previous limit afterwards, so that ``n_jobs`` parallelism does not
oversubscribe the cores. The tests read the limit from inside the estimators' calls to
the kernels.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import threadpoolctl
from threadpoolctl import ThreadpoolController, threadpool_limits

import crnn._parallel
import crnn._patterns
import crnn._step
from crnn._estimators import RNNClassifier, RNNRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

rng = np.random.default_rng(0)
X = rng.normal(size=(24, 6, 3))
RAGGED = [rng.normal(size=(n, 3)) for n in rng.integers(1, 9, size=24)]
Y = X.sum(axis=(1, 2))
LABELS = (X[:, -1, 0] > 0).astype(int)
STEP_TARGETS = [r[:, 0] for r in RAGGED]


def blas_threads():
    """The thread count of every BLAS library loaded in the process."""
    libraries = ThreadpoolController().select(user_api="blas").info()
    return tuple(lib["num_threads"] for lib in libraries)


def fitted_models():
    small = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    return [
        (RNNClassifier(cell="lstm", **small).fit(X, LABELS), "predict_proba", X),
        (
            RNNRegressor(cell="gru", bidirectional=True, **small).fit(RAGGED, STEP_TARGETS),
            "predict",
            RAGGED,
        ),
        (RNNRegressor(cell="rnn", pattern="encdec", **small).fit(X, X[:, :4]), "predict", X),
    ]


def assert_same_predictions(a, b):
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    else:
        np.testing.assert_array_equal(a, b)


def test_predicting_in_four_threads_matches_one_thread_exactly():
    for model, method, data in fitted_models():
        expected = getattr(model, method)(data)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: getattr(model, method)(data), range(12)))
        for result in results:
            assert_same_predictions(result, expected)


def test_fitting_separate_models_in_threads_matches_serial_fits():
    def fit(seed):
        cell = ("lstm", "gru", "rnn", "lstm")[seed]
        return (
            RNNRegressor(cell=cell, hidden_layer_sizes=(6,), max_iter=3, random_state=seed)
            .fit(X, Y)
            .params_
        )

    serial = [fit(seed) for seed in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(fit, range(4)))
    for got, want in zip(parallel, serial):
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def spy_on_kernels(monkeypatch):
    """Record the BLAS thread counts at every compiled training step and every forward call
    of prediction."""
    seen = []
    for owner, name in ((crnn._step.MinibatchStep, "train"), (crnn._patterns, "forward")):
        original = getattr(owner, name)

        def spy(*args, _original=original, **kwargs):
            seen.append(blas_threads())
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    return seen


def test_blas_runs_on_one_thread_inside_fit_and_predict(spy_on_kernels):
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        model = RNNRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, Y)
        model.partial_fit(X, Y)
        model.predict(X)
        model.score(X, Y)
        after = blas_threads()
    assert before == after and set(before) == {2}
    assert spy_on_kernels and set(spy_on_kernels) == {(1,) * len(before)}


def release_blas_control():
    """Let any thread change OpenBLAS's thread count again.

    threadpoolctl (>= 3.7) lets only one thread at a time change the thread count of an
    OpenBLAS built with pthreads: the first to set it, until it leaves a
    ``threadpool_limits`` context.
    """
    openblas = getattr(threadpoolctl, "OpenBLASController", None)
    if hasattr(openblas, "clear_controlling_thread"):
        openblas.clear_controlling_thread(force=True)


@pytest.fixture
def blas_on_two_threads():
    """BLAS on two threads, with no thread holding control of it (unlike inside a
    ``threadpool_limits`` context, in which other threads cannot change it at all)."""
    original = ThreadpoolController().select(user_api="blas").info()
    release_blas_control()
    ThreadpoolController().limit(limits=2, user_api="blas")
    release_blas_control()
    yield
    release_blas_control()
    for lib in original:
        ThreadpoolController().limit(limits={lib["filepath"]: lib["num_threads"]})
    release_blas_control()


def test_overlapping_calls_in_threads_restore_the_blas_thread_count(
    monkeypatch, blas_on_two_threads
):
    # Thread A enters predict, then B; A finishes while B is still inside (any overlap of
    # calls in threads does this: GridSearchCV on the threading backend, say). Whatever
    # the estimators do to BLAS meanwhile, they must leave it as they found it.
    before = blas_threads()
    model = RNNRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, Y)
    a_inside, b_inside = threading.Event(), threading.Event()
    original = crnn._patterns.forward

    def forward(*args, **kwargs):
        if threading.current_thread().name == "A" and not a_inside.is_set():
            a_inside.set()
            b_inside.wait(10)
        elif threading.current_thread().name == "B" and not b_inside.is_set():
            b_inside.set()
            a.join(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(crnn._patterns, "forward", forward)
    a = threading.Thread(target=model.predict, args=(X,), name="A")
    b = threading.Thread(target=lambda: a_inside.wait(10) and model.predict(X), name="B")
    a.start()
    b.start()
    b.join(30)
    assert blas_threads() == before


class _HandOffLock:
    """A lock that, the first time it is released, runs ``meanwhile`` before its holder
    goes on: what another thread may do as soon as the lock is free."""

    def __init__(self, meanwhile):
        self._lock, self._meanwhile = threading.Lock(), meanwhile

    def __enter__(self):
        self._lock.acquire()

    def __exit__(self, *exc_info):
        self._lock.release()
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()


def test_a_call_needing_more_workers_does_not_break_a_running_one(monkeypatch):
    # Another caller needs 3 workers right after this one took the 2-worker pool: it
    # replaces (shuts down) that pool, and this call's parts must still run.
    monkeypatch.setitem(crnn._parallel._POOL, "executor", None)
    monkeypatch.setitem(crnn._parallel._POOL, "size", 0)
    wider = []
    lock = _HandOffLock(lambda: wider.append(crnn._parallel.map_parts(abs, [-1, -2, -3])))
    monkeypatch.setattr(crnn._parallel, "_POOL_LOCK", lock)
    assert crnn._parallel.map_parts(abs, [-4, -5]) == [4, 5]
    assert wider == [[1, 2, 3]]
