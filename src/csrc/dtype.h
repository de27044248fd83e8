/*
 * dtype.h -- one dtype's instantiation of crnn's kernels (the X-macro pattern): dtype_f32.c
 * and dtype_f64.c define the type and name macros below, then include this file, which
 * compiles every template body against them.
 *   real          the element type
 *   FN(name)      name with the dtype's suffix (name##_f32)
 *   SQRT, EXP, LOG  sqrt, exp and log for `real`
 *   BLAS_TABLE    the dtype's crnn_blas_* table
 *   LAYER, GRADS  the dtype's crnn_layer_* and crnn_grads_* (a layer call's tensors)
 *   BATCH         the dtype's crnn_batch_* (a training minibatch, net.c)
 *   TUNED(name)   the dtype's value of a tuning constant of tuning.h (name##_F32)
 *   EXP_DEGREE, EXP_LO, LN2_HI, LN2_LO   for activations.h (see there)
 *   BITS, SHIFTER, SHIFTER_BITS, EXP_BIAS, MANTISSA_BITS   for round_log2 below: the unsigned
 *                 integer as wide as `real`, 1.5 * 2^MANTISSA_BITS and its bit pattern, the
 *                 exponent bias and the mantissa's width
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "tuning.h"

/* n = round(y / ln2), returned as a `real`, and *s = 2^n, for EXP_LO <= y <= 0. Adding
 * 1.5 * 2^MANTISSA_BITS rounds to an integer that lands in the low mantissa bits; moved into
 * the exponent field they make 2^n, with no float-to-int conversion. */
static inline real FN(round_log2)(real y, real *s)
{
    const real shifter = SHIFTER;
    real t = y * (real)1.44269504088896340736 + shifter;
    BITS bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - SHIFTER_BITS + EXP_BIAS) << MANTISSA_BITS;
    memcpy(s, &bits, sizeof bits);
    return t - shifter;
}

#include "activations.h"
#include "cell_rnn.c"
#include "cell_lstm.c"
#include "cell_gru.c"
#include "plan.c"
#include "layer.c"
#include "optim.c"
#include "readout.c"
#include "head.c"
#include "net.c"
