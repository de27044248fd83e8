# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Glue between NumPy arrays and crnn's C kernels (include/crnn/crnn.h).

This module only checks that the buffers it hands to C are consistent with each other,
releases the GIL around one C call and turns C status codes into exceptions. User-facing
validation (dtypes, NaN, value ranges, friendly messages) lives in :mod:`crnn.functional`.
"""
cimport numpy as np
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.math cimport isfinite
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv

import os

import numpy as np

np.import_array()

cdef extern from "crnn/crnn.h" nogil:
    ctypedef struct crnn_dims:
        int cell, T, B, n_in, H, ldx, ldy, reverse, masked
    ctypedef struct crnn_readout_dims:
        int kind, T, B, D, H, A
    ctypedef void (*crnn_sgemm_fn)(int, int, int, int, int, float, const float *, int,
                                   const float *, int, float, float *, int) noexcept nogil
    ctypedef void (*crnn_dgemm_fn)(int, int, int, int, int, double, const double *, int,
                                   const double *, int, double, double *, int) noexcept nogil
    ctypedef void (*crnn_sgemv_fn)(int, int, int, float, const float *, int, const float *,
                                   float, float *) noexcept nogil
    ctypedef void (*crnn_dgemv_fn)(int, int, int, double, const double *, int, const double *,
                                   double, double *) noexcept nogil
    ctypedef struct crnn_blas_f32:
        crnn_sgemm_fn gemm
        crnn_sgemv_fn gemv
        double small_gemm
    ctypedef struct crnn_blas_f64:
        crnn_dgemm_fn gemm
        crnn_dgemv_fn gemv
        double small_gemm
    int CRNN_OK, CRNN_ERR_CELL, CRNN_ERR_DIMS, CRNN_ERR_LENGTHS, CRNN_ERR_TRUNCATE, CRNN_ERR_NULL
    int CRNN_ERR_READOUT
    int CRNN_RNN_TANH, CRNN_RNN_RELU, CRNN_LSTM, CRNN_GRU
    int CRNN_READOUT_LAST, CRNN_READOUT_MEAN, CRNN_READOUT_MAX, CRNN_READOUT_ATTENTION
    int crnn_gates(int cell)
    size_t crnn_reserve_size(const crnn_dims *d)
    size_t crnn_workspace_size(const crnn_dims *d)
    ctypedef struct crnn_layer_f32:
        const float *x
        const int *lengths
        const float *W_x
        const float *W_h
        const float *b
        const float *b_hn
        const float *h0
        const float *c0
        const float *mask
        float *y
        float *hn
        float *cn
        float *reserve
    ctypedef struct crnn_layer_f64:
        const double *x
        const int *lengths
        const double *W_x
        const double *W_h
        const double *b
        const double *b_hn
        const double *h0
        const double *c0
        const double *mask
        double *y
        double *hn
        double *cn
        double *reserve
    ctypedef struct crnn_grads_f32:
        const float *dy
        const float *dhn
        const float *dcn
        float *dx
        float *dh0
        float *dc0
        float *dW_x
        float *dW_h
        float *db
        float *db_hn
    ctypedef struct crnn_grads_f64:
        const double *dy
        const double *dhn
        const double *dcn
        double *dx
        double *dh0
        double *dc0
        double *dW_x
        double *dW_h
        double *db
        double *db_hn
    int crnn_forward_f32(const crnn_blas_f32 *, const crnn_dims *, const crnn_layer_f32 *,
                         float *)
    int crnn_forward_f64(const crnn_blas_f64 *, const crnn_dims *, const crnn_layer_f64 *,
                         double *)
    int crnn_backward_f32(const crnn_blas_f32 *, const crnn_dims *, const crnn_layer_f32 *,
                          const crnn_grads_f32 *, int, float *)
    int crnn_backward_f64(const crnn_blas_f64 *, const crnn_dims *, const crnn_layer_f64 *,
                          const crnn_grads_f64 *, int, double *)
    size_t crnn_readout_params_size(const crnn_readout_dims *d)
    size_t crnn_readout_reserve_size(const crnn_readout_dims *d)
    int crnn_readout_forward_f32(const crnn_blas_f32 *, const crnn_readout_dims *,
                                 const float *, const int *, const float *, float *, float *)
    int crnn_readout_forward_f64(const crnn_blas_f64 *, const crnn_readout_dims *,
                                 const double *, const int *, const double *, double *,
                                 double *)
    int crnn_readout_backward_f32(const crnn_blas_f32 *, const crnn_readout_dims *,
                                  const float *, const int *, const float *, float *,
                                  const float *, float *, float *)
    int crnn_readout_backward_f64(const crnn_blas_f64 *, const crnn_readout_dims *,
                                  const double *, const int *, const double *, double *,
                                  const double *, double *, double *)
    int crnn_adam_update_f32(size_t, float *, const float *, float *, float *, float, float,
                             float, float)
    int crnn_adam_update_f64(size_t, double *, const double *, double *, double *, double,
                             double, double, double)
    int crnn_sgd_update_f32(size_t, float *, const float *, float *, float, float, int)
    int crnn_sgd_update_f64(size_t, double *, const double *, double *, double, double, int)
    int crnn_sum_squares_f32(size_t, const float *, double *)
    int crnn_sum_squares_f64(size_t, const double *, double *)
    int CRNN_PLAN_STEP, CRNN_PLAN_ATB
    int crnn_product_plan_f32(const crnn_blas_f32 *, int, int, int, int, int *, int *, int *)
    int crnn_product_plan_f64(const crnn_blas_f64 *, int, int, int, int, int *, int *, int *)
    int crnn_dense_f32(const crnn_blas_f32 *, int, int, int, const float *, int, const float *,
                       const float *, float *)
    int crnn_dense_f64(const crnn_blas_f64 *, int, int, int, const double *, int,
                       const double *, const double *, double *)
    int CRNN_MAX_LAYERS, CRNN_ERR_NET, CRNN_ERR_TARGET
    int CRNN_SEQ2VEC, CRNN_SEQ2SEQ, CRNN_ENCDEC, CRNN_HEAD_SOFTMAX, CRNN_HEAD_LINEAR
    int CRNN_ADAM, CRNN_SGD
    ctypedef struct crnn_stack:
        int cell, n_layers, D, n_in
        const int *hidden
    ctypedef struct crnn_net:
        int kind
        crnn_stack enc, dec
        int readout, A, head, n_out, truncate
    ctypedef struct crnn_batch_f32:
        int T, B, T_out
        const float *x
        const float *dec_x
        const int *lengths
        const int *codes
        const int *dec_lengths
        const int *dec_order
        const float *targets
        const double *weights
        double batch_weight
        const float *input_mean
        const float *input_scale
        const float *input_mask
        const float *rec_mask
        const float *drop_mask
    ctypedef struct crnn_batch_f64:
        int T, B, T_out
        const double *x
        const double *dec_x
        const int *lengths
        const int *codes
        const int *dec_lengths
        const int *dec_order
        const double *targets
        const double *weights
        double batch_weight
        const double *input_mean
        const double *input_scale
        const double *input_mask
        const double *rec_mask
        const double *drop_mask
    ctypedef struct crnn_optimizer:
        int solver
        double lr, beta_1, beta_2, eps, momentum
        int nesterov
    size_t crnn_net_params_size(const crnn_net *)
    size_t crnn_net_arena_size_f32(const crnn_net *, int, int, int)
    size_t crnn_net_arena_size_f64(const crnn_net *, int, int, int)
    int crnn_net_grad_f32(const crnn_blas_f32 *, const crnn_net *, const crnn_batch_f32 *,
                          const float *, float *, float *, size_t, double *)
    int crnn_net_grad_f64(const crnn_blas_f64 *, const crnn_net *, const crnn_batch_f64 *,
                          const double *, double *, double *, size_t, double *)
    int crnn_train_update_f32(size_t, float *, float *, const float *, double,
                              const crnn_optimizer *, float *, float *, double *, double *,
                              int *)
    int crnn_train_update_f64(size_t, double *, double *, const double *, double,
                              const crnn_optimizer *, double *, double *, double *, double *,
                              int *)
    size_t crnn_net_decode_arena_size_f32(const crnn_net *, int)
    size_t crnn_net_decode_arena_size_f64(const crnn_net *, int)
    int crnn_net_decode_f32(const crnn_blas_f32 *, const crnn_net *, const float *, int, int,
                            float *, float *, float *, float *, size_t)
    int crnn_net_decode_f64(const crnn_blas_f64 *, const crnn_net *, const double *, int, int,
                            double *, double *, double *, double *, size_t)

# SciPy's BLAS is Fortran: column-major, every argument by pointer. A row-major product
# C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, so the shims swap the operands.
# SciPy declares its BLAS integers as plain C int; this is the one place that relies on it.
cdef void _sgemm_rowmajor(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta,
                          float *c, int ldc) noexcept nogil:
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    sgemm(&ta, &tb, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)

cdef void _dgemm_rowmajor(int trans_a, int trans_b, int m, int n, int k, double alpha,
                          const double *a, int lda, const double *b, int ldb, double beta,
                          double *c, int ldc) noexcept nogil:
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    dgemm(&ta, &tb, &n, &m, &k, &alpha, <double *>b, &ldb, <double *>a, &lda, &beta, c, &ldc)

# Row-major A (m x n) is the column-major A^T (n x m): y = A x is Fortran's "T" product.
cdef void _sgemv_rowmajor(int trans, int m, int n, float alpha, const float *a, int lda,
                          const float *x, float beta, float *y) noexcept nogil:
    cdef char t = b'N' if trans else b'T'
    cdef int one = 1
    sgemv(&t, &n, &m, &alpha, <float *>a, &lda, <float *>x, &one, &beta, y, &one)

cdef void _dgemv_rowmajor(int trans, int m, int n, double alpha, const double *a, int lda,
                          const double *x, double beta, double *y) noexcept nogil:
    cdef char t = b'N' if trans else b'T'
    cdef int one = 1
    dgemv(&t, &n, &m, &alpha, <double *>a, &lda, <double *>x, &one, &beta, y, &one)

cdef crnn_blas_f32 _blas_f32
cdef crnn_blas_f64 _blas_f64
_blas_f32.gemm, _blas_f32.gemv = _sgemm_rowmajor, _sgemv_rowmajor
_blas_f64.gemm, _blas_f64.gemv = _dgemm_rowmajor, _dgemv_rowmajor

# OpenBLAS's cores with small-matrix GEMM kernels (0.3.x: its AVX-512 targets), which run
# products of up to about 10^6 multiply-adds fastest (see include/crnn/crnn.h, small_gemm).
_SMALL_GEMM_CORES = {"skylakex", "cooperlake", "sapphirerapids"}


def _detect_small_gemm():
    """1e6 if SciPy's BLAS (already loaded by the cimport above) is an OpenBLAS running
    small-matrix kernels, else 0. NumPy may load an OpenBLAS of its own: SciPy's is the one
    under a path naming SciPy, or the only one."""
    try:
        from threadpoolctl import threadpool_info
        libs = [lib for lib in threadpool_info() if lib.get("internal_api") == "openblas"]
    except Exception:  # threadpoolctl missing or failing: assume no small-matrix kernels
        return 0.0
    scipy_libs = [lib for lib in libs if "scipy" in os.path.dirname(lib.get("filepath", ""))]
    chosen = scipy_libs if scipy_libs else libs
    if len(chosen) != 1:
        return 0.0
    core = str(chosen[0].get("architecture") or "").lower()
    return 1e6 if core in _SMALL_GEMM_CORES else 0.0


def small_gemm():
    """The small-matrix GEMM size the kernels plan their products with (0: none)."""
    return _blas_f32.small_gemm


def set_small_gemm(double value):
    """Set it (tests and benchmarks: e.g. 0 to run the plan of a BLAS without small-matrix
    kernels); returns the previous value. Not thread-safe against running kernels."""
    previous = _blas_f32.small_gemm
    _blas_f32.small_gemm = _blas_f64.small_gemm = value
    return previous


_blas_f32.small_gemm = _blas_f64.small_gemm = _detect_small_gemm()

CELLS = {"rnn_tanh": CRNN_RNN_TANH, "rnn_relu": CRNN_RNN_RELU, "lstm": CRNN_LSTM,
         "gru": CRNN_GRU}

_STATUS_MESSAGES = {
    CRNN_ERR_CELL: "unknown cell kind",
    CRNN_ERR_DIMS: "every size must be at least 1, T*B and 4*hidden_size must fit in a C int",
    CRNN_ERR_LENGTHS: "lengths must lie in [1, T] and be sorted non-increasing",
    CRNN_ERR_TRUNCATE: "truncate must be >= 0",
    CRNN_ERR_NULL: "a required buffer is missing",
    CRNN_ERR_READOUT: "unknown readout kind, or num_directions not 1 or 2",
    CRNN_ERR_NET: "an invalid network (kind, head or layers), or an arena too small",
    CRNN_ERR_TARGET: "a class code outside [0, n_outputs)",
}


cdef int _raise_status(int status) except -1:
    raise ValueError(f"crnn kernel refused the call: "
                     f"{_STATUS_MESSAGES.get(status, 'unknown status')} (status {status})")


_PATHS = ("gemv", "whole", "row_chunks", "transposed", "column_blocks")  # crnn_path


def product_plan(str product, int m, int n, int k, bint double=False):
    """The path the kernels take for one product (include/crnn/crnn.h, crnn_product_plan).

    ``product`` is "step" (a per-step recurrent product ``(m, n) = (m, k)(k, n)``) or "atb"
    (a weight gradient ``(m, n) += A^T B`` over ``k`` rows); ``double`` plans for float64.
    Returns ``(path, chunk, width)``: a name of ``_PATHS``, rows and columns per product.
    """
    cdef int plan = 0, chunk = 0, width = 0, status
    _check(product in ("step", "atb"), f"product must be 'step' or 'atb', got {product!r}")
    cdef int kind = CRNN_PLAN_STEP if product == "step" else CRNN_PLAN_ATB
    if double:
        status = crnn_product_plan_f64(&_blas_f64, kind, m, n, k, &plan, &chunk, &width)
    else:
        status = crnn_product_plan_f32(&_blas_f32, kind, m, n, k, &plan, &chunk, &width)
    if status != CRNN_OK:
        _raise_status(status)
    return _PATHS[plan], chunk, width


cdef crnn_dims _dims(int cell, int T, int B, int I, int H, int ldx, int ldy, bint reverse,
                     bint masked):
    cdef crnn_dims d
    d.cell, d.T, d.B, d.n_in, d.H, d.ldx, d.ldy, d.reverse = cell, T, B, I, H, ldx, ldy, reverse
    d.masked = masked
    return d


def buffer_sizes(int cell, int T, int B, int I, int H, bint masked=False):
    """(reserve, workspace) element counts for one layer direction (``masked``: with a
    recurrent dropout mask); ValueError if invalid."""
    cdef crnn_dims d = _dims(cell, T, B, I, H, I, H, 0, masked)
    cdef size_t reserve = crnn_reserve_size(&d)
    if reserve == 0:
        _raise_status(CRNN_ERR_CELL if crnn_gates(cell) == 0 else CRNN_ERR_DIMS)
    return reserve, crnn_workspace_size(&d)


cdef int _check(bint ok, str what) except -1:
    if not ok:
        raise ValueError(f"crnn kernel: inconsistent buffers: {what}")
    return 0


cdef int _check_state(object a, Py_ssize_t B, Py_ssize_t H, str name) except -1:
    if a is not None:
        _check(a.shape[0] == B and a.shape[1] == H, f"{name} must be (B, H)")
    return 0


cdef crnn_dims _forward_dims(int cell, const floating[:, :, ::1] x, const int[::1] lengths,
                             const floating[:, ::1] W_x, const floating[:, ::1] W_h,
                             const floating[::1] b, const floating[::1] b_hn,
                             const floating[:, ::1] h0, const floating[:, ::1] c0,
                             const floating[:, :, ::1] y, Py_ssize_t y_offset,
                             const floating[:, ::1] hn, const floating[:, ::1] cn,
                             const floating[::1] reserve, bint reverse,
                             const floating[:, ::1] mask) except *:
    """The dims of a forward call, after checking that every buffer it takes has the size
    they imply."""
    cdef int G = crnn_gates(cell)
    _check(G > 0, f"unknown cell {cell}")
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = W_h.shape[0]
    _check(W_x.shape[0] == I and W_x.shape[1] == G * H, "W_x must be (I, G*H)")
    _check(W_h.shape[1] == G * H, "W_h must be (H, G*H)")
    _check(lengths.shape[0] == B, "lengths must have one entry per sequence")
    _check(y.shape[0] == T and y.shape[1] == B, "y must be (T, B, ...)")
    _check(0 <= y_offset and y_offset + H <= y.shape[2], "y_offset + H must fit in y's rows")
    cdef crnn_dims d = _dims(cell, T, B, I, H, I, y.shape[2], reverse, mask is not None)
    _check_state(mask, B, H, "mask")
    _check(crnn_reserve_size(&d) > 0, "a size is zero or too large for the kernel")
    _check(<size_t>reserve.shape[0] >= crnn_reserve_size(&d), "reserve too small")
    _check(b.shape[0] == W_h.shape[1], "b must be (G*H,)")
    _check(b_hn is not None or cell != CRNN_GRU, "the GRU needs b_hn")
    _check(b_hn is None or b_hn.shape[0] == d.H, "b_hn must be (H,)")
    _check(cn is not None or cell != CRNN_LSTM, "the LSTM needs cn")
    _check_state(h0, d.B, d.H, "h0")
    _check_state(c0, d.B, d.H, "c0")
    _check_state(hn, d.B, d.H, "hn")
    _check_state(cn, d.B, d.H, "cn")
    return d


cdef class LayerCall:
    """One direction of one layer bound to its buffers: the dims and the tensors of its C
    calls (``crnn_layer_*`` in include/crnn/crnn.h), checked once by ``forward``, which
    returns it, and read again by ``backward``, which takes it. It holds the buffers that
    backward reads (the reserve among them) alive and unresizable; one forward serves one
    backward."""
    cdef crnn_dims dims
    cdef crnn_layer_f32 f32
    cdef crnn_layer_f64 f64
    cdef bint single
    cdef Py_ssize_t y_offset
    cdef object buffers  # the memoryviews the struct points into

    def __init__(self):
        raise TypeError("a LayerCall comes from _kernels.forward")


cdef int _bind(LayerCall call, int cell, const floating[:, :, ::1] x, const int[::1] lengths,
               const floating[:, ::1] W_x, const floating[:, ::1] W_h, const floating[::1] b,
               const floating[::1] b_hn, const floating[:, ::1] h0, const floating[:, ::1] c0,
               floating[:, :, ::1] y, Py_ssize_t y_offset, floating[:, ::1] hn,
               floating[:, ::1] cn, floating[::1] reserve, bint reverse,
               const floating[:, ::1] mask, bint keep) except -1:
    """Check a forward call's buffers and bind ``call`` to them; with ``keep``, ``call``
    holds them (else it must not outlive this call's arguments)."""
    call.dims = _forward_dims(cell, x, lengths, W_x, W_h, b, b_hn, h0, c0, y, y_offset, hn, cn,
                              reserve, reverse, mask)
    call.single = floating is float
    call.y_offset = y_offset
    if keep:  # what backward reads (a memoryview object each, ~0.1 us)
        call.buffers = (x, lengths, W_x, W_h, h0, c0, mask, y, reserve)
    if floating is float:
        call.f32.x, call.f32.lengths = &x[0, 0, 0], &lengths[0]
        call.f32.W_x, call.f32.W_h, call.f32.b = &W_x[0, 0], &W_h[0, 0], &b[0]
        call.f32.b_hn = &b_hn[0] if b_hn is not None else NULL
        call.f32.h0 = &h0[0, 0] if h0 is not None else NULL
        call.f32.c0 = &c0[0, 0] if c0 is not None else NULL
        call.f32.mask = &mask[0, 0] if mask is not None else NULL
        call.f32.y, call.f32.hn = &y[0, 0, 0] + y_offset, &hn[0, 0]
        call.f32.cn = &cn[0, 0] if cn is not None else NULL
        call.f32.reserve = &reserve[0]
    else:
        call.f64.x, call.f64.lengths = &x[0, 0, 0], &lengths[0]
        call.f64.W_x, call.f64.W_h, call.f64.b = &W_x[0, 0], &W_h[0, 0], &b[0]
        call.f64.b_hn = &b_hn[0] if b_hn is not None else NULL
        call.f64.h0 = &h0[0, 0] if h0 is not None else NULL
        call.f64.c0 = &c0[0, 0] if c0 is not None else NULL
        call.f64.mask = &mask[0, 0] if mask is not None else NULL
        call.f64.y, call.f64.hn = &y[0, 0, 0] + y_offset, &hn[0, 0]
        call.f64.cn = &cn[0, 0] if cn is not None else NULL
        call.f64.reserve = &reserve[0]
    return 0


def forward(int cell, const floating[:, :, ::1] x, const int[::1] lengths,
            const floating[:, ::1] W_x, const floating[:, ::1] W_h, const floating[::1] b,
            const floating[::1] b_hn, const floating[:, ::1] h0, const floating[:, ::1] c0,
            floating[:, :, ::1] y, Py_ssize_t y_offset, floating[:, ::1] hn,
            floating[:, ::1] cn, floating[::1] reserve, floating[::1] workspace,
            bint reverse, const floating[:, ::1] mask=None, bint bind=True):
    """One direction of one layer, forward. This direction writes y[t, b, y_offset:y_offset+H]
    for t < lengths[b] only: the caller zeroes the padding (t >= lengths[b]) if it reads it.
    b_hn (GRU), h0, c0 and cn (LSTM) may be None; mask (B, H), the recurrent dropout mask, is
    None without it (the reserve then is smaller). Returns the LayerCall bound to these
    buffers, for ``backward``; None if not ``bind`` (no backward will follow)."""
    cdef LayerCall call = LayerCall.__new__(LayerCall)
    _bind(call, cell, x, lengths, W_x, W_h, b, b_hn, h0, c0, y, y_offset, hn, cn, reserve,
          reverse, mask, bind)
    _check(<size_t>workspace.shape[0] >= crnn_workspace_size(&call.dims), "workspace too small")
    cdef int status
    with nogil:
        if floating is float:
            status = crnn_forward_f32(&_blas_f32, &call.dims, &call.f32, &workspace[0])
        else:
            status = crnn_forward_f64(&_blas_f64, &call.dims, &call.f64, &workspace[0])
    if status != CRNN_OK:
        _raise_status(status)
    return call if bind else None


def backward(LayerCall call not None, floating[::1] workspace, const floating[:, :, ::1] dy,
             const floating[:, ::1] dhn, const floating[:, ::1] dcn, int truncate,
             floating[:, :, ::1] dx, floating[:, ::1] dh0, floating[:, ::1] dc0,
             floating[:, ::1] dW_x, floating[:, ::1] dW_h, floating[::1] db,
             floating[::1] db_hn):
    """BPTT through the forward call that returned ``call`` (its buffers, the reserve it
    filled); accumulates into dx, dh0, dc0, dW_x, dW_h, db, db_hn. dy has y's shape and
    shares its offset. dy, dhn, dcn, dx, dh0, dc0 may be None; db_hn is the GRU's only.
    (workspace comes first: Cython picks the dtype from the first fused argument, which
    must not be None.)"""
    cdef const crnn_dims *d = &call.dims
    cdef Py_ssize_t GH = crnn_gates(d.cell) * d.H
    if floating is float:
        _check(call.single, "the gradients must have the forward's dtype")
    else:
        _check(not call.single, "the gradients must have the forward's dtype")
    _check(dy is None or (dy.shape[0] == d.T and dy.shape[1] == d.B and dy.shape[2] == d.ldy),
           "dy must have y's shape")
    _check(dx is None or (dx.shape[0] == d.T and dx.shape[1] == d.B and dx.shape[2] == d.n_in),
           "dx must have x's shape")
    _check(dW_x.shape[0] == d.n_in and dW_x.shape[1] == GH, "dW_x must have W_x's shape")
    _check(dW_h.shape[0] == d.H and dW_h.shape[1] == GH, "dW_h must have W_h's shape")
    _check(db.shape[0] == GH, "db must be (G*H,)")
    _check(db_hn is not None or d.cell != CRNN_GRU, "the GRU needs db_hn")
    _check(db_hn is None or db_hn.shape[0] == d.H, "db_hn must be (H,)")
    for a, name in ((dhn, "dhn"), (dcn, "dcn"), (dh0, "dh0"), (dc0, "dc0")):
        _check_state(a, d.B, d.H, name)
    _check(<size_t>workspace.shape[0] >= crnn_workspace_size(d), "workspace too small")
    cdef crnn_grads_f32 g32
    cdef crnn_grads_f64 g64
    cdef int status
    if floating is float:
        g32.dy = &dy[0, 0, 0] + call.y_offset if dy is not None else NULL
        g32.dhn = &dhn[0, 0] if dhn is not None else NULL
        g32.dcn = &dcn[0, 0] if dcn is not None else NULL
        g32.dx = &dx[0, 0, 0] if dx is not None else NULL
        g32.dh0 = &dh0[0, 0] if dh0 is not None else NULL
        g32.dc0 = &dc0[0, 0] if dc0 is not None else NULL
        g32.dW_x, g32.dW_h, g32.db = &dW_x[0, 0], &dW_h[0, 0], &db[0]
        g32.db_hn = &db_hn[0] if db_hn is not None else NULL
        with nogil:
            status = crnn_backward_f32(&_blas_f32, d, &call.f32, &g32, truncate, &workspace[0])
    else:
        g64.dy = &dy[0, 0, 0] + call.y_offset if dy is not None else NULL
        g64.dhn = &dhn[0, 0] if dhn is not None else NULL
        g64.dcn = &dcn[0, 0] if dcn is not None else NULL
        g64.dx = &dx[0, 0, 0] if dx is not None else NULL
        g64.dh0 = &dh0[0, 0] if dh0 is not None else NULL
        g64.dc0 = &dc0[0, 0] if dc0 is not None else NULL
        g64.dW_x, g64.dW_h, g64.db = &dW_x[0, 0], &dW_h[0, 0], &db[0]
        g64.db_hn = &db_hn[0] if db_hn is not None else NULL
        with nogil:
            status = crnn_backward_f64(&_blas_f64, d, &call.f64, &g64, truncate, &workspace[0])
    if status != CRNN_OK:
        _raise_status(status)


cdef int _bind_head(const floating[:, ::1] W, const floating[::1] b, floating[:, ::1] out,
                    int n_batch, int n_hidden, void **head) except -1:
    _check(W.shape[0] == n_hidden and b.shape[0] == W.shape[1] and out.shape[0] == n_batch
           and out.shape[1] == W.shape[1], "head: W (H, n_out), b (n_out,), out (B, n_out)")
    _check(W.shape[1] >= 1, "head: n_out >= 1")
    head[0], head[1], head[2] = <void *>&W[0, 0], <void *>&b[0], &out[0, 0]
    return 0


cdef class StepKernel:
    """``forward`` with T = 1 through every layer of a one-way stack, bound once to its
    buffers: ``functional.Stream`` runs one call per step, and the buffer checks of
    ``forward`` (a few microseconds, more than a small layer's step) happen here once.

    ``layers`` holds ``(W_x, W_h, b, b_hn, h, c, y, reserve)`` per layer; layer l reads
    ``x`` (l = 0, shape (1, B, I)) or layer l-1's ``y`` (1, B, H); ``h`` and ``c`` are both
    the initial and the final state. ``head``, if given, is ``(W, b, out)``: a dense layer
    ``out (B, n_out) = y W + b`` on the last layer's ``y``, run after it. The arrays are
    kept alive, and must not be resized.
    """
    cdef int n_layers, n_batch, n_in, n_out  # not B, I: complex.h defines I
    cdef bint single
    cdef crnn_dims *dims
    cdef crnn_layer_f32 *f32
    cdef crnn_layer_f64 *f64
    cdef void *head[3]
    cdef void *workspace
    cdef object arrays

    def __cinit__(self):
        self.n_layers = 0
        self.dims, self.f32, self.f64 = NULL, NULL, NULL

    def __init__(self, int cell, x, const int[::1] lengths, list layers, workspace, head=None):
        cdef Py_ssize_t l, n = len(layers)
        cdef LayerCall call
        cdef float[::1] workspace_f32
        cdef double[::1] workspace_f64
        _check(n >= 1, "at least one layer")
        self.n_layers = 0  # unusable until bound; a second __init__ rebinds
        self._free()
        self.dims = <crnn_dims *>PyMem_Malloc(n * sizeof(crnn_dims))
        self.f32 = <crnn_layer_f32 *>PyMem_Malloc(n * sizeof(crnn_layer_f32))
        self.f64 = <crnn_layer_f64 *>PyMem_Malloc(n * sizeof(crnn_layer_f64))
        if self.dims == NULL or self.f32 == NULL or self.f64 == NULL:
            raise MemoryError()
        self.single = x.dtype == np.float32
        calls = []
        layer_input = x
        for l in range(n):
            W_x, W_h, b, b_hn, h, c, y, reserve = layers[l]
            call = LayerCall.__new__(LayerCall)  # a stream runs without dropout: no mask
            if self.single:
                _bind[float](call, cell, layer_input, lengths, W_x, W_h, b, b_hn, h, c, y, 0,
                             h, c, reserve, False, None, True)
                workspace_f32 = workspace
                _check(<size_t>workspace_f32.shape[0] >= crnn_workspace_size(&call.dims),
                       "workspace too small")
            else:
                _bind[double](call, cell, layer_input, lengths, W_x, W_h, b, b_hn, h, c, y, 0,
                              h, c, reserve, False, None, True)
                workspace_f64 = workspace
                _check(<size_t>workspace_f64.shape[0] >= crnn_workspace_size(&call.dims),
                       "workspace too small")
            _check(call.dims.T == 1, "a step has T = 1")
            self.dims[l], self.f32[l], self.f64[l] = call.dims, call.f32, call.f64
            calls.append(call)
            layer_input = y
        self.n_batch, self.n_in, self.n_out = self.dims[0].B, self.dims[0].n_in, 0
        if head is not None:
            W, b, out = head
            if self.single:
                _bind_head[float](W, b, out, self.n_batch, self.dims[n - 1].H, self.head)
            else:
                _bind_head[double](W, b, out, self.n_batch, self.dims[n - 1].H, self.head)
            self.n_out = W.shape[1]
        # The calls hold what backward would read; the head's arrays are kept alive too.
        self.arrays = (calls, layers, workspace, head)
        if self.single:
            self.workspace = &workspace_f32[0]
        else:
            self.workspace = &workspace_f64[0]
        self.n_layers = n

    cdef _free(self):
        PyMem_Free(self.dims)
        PyMem_Free(self.f32)
        PyMem_Free(self.f64)
        self.dims, self.f32, self.f64 = NULL, NULL, NULL

    def __dealloc__(self):
        self._free()

    def run_f32(self, const float[:, :] x, bint check_finite):
        """Copy x (B, I) into the input buffer and run every layer (and the head) one step.
        Returns False, with nothing run, if check_finite and x holds NaN or infinity."""
        _check(self.single, "run_f32 on a float64 kernel")
        return _run_step(self, x, check_finite)

    def run_f64(self, const double[:, :] x, bint check_finite):
        """run_f32 for float64."""
        _check(not self.single, "run_f64 on a float32 kernel")
        return _run_step(self, x, check_finite)


cdef bint _run_step(StepKernel k, const floating[:, :] x, bint check_finite) except -1:
    _check(k.n_layers > 0, "the StepKernel has no buffers bound")
    _check(x.shape[0] == k.n_batch and x.shape[1] == k.n_in, "x must be (B, I)")
    # The input buffer is the StepKernel's own (functional.Stream's), written here.
    cdef floating *dst
    if floating is float:
        dst = <float *>k.f32[0].x
    else:
        dst = <double *>k.f64[0].x
    cdef bint finite = True
    cdef Py_ssize_t i, j
    cdef int l, status = CRNN_OK
    with nogil:
        for i in range(k.n_batch):
            for j in range(k.n_in):
                dst[i * k.n_in + j] = x[i, j]
                finite = finite and isfinite(x[i, j])
        if finite or not check_finite:
            for l in range(k.n_layers):
                if floating is float:
                    status = crnn_forward_f32(&_blas_f32, &k.dims[l], &k.f32[l],
                                              <float *>k.workspace)
                else:
                    status = crnn_forward_f64(&_blas_f64, &k.dims[l], &k.f64[l],
                                              <double *>k.workspace)
                if status != CRNN_OK:
                    break
            if status == CRNN_OK and k.n_out > 0:
                l = k.n_layers - 1
                if floating is float:
                    status = crnn_dense_f32(
                        &_blas_f32, k.n_batch, k.dims[l].H, k.n_out, k.f32[l].y,
                        k.dims[l].ldy, <float *>k.head[0], <float *>k.head[1],
                        <float *>k.head[2])
                else:
                    status = crnn_dense_f64(
                        &_blas_f64, k.n_batch, k.dims[l].H, k.n_out, k.f64[l].y,
                        k.dims[l].ldy, <double *>k.head[0], <double *>k.head[1],
                        <double *>k.head[2])
    if status != CRNN_OK:
        _raise_status(status)
    return finite or not check_finite


# ------------------------------------------------------------------------------ readouts

READOUTS = {"last": CRNN_READOUT_LAST, "mean": CRNN_READOUT_MEAN, "max": CRNN_READOUT_MAX,
            "attention": CRNN_READOUT_ATTENTION}


cdef crnn_readout_dims _readout_dims(int kind, int T, int B, int D, int H, int A):
    cdef crnn_readout_dims d
    d.kind, d.T, d.B, d.D, d.H, d.A = kind, T, B, D, H, A
    return d


def readout_sizes(int kind, int T, int B, int D, int H, int A):
    """(params, reserve) element counts of a readout (0 for kinds that have none)."""
    cdef crnn_readout_dims d = _readout_dims(kind, T, B, D, H, A)
    return crnn_readout_params_size(&d), crnn_readout_reserve_size(&d)


cdef crnn_readout_dims _checked_readout(int kind, const floating[:, :, ::1] Y,
                                        const int[::1] lengths, int D,
                                        const floating[::1] params,
                                        const floating[::1] reserve) except *:
    """The dims of a readout call, after checking its buffers' sizes."""
    cdef Py_ssize_t T = Y.shape[0], B = Y.shape[1], F = Y.shape[2]
    _check(D in (1, 2) and F % D == 0, "Y's last axis must hold num_directions equal halves")
    _check(lengths.shape[0] == B, "lengths must have one entry per sequence")
    cdef Py_ssize_t n_params = params.shape[0] if params is not None else 0
    # ATTENTION's params are F*A + 2A: A follows from their size.
    cdef int A = n_params // (F + 2) if kind == CRNN_READOUT_ATTENTION else 0
    cdef crnn_readout_dims d = _readout_dims(kind, T, B, D, F // D, A)
    _check(<size_t>n_params == crnn_readout_params_size(&d), "params has the wrong size")
    _check(reserve is None or <size_t>reserve.shape[0] >= crnn_readout_reserve_size(&d),
           "reserve too small")
    _check(reserve is not None or crnn_readout_reserve_size(&d) == 0, "reserve missing")
    return d


def readout_forward(int kind, const floating[:, :, ::1] Y, const int[::1] lengths, int D,
                    const floating[::1] params, floating[:, ::1] out, floating[::1] reserve):
    """out (B, F) = the readout of Y (T, B, F); params and reserve are None for the kinds
    without them."""
    cdef crnn_readout_dims d = _checked_readout(kind, Y, lengths, D, params, reserve)
    _check(out.shape[0] == d.B and out.shape[1] == Y.shape[2], "out must be (B, F)")
    cdef const floating *params_p = &params[0] if params is not None else NULL
    cdef floating *reserve_p = &reserve[0] if reserve is not None else NULL
    cdef int status
    with nogil:
        if floating is float:
            status = crnn_readout_forward_f32(&_blas_f32, &d, &Y[0, 0, 0], &lengths[0],
                                              params_p, &out[0, 0], reserve_p)
        else:
            status = crnn_readout_forward_f64(&_blas_f64, &d, &Y[0, 0, 0], &lengths[0],
                                              params_p, &out[0, 0], reserve_p)
    if status != CRNN_OK:
        _raise_status(status)


def readout_backward(int kind, const floating[:, :, ::1] Y, const int[::1] lengths, int D,
                     const floating[::1] params, floating[::1] reserve,
                     const floating[:, ::1] dout, floating[:, :, ::1] dY,
                     floating[::1] dparams):
    """Accumulates into dY (Y's shape) and dparams (params' shape, or None) the gradient of
    readout_forward's call with the same arguments and reserve."""
    cdef crnn_readout_dims d = _checked_readout(kind, Y, lengths, D, params, reserve)
    _check(dout.shape[0] == d.B and dout.shape[1] == Y.shape[2], "dout must be (B, F)")
    _check(dY.shape[0] == d.T and dY.shape[1] == d.B and dY.shape[2] == Y.shape[2],
           "dY must have Y's shape")
    _check((dparams is None and params is None) or
           (dparams is not None and params is not None
            and dparams.shape[0] == params.shape[0]), "dparams must have params' shape")
    cdef const floating *params_p = &params[0] if params is not None else NULL
    cdef floating *reserve_p = &reserve[0] if reserve is not None else NULL
    cdef floating *dparams_p = &dparams[0] if dparams is not None else NULL
    cdef int status
    with nogil:
        if floating is float:
            status = crnn_readout_backward_f32(&_blas_f32, &d, &Y[0, 0, 0], &lengths[0],
                                               params_p, reserve_p, &dout[0, 0], &dY[0, 0, 0],
                                               dparams_p)
        else:
            status = crnn_readout_backward_f64(&_blas_f64, &d, &Y[0, 0, 0], &lengths[0],
                                               params_p, reserve_p, &dout[0, 0], &dY[0, 0, 0],
                                               dparams_p)
    if status != CRNN_OK:
        _raise_status(status)


# ------------------------------------------------------------------------------ optimizers

def adam_update(floating[::1] params, const floating[::1] grad, floating[::1] m,
                floating[::1] v, double lr_t, double beta_1, double beta_2, double eps):
    """One Adam step on flat arrays of one dtype and length, in place (see crnn.h)."""
    _check(grad.shape[0] == params.shape[0] and m.shape[0] == params.shape[0]
           and v.shape[0] == params.shape[0], "params, grad, m and v must have one length")
    cdef size_t n = params.shape[0]
    cdef int status
    if n == 0:
        return
    with nogil:
        if floating is float:
            status = crnn_adam_update_f32(n, &params[0], &grad[0], &m[0], &v[0], <float>lr_t,
                                          <float>beta_1, <float>beta_2, <float>eps)
        else:
            status = crnn_adam_update_f64(n, &params[0], &grad[0], &m[0], &v[0], lr_t, beta_1,
                                          beta_2, eps)
    if status != CRNN_OK:
        _raise_status(status)


def sgd_update(floating[::1] params, const floating[::1] grad, floating[::1] velocity,
               double lr, double momentum, bint nesterov):
    """One SGD-with-momentum step on flat arrays of one dtype and length, in place."""
    _check(grad.shape[0] == params.shape[0] and velocity.shape[0] == params.shape[0],
           "params, grad and velocity must have one length")
    cdef size_t n = params.shape[0]
    cdef int status
    if n == 0:
        return
    with nogil:
        if floating is float:
            status = crnn_sgd_update_f32(n, &params[0], &grad[0], &velocity[0], <float>lr,
                                         <float>momentum, nesterov)
        else:
            status = crnn_sgd_update_f64(n, &params[0], &grad[0], &velocity[0], lr, momentum,
                                         nesterov)
    if status != CRNN_OK:
        _raise_status(status)


def sum_squares(const floating[::1] x):
    """The sum of squares of a flat array, accumulated in double."""
    cdef double out = 0
    cdef size_t n = x.shape[0]
    cdef int status
    if n == 0:
        return 0.0
    with nogil:
        if floating is float:
            status = crnn_sum_squares_f32(n, &x[0], &out)
        else:
            status = crnn_sum_squares_f64(n, &x[0], &out)
    if status != CRNN_OK:
        _raise_status(status)
    return out


# ------------------------------------------------------------------------------ data movement

def gather_steps(const floating[:, :, ::1] x, const Py_ssize_t[::1] idx,
                 floating[:, :, ::1] out):
    """out[t, j] = x[idx[j], t] for t < out.shape[0]: sequences idx of a batch-major
    (N, T, F) array, as the time-major (steps, len(idx), F) array the kernels take, in one
    pass (NumPy takes two: a fancy-indexed copy, then a transposing one)."""
    cdef Py_ssize_t N = x.shape[0], F = x.shape[2], steps = out.shape[0], n = idx.shape[0]
    cdef Py_ssize_t j, t
    _check(out.shape[1] == n and out.shape[2] == F and steps <= x.shape[1],
           "out must be (steps, len(idx), F) with steps <= T")
    for j in range(n):
        _check(0 <= idx[j] < N, "an index in idx is out of range")
    if n == 0 or F == 0:
        return
    with nogil:
        for j in range(n):
            for t in range(steps):
                memcpy(&out[t, j, 0], &x[idx[j], t, 0], F * sizeof(floating))


# ------------------------------------------------------------------------------ networks

NET_KINDS = {"seq2vec": CRNN_SEQ2VEC, "seq2seq": CRNN_SEQ2SEQ, "encdec": CRNN_ENCDEC}
HEADS = {"softmax": CRNN_HEAD_SOFTMAX, "linear": CRNN_HEAD_LINEAR}
SOLVERS = {"adam": CRNN_ADAM, "sgd": CRNN_SGD}
MAX_LAYERS = CRNN_MAX_LAYERS
assert MAX_LAYERS == 64, "Net's hidden-size arrays hold 64 layers"


cdef class Net:
    """The shape of a network (``crnn_net`` in include/crnn/crnn.h): the encoder stack, for
    ``kind`` "encdec" the decoder that follows from it, the readout and the head."""
    cdef crnn_net net
    cdef int enc_hidden[64]
    cdef int dec_hidden[64]
    cdef readonly Py_ssize_t n_params

    def __init__(self, str kind, int cell, int n_in, tuple hidden, int num_directions,
                 int readout, int attention_size, str head, int n_out, int truncate):
        cdef int l, n = len(hidden)
        _check(1 <= n <= MAX_LAYERS, f"a network has 1 to {MAX_LAYERS} layers")
        for l in range(n):
            self.enc_hidden[l] = hidden[l]
            self.dec_hidden[l] = num_directions * hidden[l]
        self.net.kind, self.net.head = NET_KINDS[kind], HEADS[head]
        self.net.enc.cell, self.net.enc.n_layers, self.net.enc.D = cell, n, num_directions
        self.net.enc.n_in, self.net.enc.hidden = n_in, self.enc_hidden
        self.net.dec.cell, self.net.dec.n_layers, self.net.dec.D = cell, 0, 1
        self.net.dec.n_in, self.net.dec.hidden = n_out + 1, self.dec_hidden
        if kind == "encdec":
            self.net.dec.n_layers = n
        self.net.readout, self.net.A = readout, attention_size
        self.net.n_out, self.net.truncate = n_out, truncate
        self.n_params = crnn_net_params_size(&self.net)
        _check(self.n_params > 0, "an invalid network")


cdef class _Batch:
    """One minibatch's arrays as the C structs take them (both dtypes' fields; the call
    uses its own)."""
    cdef crnn_batch_f32 f32
    cdef crnn_batch_f64 f64
    cdef object arrays


cdef const void *_ptr(floating[::1] a, Py_ssize_t n, str name) except? NULL:
    """The first element of a flat view of n elements, or NULL for None (n is then ignored)."""
    if a is None:
        return NULL
    _check(a.shape[0] == n, f"{name} must hold {n} values")
    return &a[0]


cdef int _fill_batch(_Batch out, const crnn_net *net, floating[::1] x, int T, int B,
                     const int[::1] lengths, const int[::1] codes, floating[::1] targets,
                     const double[::1] weights, double batch_weight, int T_out,
                     floating[::1] dec_x, const int[::1] dec_lengths,
                     const int[::1] dec_order, floating[::1] input_mask,
                     floating[::1] rec_mask, floating[::1] drop_mask) except -1:
    """Check a minibatch's sizes against the network and point the dtype's struct at it."""
    cdef const crnn_stack *enc = &net.enc
    cdef const crnn_stack *dec = &net.dec
    cdef Py_ssize_t P, k = net.n_out, l, n_rec = 0, n_drop = 0
    cdef bint encdec = net.kind == CRNN_ENCDEC
    _check(T >= 1 and B >= 1 and x.shape[0] == <Py_ssize_t>T * B * enc.n_in,
           "x must be (T, B, n_in)")
    _check(lengths.shape[0] == B, "lengths must have one entry per sequence")
    P = B if net.kind == CRNN_SEQ2VEC else (<Py_ssize_t>T_out * B if encdec else
                                            <Py_ssize_t>T * B)
    _check(weights.shape[0] == P, "weights must have one entry per position")
    if net.head == CRNN_HEAD_SOFTMAX:
        _check(codes is not None and codes.shape[0] == P, "codes must have one per position")
    else:
        _check(targets is not None and targets.shape[0] == P * k,
               "targets must be (positions, n_outputs)")
    _check(not encdec or (T_out >= 1 and dec_x is not None and dec_lengths is not None),
           "encdec needs dec_x and dec_lengths")
    _check(dec_lengths is None or dec_lengths.shape[0] == B, "dec_lengths must be (B,)")
    _check(dec_order is None or dec_order.shape[0] == B, "dec_order must be (B,)")
    cdef const int *dec_lengths_p = &dec_lengths[0] if dec_lengths is not None else NULL
    cdef const int *dec_order_p = &dec_order[0] if dec_order is not None else NULL
    for l in range(enc.n_layers):
        n_rec += <Py_ssize_t>enc.D * B * enc.hidden[l]
        if l + 1 < enc.n_layers:
            n_drop += <Py_ssize_t>T * enc.D * B * enc.hidden[l]
    for l in range(dec.n_layers):
        n_rec += <Py_ssize_t>B * dec.hidden[l]
        if l + 1 < dec.n_layers:
            n_drop += <Py_ssize_t>T_out * B * dec.hidden[l]
    cdef const void *dec_x_p = _ptr(dec_x, <Py_ssize_t>T_out * B * (k + 1), "dec_x")
    cdef const void *input_p = _ptr(input_mask, <Py_ssize_t>B * enc.n_in, "input_mask")
    cdef const void *rec_p = _ptr(rec_mask, n_rec, "rec_mask")
    cdef const void *drop_p = _ptr(drop_mask, n_drop, "drop_mask")
    cdef const int *codes_p = &codes[0] if codes is not None else NULL
    cdef const void *targets_p = &targets[0] if targets is not None else NULL
    if floating is float:
        out.f32.T, out.f32.B, out.f32.T_out = T, B, T_out
        out.f32.x, out.f32.dec_x = &x[0], <const float *>dec_x_p
        out.f32.lengths, out.f32.codes = &lengths[0], codes_p
        out.f32.dec_lengths, out.f32.dec_order = dec_lengths_p, dec_order_p
        out.f32.targets, out.f32.weights = <const float *>targets_p, &weights[0]
        out.f32.batch_weight = batch_weight
        out.f32.input_mask = <const float *>input_p
        out.f32.rec_mask, out.f32.drop_mask = <const float *>rec_p, <const float *>drop_p
    else:
        out.f64.T, out.f64.B, out.f64.T_out = T, B, T_out
        out.f64.x, out.f64.dec_x = &x[0], <const double *>dec_x_p
        out.f64.lengths, out.f64.codes = &lengths[0], codes_p
        out.f64.dec_lengths, out.f64.dec_order = dec_lengths_p, dec_order_p
        out.f64.targets, out.f64.weights = <const double *>targets_p, &weights[0]
        out.f64.batch_weight = batch_weight
        out.f64.input_mask = <const double *>input_p
        out.f64.rec_mask, out.f64.drop_mask = <const double *>rec_p, <const double *>drop_p
    return 0


def _flat(a):
    """A C-contiguous array as a flat view (no copy), None as None."""
    return None if a is None else a.reshape(-1)


cdef void *_data(a, expected, str name) except NULL:
    """The data of a C-contiguous, writeable array like ``expected`` (shape and dtype)."""
    _check(isinstance(a, np.ndarray) and a.shape == expected.shape and
           a.dtype == expected.dtype and a.flags.c_contiguous and a.flags.writeable,
           f"{name} must be a writeable C-contiguous array like params")
    return np.PyArray_DATA(<np.ndarray>a)


cdef class TrainStep:
    """A network's training minibatch in one C call (``crnn_net_grad`` and
    ``crnn_train_update``): bound once to the flat parameters, the optimizer's state and
    the arenas, then called once per minibatch. ``gradient`` and ``update`` split the call
    for a batch run in parts (threads): each part's gradient into its own buffer, then one
    update over their sum. The arrays bound here are kept alive and must not be resized.
    """
    cdef Net net
    cdef readonly object params, m, v, decay, grads
    cdef object arenas
    cdef crnn_optimizer opt
    cdef double clip_norm
    cdef bint single
    # The bound arrays' data: checked once, not per minibatch
    cdef void *params_p
    cdef void *m_p
    cdef void *v_p
    cdef void *decay_p
    cdef void *mean_p
    cdef void *scale_p
    cdef readonly object input_scaling
    cdef size_t n_params

    def __init__(self, Net net not None, params, m=None, v=None, str solver="sgd",
                 double beta_1=0.9, double beta_2=0.999, double epsilon=1e-8,
                 double momentum=0.9, bint nesterov=True, clip_norm=None):
        """m and v: the optimizer's state (Adam's moments, or SGD's velocity as m); None
        for a step that only computes gradients (``gradient``)."""
        _check(isinstance(params, np.ndarray) and params.ndim == 1 and
               params.shape[0] == net.n_params, "params must be the network's flat parameters")
        _check(params.dtype in (np.float32, np.float64), "params must be float32 or float64")
        self.params_p = _data(params, params, "params")
        self.m_p = _data(m, params, "m") if m is not None else NULL
        self.v_p = _data(v, params, "v") if v is not None else NULL
        self.decay_p = NULL
        self.n_params = params.shape[0]
        self.net, self.params, self.m, self.v = net, params, m, v
        self.single = params.dtype == np.float32
        self.opt.solver = SOLVERS[solver]
        self.opt.beta_1, self.opt.beta_2, self.opt.eps = beta_1, beta_2, epsilon
        self.opt.momentum, self.opt.nesterov = momentum, nesterov
        self.clip_norm = 0.0 if clip_norm is None else clip_norm
        self.decay = None
        self.grads, self.arenas = [], []
        self.mean_p = self.scale_p = NULL
        self.input_scaling = None

    def set_input_scaling(self, mean, scale):
        """Standardize the encoder's input of every minibatch, ``(x - mean) / scale`` (arrays
        of ``n_in`` values in params' dtype), or not (None, None)."""
        if mean is None and scale is None:
            self.mean_p = self.scale_p = NULL
            self.input_scaling = None
            return
        n_in = self.net.net.enc.n_in
        for a in (mean, scale):
            _check(isinstance(a, np.ndarray) and a.shape == (n_in,) and
                   a.dtype == self.params.dtype and a.flags.c_contiguous,
                   "mean and scale must hold n_in values of params' dtype")
        self.mean_p = np.PyArray_DATA(<np.ndarray>mean)
        self.scale_p = np.PyArray_DATA(<np.ndarray>scale)
        self.input_scaling = (mean, scale)

    def set_decay(self, decay):
        """The L2 penalty's per-parameter factors (None: none)."""
        self.decay_p = _data(decay, self.params, "decay") if decay is not None else NULL
        self.decay = decay

    cdef _Batch _batch(self, x, lengths, y, weights, double batch_weight, dec, input_mask,
                       rec_mask, drop_mask):
        cdef _Batch batch = _Batch.__new__(_Batch)
        T, B = x.shape[0], x.shape[1]
        dec_x, dec_lengths, dec_order = dec if dec is not None else (None, None, None)
        T_out = dec_x.shape[0] if dec_x is not None else 0
        codes = targets = None
        if self.net.net.head == CRNN_HEAD_SOFTMAX:
            codes = y.reshape(-1).astype(np.intc, copy=False)
        else:
            targets = y.reshape(-1)
        x, weights = x.reshape(-1), weights.reshape(-1)
        dec_x, input_mask = _flat(dec_x), _flat(input_mask)
        rec_mask, drop_mask = _flat(rec_mask), _flat(drop_mask)
        if self.single:
            _fill_batch[float](batch, &self.net.net, x, T, B, lengths, codes, targets, weights,
                               batch_weight, T_out, dec_x, dec_lengths, dec_order,
                               input_mask, rec_mask, drop_mask)
        else:
            _fill_batch[double](batch, &self.net.net, x, T, B, lengths, codes, targets,
                                weights, batch_weight, T_out, dec_x, dec_lengths, dec_order,
                                input_mask, rec_mask, drop_mask)
        if self.single:
            batch.f32.input_mean = <const float *>self.mean_p
            batch.f32.input_scale = <const float *>self.scale_p
        else:
            batch.f64.input_mean = <const double *>self.mean_p
            batch.f64.input_scale = <const double *>self.scale_p
        # The arrays the struct points into (kept alive for the call)
        batch.arrays = (x, lengths, codes, targets, weights, dec_x, dec_lengths, dec_order,
                        input_mask, rec_mask, drop_mask)
        return batch

    cdef tuple _buffers(self, int part, _Batch batch):
        """The data of a part's gradient and arena, the arena grown to the batch's size."""
        cdef size_t need
        while len(self.grads) <= part:
            self.grads.append(np.empty_like(self.params))
            self.arenas.append(np.empty(0, dtype=self.params.dtype))
        if self.single:
            need = crnn_net_arena_size_f32(&self.net.net, batch.f32.T, batch.f32.T_out,
                                           batch.f32.B)
        else:
            need = crnn_net_arena_size_f64(&self.net.net, batch.f64.T, batch.f64.T_out,
                                           batch.f64.B)
        _check(need > 0, "the batch's sizes are invalid for the network")
        if <size_t>self.arenas[part].shape[0] < need:
            self.arenas[part] = np.empty(need, dtype=self.params.dtype)
        arena = self.arenas[part]
        return (<size_t>np.PyArray_DATA(<np.ndarray>self.grads[part]),
                <size_t>np.PyArray_DATA(<np.ndarray>arena), <size_t>arena.shape[0])

    def gradient(self, int part, x, lengths, y, weights, double batch_weight, dec=None,
                 input_mask=None, rec_mask=None, drop_mask=None):
        """The loss of a (part of a) minibatch; its gradient goes to ``grads[part]`` if the
        loss is finite. Safe to call for different parts in parallel threads. ``dec``:
        encdec's ``(dec_x, dec_lengths, dec_order)`` (``crnn_batch_*`` in crnn.h), y, weights
        and the decoder's masks in the decoder's order."""
        cdef _Batch batch = self._batch(x, lengths, y, weights, batch_weight, dec,
                                        input_mask, rec_mask, drop_mask)
        cdef size_t grad, arena, arena_size
        grad, arena, arena_size = self._buffers(part, batch)
        cdef double loss = 0
        cdef int status
        with nogil:
            status = _grad_nogil(self, batch, <void *>grad, <void *>arena, arena_size, &loss)
        if status != CRNN_OK:
            _raise_status(status)
        return loss

    def update(self, int n_parts, double loss, double lr):
        """Sum the gradients of parts 1..n_parts-1 into part 0's, then L2, clipping and the
        optimizer's step of size ``lr``. Returns ``(loss, updated)``: the loss with the L2
        penalty, and whether the loss and the gradient were finite (else nothing moved)."""
        grad = self.grads[0]
        for part in range(1, n_parts):
            grad += self.grads[part]
        self._check_optimizer()
        cdef void *grad_p = np.PyArray_DATA(<np.ndarray>grad)
        cdef int status, updated = 0
        self.opt.lr = lr
        with nogil:
            status = _update_nogil(self, grad_p, &loss, &updated)
        if status != CRNN_OK:
            _raise_status(status)
        return loss, bool(updated)

    def step(self, x, lengths, y, weights, double batch_weight, double lr, dec=None,
             input_mask=None, rec_mask=None, drop_mask=None):
        """``gradient`` and ``update`` of a whole minibatch in one C call, the GIL released.
        Returns ``(loss, updated)`` as ``update``."""
        self._check_optimizer()
        cdef _Batch batch = self._batch(x, lengths, y, weights, batch_weight, dec,
                                        input_mask, rec_mask, drop_mask)
        cdef size_t grad, arena, arena_size
        grad, arena, arena_size = self._buffers(0, batch)
        cdef double loss = 0
        cdef int status, updated = 0
        self.opt.lr = lr
        with nogil:
            status = _grad_nogil(self, batch, <void *>grad, <void *>arena, arena_size, &loss)
            if status == CRNN_OK:
                status = _update_nogil(self, <void *>grad, &loss, &updated)
        if status != CRNN_OK:
            _raise_status(status)
        return loss, bool(updated)

    cdef int _check_optimizer(self) except -1:
        _check(self.m_p != NULL and (self.v_p != NULL or self.opt.solver == CRNN_SGD),
               "this TrainStep has no optimizer state")
        return 0


cdef int _grad_nogil(TrainStep ts, _Batch batch, void *grad, void *arena, size_t arena_size,
                     double *loss) noexcept nogil:
    if ts.single:
        return crnn_net_grad_f32(&_blas_f32, &ts.net.net, &batch.f32, <float *>ts.params_p,
                                 <float *>grad, <float *>arena, arena_size, loss)
    return crnn_net_grad_f64(&_blas_f64, &ts.net.net, &batch.f64, <double *>ts.params_p,
                             <double *>grad, <double *>arena, arena_size, loss)


cdef int _update_nogil(TrainStep ts, void *grad, double *loss, int *updated) noexcept nogil:
    cdef double norm = 0
    if ts.single:
        return crnn_train_update_f32(ts.n_params, <float *>ts.params_p, <float *>grad,
                                     <float *>ts.decay_p, ts.clip_norm, &ts.opt,
                                     <float *>ts.m_p, <float *>ts.v_p, loss, &norm, updated)
    return crnn_train_update_f64(ts.n_params, <double *>ts.params_p, <double *>grad,
                                 <double *>ts.decay_p, ts.clip_norm, &ts.opt,
                                 <double *>ts.m_p, <double *>ts.v_p, loss, &norm, updated)


def net_decode(Net net not None, floating[::1] params, int B, int steps, floating[::1] h0,
               floating[::1] c0, floating[:, :, ::1] out):
    """The encoder-decoder's autoregressive decoding (``crnn_net_decode``): ``steps`` steps
    of ``B`` sequences from the decoder's initial states ``h0`` (and, for the LSTM, ``c0``:
    per decoder layer ``(B, D*H_l)`` back to back, overwritten), the head's values into
    ``out`` ``(steps, B, n_outputs)``."""
    _check(params.shape[0] == net.n_params, "params must be the network's")
    cdef Py_ssize_t l, n_state = 0
    for l in range(net.net.dec.n_layers):
        n_state += <Py_ssize_t>B * net.net.dec.hidden[l]
    _check(h0.shape[0] == n_state and (c0 is None or c0.shape[0] == n_state),
           "h0 and c0 must hold every decoder layer's (B, D*H) states")
    _check(out.shape[0] == steps and out.shape[1] == B and out.shape[2] == net.net.n_out,
           "out must be (steps, B, n_outputs)")
    cdef size_t need = (crnn_net_decode_arena_size_f32(&net.net, B) if floating is float
                        else crnn_net_decode_arena_size_f64(&net.net, B))
    _check(need > 0, "decoding needs an encdec network and B >= 1")
    cdef floating[::1] arena = np.empty(need, dtype=np.float32 if floating is float
                                        else np.float64)
    cdef floating *c0_p = &c0[0] if c0 is not None else NULL
    cdef int status
    with nogil:
        if floating is float:
            status = crnn_net_decode_f32(&_blas_f32, &net.net, &params[0], B, steps, &h0[0],
                                         c0_p, &out[0, 0, 0], &arena[0], need)
        else:
            status = crnn_net_decode_f64(&_blas_f64, &net.net, &params[0], B, steps, &h0[0],
                                         c0_p, &out[0, 0, 0], &arena[0], need)
    if status != CRNN_OK:
        _raise_status(status)


def dropout_mask(const double[::1] u, double p, dtype):
    """Inverted dropout from uniform draws ``u`` in [0, 1): 0 where ``u < p``, else
    ``1 / (1 - p)`` (computed in ``dtype``), in one pass: a flat array of ``dtype``."""
    out = np.empty(u.shape[0], dtype=dtype)
    cdef float[::1] out32
    cdef double[::1] out64
    cdef float keep32 = <float>1 / <float>(1 - p)
    cdef double keep64 = 1 / (1 - p)
    cdef Py_ssize_t i, n = u.shape[0]
    if out.dtype == np.float32:
        out32 = out
        with nogil:
            for i in range(n):
                out32[i] = keep32 if u[i] >= p else 0
    else:
        out64 = out
        with nogil:
            for i in range(n):
                out64[i] = keep64 if u[i] >= p else 0
    return out


def sequence_moments(const floating[:, :, ::1] x, const Py_ssize_t[::1] lengths):
    """Per-feature count, mean and variance over the real steps of padded batch-major
    sequences ``x`` ``(N, T, F)``: two passes accumulated in double, no temporary arrays."""
    cdef Py_ssize_t N = x.shape[0], T = x.shape[1], F = x.shape[2], i, t, j, n = 0
    _check(lengths.shape[0] == N, "lengths must have one entry per sequence")
    for i in range(N):
        _check(0 <= lengths[i] <= T, "lengths must lie in [0, T]")
        n += lengths[i]
    mean = np.zeros(F, dtype=np.float64)
    var = np.zeros(F, dtype=np.float64)
    cdef double[::1] m = mean, v = var
    cdef double d
    if n == 0:
        return 0, mean, var
    with nogil:
        for i in range(N):
            for t in range(lengths[i]):
                for j in range(F):
                    m[j] += x[i, t, j]
        for j in range(F):
            m[j] /= n
        for i in range(N):
            for t in range(lengths[i]):
                for j in range(F):
                    d = x[i, t, j] - m[j]
                    v[j] += d * d
        for j in range(F):
            v[j] /= n
    return n, mean, var
