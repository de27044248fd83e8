/*
 * cell_gru.c -- the GRU cell with the reset gate applied after the recurrent product (the
 * PyTorch and Keras default), one (step, sequence) row at a time. Gate blocks [r, z, n]:
 *     r = sig(x W_xr + h W_hr + b_r),   z = sig(x W_xz + h W_hz + b_z)
 *     hn = h W_hn + b_hn,               n = tanh(x W_xn + b_n + r * hn)
 *     h' = (1 - z) * n + z * h
 * Template body: compiled through dtype_f32.c / dtype_f64.c with `real` and FN() defined.
 *
 * Reserve row (4H): forward leaves [r, z, n, hn]; backward overwrites it with
 * [dr, dz, dn, dhn] (pre-activation gradients): the input side's gradient is [dr, dz, dn], the
 * recurrent side's [dr, dz, dhn], since r scales only the recurrent part of n.
 */

/* g: x W_x in (first 3H), [r z n hn] out | gh: h W_h (3H) | h: carried state, h in, h' out |
 * y: output row */
static void FN(gru_forward_row)(int H, real *g, const real *gh, const real *b, const real *b_hn,
                                real *h, real *y)
{
    real *gr = g, *gz = g + H, *gn = g + 2 * H, *ghn = g + 3 * H;
    for (int j = 0; j < H; ++j) {
        real r = FN(sigmoid)(gr[j] + gh[j] + b[j]);
        real z = FN(sigmoid)(gz[j] + gh[H + j] + b[H + j]);
        real hn = gh[2 * H + j] + b_hn[j];
        real n = TANH(gn[j] + b[2 * H + j] + r * hn);
        real hnew = (1 - z) * n + z * h[j];
        gr[j] = r;
        gz[j] = z;
        gn[j] = n;
        ghn[j] = hn;
        h[j] = hnew;
        y[j] = hnew;
    }
}

/* g: [r z n hn] in, [dr dz dn dhn] out | h_prev: the state this step read |
 * dh: dL/dh' in, the direct part of dL/dh (z * dh) out | dgs: [dr dz dhn] out */
static void FN(gru_backward_row)(int H, real *g, const real *h_prev, real *dh, real *dgs)
{
    real *gr = g, *gz = g + H, *gn = g + 2 * H, *ghn = g + 3 * H;
    for (int j = 0; j < H; ++j) {
        real r = gr[j], z = gz[j], n = gn[j], hn = ghn[j];
        real d = dh[j];
        real dn = d * (1 - z) * (1 - n * n);
        real dr = dn * hn * r * (1 - r);
        real dz = d * (h_prev[j] - n) * z * (1 - z);
        real dhn = dn * r;
        dh[j] = d * z;
        gr[j] = dr;
        gz[j] = dz;
        gn[j] = dn;
        ghn[j] = dhn;
        dgs[j] = dr;
        dgs[H + j] = dz;
        dgs[2 * H + j] = dhn;
    }
}
