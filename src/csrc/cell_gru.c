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
ROW_FN FN(gru_forward_row)(int H, real *restrict g, const real *restrict gh, const real *restrict b, const real *restrict b_hn,
                                real *restrict h, real *restrict y)
{
    real *gr = g, *gz = g + H, *gn = g + 2 * H, *ghn = g + 3 * H;
    const real *hr = gh, *hz = gh + H, *hh = gh + 2 * H;
    const real *br = b, *bz = b + H, *bn = b + 2 * H;
    IVDEP
    for (int j = 0; j < H; ++j) {
        real r = FN(sigmoid)(gr[j] + hr[j] + br[j]);
        real z = FN(sigmoid)(gz[j] + hz[j] + bz[j]);
        real hn = hh[j] + b_hn[j];
        real n = FN(tanh)(gn[j] + bn[j] + r * hn);
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
ROW_FN FN(gru_backward_row)(int H, real *restrict g, const real *restrict h_prev, real *restrict dh, real *restrict dgs)
{
    real *gr = g, *gz = g + H, *gn = g + 2 * H, *ghn = g + 3 * H;
    real *dgr = dgs, *dgz = dgs + H, *dghn = dgs + 2 * H;
    IVDEP
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
        dgr[j] = dr;
        dgz[j] = dz;
        dghn[j] = dhn;
    }
}
