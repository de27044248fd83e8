"""The GEMM rate SciPy's BLAS gives for the GEMMs of a training step, measured in C loops."""

import math
import statistics
import time

import numpy as np
import pyximport

# Compiled on first use into pyximport's cache (~/.pyxbld); it needs Cython and a C compiler,
# which building crnn needs anyway.
pyximport.install(language_level=3)
from _gemm_loop import gemm_loop  # noqa: E402

_cache = {}


def gemm_seconds(m, n, k, dtype, repeats, min_time):
    """Median seconds of one column-major ``C(m, n) = A(m, k) B(k, n)`` (memoised)."""
    key = (m, n, k, np.dtype(dtype).name)
    if key not in _cache:
        rng = np.random.default_rng(0)
        a, b = (rng.standard_normal(size).astype(dtype) for size in (m * k, k * n))
        c = np.empty(m * n, dtype)
        t0 = time.perf_counter()
        gemm_loop(a, b, c, m, n, k, 1)  # also warms up the BLAS threads
        reps = max(1, math.ceil(min_time / max(time.perf_counter() - t0, 1e-9)))
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            gemm_loop(a, b, c, m, n, k, reps)
            samples.append((time.perf_counter() - t0) / reps)
        _cache[key] = statistics.median(samples)
    return _cache[key]


def step_seconds(gemms, dtype, repeats, min_time):
    """BLAS time of a list of row-major ``(m, n, k, count)`` GEMMs, each in its faster orientation.

    A row-major ``(m, n)`` product is the column-major ``(n, m)`` one; the other orientation
    computes its transpose (``C^T = B^T A^T``), as a kernel storing that operand the other
    way would.

    Returns
    -------
    seconds : float
    per_gemm : list of dict
        Shape, count and the seconds per call of each orientation.
    """
    total, per_gemm = 0.0, []
    for m, n, k, count in gemms:
        as_is = gemm_seconds(n, m, k, dtype, repeats, min_time)
        swapped = gemm_seconds(m, n, k, dtype, repeats, min_time)
        total += count * min(as_is, swapped)
        per_gemm.append(
            {"m": m, "n": n, "k": k, "count": count, "as_is": as_is, "transposed": swapped}
        )
    return total, per_gemm
