/*
 * cell_lstm.c -- the LSTM cell, one (step, sequence) row at a time. Gate blocks [i, f, g, o]:
 *     i = sig(.)  f = sig(.)  g = tanh(.)  o = sig(.)   of  x W_x + h W_h + b
 *     c' = f * c + i * g,   h' = o * tanh(c')
 * Template body: compiled through dtype_f32.c / dtype_f64.c with `real` and FN() defined.
 *
 * Reserve row (4H): forward leaves the activated gates; backward overwrites them with the
 * gradients of the gate pre-activations. The cell states c' live in a second reserve block.
 */

/* g: x W_x in, activated gates out (4H) | gh: h W_h (4H) | c: carried cell state, c in, c' out |
 * c_keep: reserve copy of c' | h: carried state out | y: output row */
ROW_FN FN(lstm_forward_row)(int H, real *restrict g, const real *restrict gh, const real *restrict b, real *restrict c,
                                 real *restrict c_keep, real *restrict h, real *restrict y)
{
    real *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    const real *hi = gh, *hf = gh + H, *hg = gh + 2 * H, *ho = gh + 3 * H;
    const real *bi = b, *bf = b + H, *bg = b + 2 * H, *bo = b + 3 * H;
    IVDEP
    for (int j = 0; j < H; ++j) {
        real i = FN(sigmoid)(gi[j] + hi[j] + bi[j]);
        real f = FN(sigmoid)(gf[j] + hf[j] + bf[j]);
        real gc = FN(tanh)(gg[j] + hg[j] + bg[j]);
        real o = FN(sigmoid)(go[j] + ho[j] + bo[j]);
        real cn = f * c[j] + i * gc;
        real hn = o * FN(tanh)(cn);
        gi[j] = i;
        gf[j] = f;
        gg[j] = gc;
        go[j] = o;
        c[j] = cn;
        c_keep[j] = cn;
        h[j] = hn;
        y[j] = hn;
    }
}

/* g: activated gates in, gate pre-activation gradients out (4H) | c: c' of this step |
 * c_prev: c of the previous step | dh: dL/dh' | dc: dL/dc' in, dL/dc out | dgs: copy of g out */
ROW_FN FN(lstm_backward_row)(int H, real *restrict g, const real *restrict c,
                                  const real *restrict c_prev, const real *restrict dh,
                                  real *restrict dc, real *restrict dgs)
{
    const real *gi = g, *gf = g + H, *gg = g + 2 * H, *go = g + 3 * H;
    real *di = dgs, *df = dgs + H, *dg = dgs + 2 * H, *dout = dgs + 3 * H;
    IVDEP
    for (int j = 0; j < H; ++j) {
        real i = gi[j], f = gf[j], gc = gg[j], o = go[j];
        real tc = FN(tanh)(c[j]);
        real dct = dc[j] + dh[j] * o * (1 - tc * tc);
        dc[j] = dct * f;
        di[j] = dct * gc * i * (1 - i);
        df[j] = dct * c_prev[j] * f * (1 - f);
        dg[j] = dct * i * (1 - gc * gc);
        dout[j] = dh[j] * tc * o * (1 - o);
    }
    memcpy(g, dgs, 4 * (size_t)H * sizeof(real));
}
