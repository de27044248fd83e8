/*
 * dtype_f32.c -- the float instantiation of crnn's kernels: the template bodies are written once
 * against `real` and FN() and included here with those bound to float.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define real float
#define FN(name) name##_f32
#define EXP expf
#define TANH tanhf
#define BLAS_TABLE crnn_blas_f32

#include "activations.h"
#include "cell_rnn.c"
#include "cell_lstm.c"
#include "cell_gru.c"
#include "layer.c"
