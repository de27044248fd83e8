"""forward/backward with n_threads: the batch split over threads gives the one-thread result."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import crnn.functional
from crnn.functional import RNNLayout, backward, forward, init_params


@pytest.fixture
def split_any_batch(monkeypatch):
    """Split even these tiny batches (normally too little work to get a thread)."""
    monkeypatch.setattr(crnn.functional, "_MIN_PART_WORK", 0)


def _run(layout, params, X, lengths, h0, c0, n_threads, truncate=None, dropout=0.0, seed=0):
    Y, (h_n, c_n), cache = forward(
        layout, params, X, lengths, h0, c0, dropout=dropout, random_state=seed, n_threads=n_threads
    )
    assert len(cache.parts) == min(n_threads, X.shape[1])  # the split really happened
    dY = np.cos(np.arange(Y.size, dtype=Y.dtype).reshape(Y.shape))
    dh_n = [np.ones_like(h) for h in h_n]
    dX, dh0, dc0, grad = backward(cache, dY, dh_n, truncate=truncate)
    out = [Y, *h_n, dX, *dh0, grad]
    if c_n is not None:
        out += [*c_n, *dc0]
    return out


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("n_threads", [2, 3, 50])
@pytest.mark.parametrize("truncate", [None, 2])
def test_split_batch_matches_one_thread(cell, bidirectional, n_threads, truncate, split_any_batch):
    name, nonlinearity = cell
    layout = RNNLayout(name, 3, (4, 5), bidirectional=bidirectional, nonlinearity=nonlinearity)
    params = init_params(layout, random_state=0)
    rng = np.random.default_rng(1)
    T, B = 6, 7
    X = rng.normal(size=(T, B, 3))
    lengths = rng.integers(1, T + 1, size=B)
    D = layout.num_directions
    h0 = [rng.normal(size=(D, B, H)) for H in layout.hidden_sizes]
    c0 = [rng.normal(size=(D, B, H)) for H in layout.hidden_sizes] if name == "lstm" else None
    with threadpool_limits(1, user_api="blas"):
        one = _run(layout, params, X, lengths, h0, c0, 1, truncate)
        split = _run(layout, params, X, lengths, h0, c0, n_threads, truncate)
    for a, b in zip(split, one):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_split_with_dropout_is_reproducible(split_any_batch):
    layout = RNNLayout("gru", 3, (4, 4))
    params = init_params(layout, random_state=0)
    X = np.random.default_rng(1).normal(size=(5, 8, 3))
    first = _run(layout, params, X, None, None, None, 2, dropout=0.5, seed=3)
    second = _run(layout, params, X, None, None, None, 2, dropout=0.5, seed=3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("B, H, parts", [(64, 128, 2), (16, 128, 2), (8, 64, 1), (64, 32, 1)])
def test_only_batches_with_enough_work_are_split(B, H, parts):
    # An LSTM part needs B/parts * 4 * H * H >= 2**18 multiply-adds per step.
    layout = RNNLayout("lstm", 2, (H,))
    X = np.zeros((2, B, 2), dtype=np.float32)
    _, _, cache = forward(layout, init_params(layout, dtype=np.float32), X, n_threads=2)
    assert len(cache.parts) == parts


@pytest.mark.parametrize("truncate", [None, 2])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_directions_of_an_unsplit_batch_run_in_parallel(cell, truncate, dropout, monkeypatch):
    """A bidirectional batch too small to split still runs its two directions in two
    threads (each with its own workspace and dX), with the one-thread result."""
    name, nonlinearity = cell
    layout = RNNLayout(name, 3, (4, 5), bidirectional=True, nonlinearity=nonlinearity)
    params = init_params(layout, random_state=0)
    rng = np.random.default_rng(2)
    T, B = 6, 5
    X, lengths = rng.normal(size=(T, B, 3)), rng.integers(1, T + 1, size=B)
    h0 = [rng.normal(size=(2, B, H)) for H in layout.hidden_sizes]
    c0 = [rng.normal(size=(2, B, H)) for H in layout.hidden_sizes] if name == "lstm" else None
    with threadpool_limits(1, user_api="blas"):
        one = _run(layout, params, X, lengths, h0, c0, 1, truncate, dropout)
        # Each kernel call waits for its other direction: run one after the other, the calls
        # would time out at the barrier.
        threads = {"forward": set(), "backward": set()}
        for kind in threads:
            original, barrier = getattr(crnn.functional._kernels, kind), threading.Barrier(2)

            def meet(*args, kind=kind, original=original, barrier=barrier, **kwargs):
                threads[kind].add(threading.get_ident())
                barrier.wait(timeout=30)
                return original(*args, **kwargs)

            monkeypatch.setattr(crnn.functional._kernels, kind, meet)
        Y, (h_n, c_n), cache = forward(
            layout, params, X, lengths, h0, c0, dropout=dropout, random_state=0, n_threads=2
        )
        assert len(cache.parts) == 1  # not split: too little work
        dY = np.cos(np.arange(Y.size, dtype=Y.dtype).reshape(Y.shape))
        dX, dh0, dc0, grad = backward(cache, dY, [np.ones_like(h) for h in h_n], truncate=truncate)
    for used in threads.values():  # pool threads, never the caller's
        assert len(used) >= 2 and threading.get_ident() not in used
    both = [Y, *h_n, dX, *dh0, grad] + ([*c_n, *dc0] if c_n is not None else [])
    for a, b in zip(both, one):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n_threads", [0, -1, 1.5, None])
def test_bad_n_threads(n_threads):
    layout = RNNLayout("rnn", 2, (3,))
    with pytest.raises(ValueError, match="n_threads must be a positive int"):
        forward(layout, init_params(layout), np.zeros((2, 2, 2)), n_threads=n_threads)
