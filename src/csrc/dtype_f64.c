/*
 * dtype_f64.c -- the double instantiation of crnn's kernels (dtype.h describes the macros).
 */
#define real double
#define FN(name) name##_f64
#define SQRT sqrt
#define EXP exp
#define LOG log
#define BLAS_TABLE crnn_blas_f64
#define LAYER crnn_layer_f64
#define GRADS crnn_grads_f64
#define BATCH crnn_batch_f64
#define TUNED(name) name##_F64

/* Taylor degree of e^r - 1 on |r| <= ln2/2 (error below the double ulp), the smallest
 * exponent argument (e^EXP_LO is still a normal number), ln2 split so that n * LN2_HI is
 * exact. */
#define EXP_DEGREE 13
#define EXP_LO -708.0
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10

#define BITS uint64_t
#define SHIFTER 6755399441055744.0
#define SHIFTER_BITS 0x4338000000000000ull
#define EXP_BIAS 1023ull
#define MANTISSA_BITS 52

#include "dtype.h"
