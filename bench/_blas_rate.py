"""The GEMMs of a training step run on SciPy's BLAS alone, in C loops: crnn's limit."""

import math
import statistics
import time

import numpy as np
import pyximport

# Compiled on first use into pyximport's cache (~/.pyxbld); it needs Cython and a C compiler,
# which building crnn needs anyway.
pyximport.install(language_level=3)
from _gemm_loop import gemm_loop  # noqa: E402

_seconds = {}


def _operands(size_ab, size_c, dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal(size_ab).astype(dtype), np.empty(size_c, dtype)


def gemm_seconds(m, n, k, dtype, repeats, min_time):
    """Median seconds of one column-major ``C(m, n) = A(m, k) B(k, n)`` (memoised)."""
    key = (m, n, k, np.dtype(dtype).name)
    if key not in _seconds:
        ab, c = _operands(max(m * k, k * n), m * n, dtype)
        t0 = time.perf_counter()
        gemm_loop(ab, ab, c, m, n, k, 1)  # also warms up the BLAS threads
        reps = max(1, math.ceil(min_time / max(time.perf_counter() - t0, 1e-9)))
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            gemm_loop(ab, ab, c, m, n, k, reps)
            samples.append((time.perf_counter() - t0) / reps)
        _seconds[key] = statistics.median(samples)
    return _seconds[key]


def step_runner(gemms, dtype, min_time):
    """A callable running row-major ``(m, n, k, count)`` GEMMs, each in its faster orientation.

    A row-major ``(m, n)`` product is the column-major ``(n, m)`` one; the other orientation
    computes its transpose (``C^T = B^T A^T``), as a kernel storing that operand the other
    way would. The orientation is chosen from a few timings of each GEMM alone; the callable
    is then meant to be sampled along with the implementations.

    Returns
    -------
    run : callable
    per_gemm : list of dict
        Shape, count and the seconds per call of each orientation.
    """
    calls, per_gemm = [], []
    for m, n, k, count in gemms:
        as_is = gemm_seconds(n, m, k, dtype, 3, min_time)
        swapped = gemm_seconds(m, n, k, dtype, 3, min_time)
        calls.append((n, m, k, count) if as_is <= swapped else (m, n, k, count))
        per_gemm.append(
            {"m": m, "n": n, "k": k, "count": count, "as_is": as_is, "transposed": swapped}
        )
    ab, c = _operands(
        max(k * max(m, n) for m, n, k, _ in gemms), max(m * n for m, n, _, _ in gemms), dtype
    )

    def run():
        for m, n, k, count in calls:
            gemm_loop(ab, ab, c, m, n, k, count)

    return run, per_gemm
