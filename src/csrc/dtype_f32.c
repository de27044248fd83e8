/*
 * dtype_f32.c -- the float instantiation of crnn's kernels (dtype.h describes the macros).
 */
#define real float
#define FN(name) name##_f32
#define SQRT sqrtf
#define EXP expf
#define LOG logf
#define BLAS_TABLE crnn_blas_f32
#define LAYER crnn_layer_f32
#define GRADS crnn_grads_f32
#define BATCH crnn_batch_f32
#define TUNED(name) name##_F32

/* Taylor degree of e^r - 1 on |r| <= ln2/2 (error below the float ulp), the smallest
 * exponent argument (e^EXP_LO is still a normal number), ln2 split so that n * LN2_HI is
 * exact. */
#define EXP_DEGREE 7
#define EXP_LO -87.0f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f

#define BITS uint32_t
#define SHIFTER 12582912.0f
#define SHIFTER_BITS 0x4B400000u
#define EXP_BIAS 127u
#define MANTISSA_BITS 23

#include "dtype.h"
