"""Threads: the one-BLAS-thread guard of the estimators and the kernels' worker pool."""

import threading
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController

__all__ = ["map_parts", "serial_blas"]


class _SerialBlas:
    """A context in which BLAS runs on one thread, safe to enter from several threads.

    The GEMMs of a recurrent step are small (batch x hidden x gates): a second BLAS
    thread gains at most ~1.3x on them, while on a loaded machine its synchronisation
    made training 4-7x slower (measured on 2 vCPUs). scikit-learn's KMeans limits BLAS
    the same way around its own loops.

    The limit is process-wide, so overlapping calls in threads share it: the first to
    enter sets it, the last to leave restores what the first found. (One threadpoolctl
    limit per call would let a later call save the 1 an earlier one set, and restore it.)
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._limiter = None
        self._controller = None  # found on first use: scanning the libraries takes ~10 ms

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1

    def __exit__(self, *exc_info):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


_serial_blas_context = _SerialBlas()


def serial_blas():
    """The process-wide one-BLAS-thread context (see :class:`_SerialBlas`)."""
    return _serial_blas_context


# The kernels' worker threads, kept for later calls and replaced by a larger pool when a
# call needs more; guarded by the lock.
_POOL = {"executor": None, "size": 0}
_POOL_LOCK = threading.Lock()


def map_parts(function, *iterables):
    """``map`` over batch parts: in threads when there are several (the kernels release
    the GIL), else in the calling thread. The threads are kept for later calls."""
    args = list(zip(*iterables))
    if len(args) == 1:
        return [function(*args[0])]
    with _POOL_LOCK:
        if _POOL["size"] < len(args):
            if _POOL["executor"] is not None:
                _POOL["executor"].shutdown(wait=False)  # its queued work still runs
            _POOL["executor"] = ThreadPoolExecutor(len(args), thread_name_prefix="crnn")
            _POOL["size"] = len(args)
        # Submitted under the lock: another thread that needs a larger pool may shut this
        # one down as soon as the lock is free, and a shut-down pool takes no new work.
        futures = [_POOL["executor"].submit(function, *a) for a in args]
    return [future.result() for future in futures]
