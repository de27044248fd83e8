/*
 * cell_rnn.c -- the vanilla RNN cell, one (step, sequence) row at a time:
 *     h' = act(x W_x + h W_h + b),  act = tanh or relu.
 * Template body: compiled through dtype_f32.c / dtype_f64.c with `real` and FN() defined.
 *
 * Reserve row (H): forward leaves the activation a = h'; backward overwrites it with
 * d(pre-activation), which is also the row the step's dh(t-1) GEMM and the weight GEMMs read.
 */

/* g: x W_x in, a out (H) | gh: h W_h (H) | h: carried state out | y: output row */
ROW_FN FN(rnn_tanh_forward_row)(int H, real *restrict g, const real *restrict gh, const real *restrict b, real *restrict h,
                                     real *restrict y)
{
    IVDEP
    for (int j = 0; j < H; ++j) {
        real a = FN(tanh)(g[j] + gh[j] + b[j]);
        g[j] = a;
        h[j] = a;
        y[j] = a;
    }
}

ROW_FN FN(rnn_relu_forward_row)(int H, real *restrict g, const real *restrict gh, const real *restrict b, real *restrict h,
                                     real *restrict y)
{
    IVDEP
    for (int j = 0; j < H; ++j) {
        real a = FN(relu)(g[j] + gh[j] + b[j]);
        g[j] = a;
        h[j] = a;
        y[j] = a;
    }
}

/* g: a in, d(pre-activation) out | dh: dL/dh' | dgs: copy of the gate gradients */
ROW_FN FN(rnn_tanh_backward_row)(int H, real *restrict g, const real *restrict dh, real *restrict dgs)
{
    IVDEP
    for (int j = 0; j < H; ++j) {
        real a = g[j];
        real da = dh[j] * (1 - a * a);
        g[j] = da;
        dgs[j] = da;
    }
}

ROW_FN FN(rnn_relu_backward_row)(int H, real *restrict g, const real *restrict dh, real *restrict dgs)
{
    IVDEP
    for (int j = 0; j < H; ++j) {
        real d = dh[j];
        real da = g[j] > 0 ? d : 0;
        g[j] = da;
        dgs[j] = da;
    }
}
