"""The kernels release the GIL and share no state: threads run them together, exactly."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from crnn.functional import RNNLayout, backward, forward, init_params


def _problem(cell, T=60, B=16, I=8, H=32, seed=0):
    layout = RNNLayout(cell, I, (H, H), bidirectional=True)
    params = init_params(layout, random_state=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(T, B, I))
    lengths = rng.integers(1, T + 1, size=B)
    return layout, params, X, lengths


def _run(layout, params, X, lengths):
    Y, (h_n, c_n), cache = forward(layout, params, X, lengths=lengths)
    dX, dh0, dc0, grad = backward(cache, dY=np.cos(Y))
    return Y, dX, grad


@pytest.fixture(autouse=True)
def one_blas_thread():
    # Threads of our own on top of BLAS threads oversubscribe 2 cores badly; the kernels'
    # thread safety does not depend on the BLAS thread count.
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_concurrent_calls_match_serial_exactly(cell):
    problems = [_problem(cell, seed=s) for s in range(4)]
    serial = [_run(*p) for p in problems]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            parallel = list(pool.map(lambda p: _run(*p), problems))
            for got, want in zip(parallel, serial):
                for g, w in zip(got, want):
                    np.testing.assert_array_equal(g, w)


def test_kernel_call_releases_the_gil():
    # One long kernel call in a worker thread; meanwhile the main thread keeps running Python.
    # If the call held the GIL, the main thread would stall for the whole call.
    layout = RNNLayout("lstm", 16, (128,))
    params = init_params(layout, random_state=0)
    X = np.random.default_rng(0).normal(size=(200, 32, 16))
    start = time.perf_counter()
    forward(layout, params, X, keep_cache=False)
    duration = time.perf_counter() - start

    in_kernel = threading.Event()
    done = threading.Event()

    def work():
        in_kernel.set()
        forward(layout, params, X, keep_cache=False)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    in_kernel.wait()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(duration / 100)
    worker.join()
    # Holding the GIL would allow ~1 tick; releasing it allows ~100 (minus scheduling noise).
    assert ticks >= 10, f"main thread ran only {ticks} times during a {duration:.3f}s call"
