/*
 * dtype_f64.c -- the double instantiation of crnn's kernels: the template bodies are written once
 * against `real` and FN() and included here with those bound to double.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define real double
#define FN(name) name##_f64
#define EXP exp
#define TANH tanh
#define BLAS_TABLE crnn_blas_f64

#include "activations.h"
#include "cell_rnn.c"
#include "cell_lstm.c"
#include "cell_gru.c"
#include "layer.c"
