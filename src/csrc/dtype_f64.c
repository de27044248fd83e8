/*
 * dtype_f64.c -- the double instantiation of crnn's kernels: the template bodies are written once
 * against `real` and FN() and included here with those bound to double.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define real double
#define FN(name) name##_f64
#define SQRT sqrt
#define BLAS_TABLE crnn_blas_f64

/* For layer.c: the fewest rows per product worth splitting the input projection and the
 * weight gradients into (measured: sgemm gains down to 16 rows, dgemm only down to 64), and
 * whether large per-step products may run transposed (faster for sgemm, slower for dgemm),
 * and the weight gradients in column blocks (LSTM H=128: 14-16% faster backward for sgemm,
 * 5-9% slower for dgemm). */
#define MIN_CHUNK_ROWS 64
#define TRANSPOSED_STEPS 0
#define COLUMN_BLOCKS 0

/* For activations.h: Taylor degree of e^r - 1 on |r| <= ln2/2 (error below the double ulp),
 * the smallest exponent argument (e^EXP_LO is still a normal number), ln2 split so that
 * n * LN2_HI is exact. */
#define EXP_DEGREE 13
#define EXP_LO -708.0
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10

/* n = round(y / ln2), returned as a double, and *s = 2^n, for EXP_LO <= y <= 0. Adding
 * 1.5 * 2^52 rounds to an integer that lands in the low mantissa bits; moved into the
 * exponent field they make 2^n, with no float-to-int conversion. */
static inline real FN(round_log2)(real y, real *s)
{
    const real shifter = 6755399441055744.0;
    real t = y * (real)1.44269504088896340736 + shifter;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4338000000000000ull + 1023ull) << 52;
    memcpy(s, &bits, sizeof bits);
    return t - shifter;
}

#include "activations.h"
#include "cell_rnn.c"
#include "cell_lstm.c"
#include "cell_gru.c"
#include "layer.c"
#include "optim.c"
#include "readout.c"
