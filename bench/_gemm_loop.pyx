# cython: language_level=3, boundscheck=False, wraparound=False
"""SciPy's BLAS GEMM called in a C loop: the rate crnn's kernels could reach at best.

The same ``scipy.linalg.cython_blas`` routines crnn calls, without the 2-5 us per call of
the Python wrappers in ``scipy.linalg.blas``, which would swamp the small per-step products.
"""

from scipy.linalg.cython_blas cimport dgemm, sgemm

ctypedef fused real:
    float
    double


def gemm_loop(const real[::1] a, const real[::1] b, real[::1] c, int m, int n, int k, int reps):
    """Run ``reps`` column-major products ``C(m, n) = A(m, k) B(k, n)``, no transposes.

    A row-major product is the same call with the operands and ``m``, ``n`` swapped.
    """
    if m < 1 or n < 1 or k < 1 or a.shape[0] < m * k or b.shape[0] < k * n or c.shape[0] < m * n:
        raise ValueError(f"buffers too small or empty for a ({m}, {k}) x ({k}, {n}) product")
    cdef char trans = b"N"
    cdef real alpha = 1, beta = 0
    cdef int i
    with nogil:
        for i in range(reps):
            if real is float:
                sgemm(&trans, &trans, &m, &n, &k, &alpha, <float *> &a[0], &m,
                      <float *> &b[0], &k, &beta, &c[0], &m)
            else:
                dgemm(&trans, &trans, &m, &n, &k, &alpha, <double *> &a[0], &m,
                      <double *> &b[0], &k, &beta, &c[0], &m)
