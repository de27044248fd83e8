/*
 * readout.c -- sequence-to-vector readouts (last state, mean, max, attention pooling): the
 * forward pass and its gradient, side by side (see crnn.h for the math).
 * Template body: compiled through dtype_f32.c / dtype_f64.c with `real`, FN() and BLAS_TABLE
 * defined, after activations.h.
 *
 * Shapes (rows are (t, b) pairs, row index t*B + b; F = D*H):
 *   Y, dY (T, B, F)   out, dout (B, F)   params [W_a (F, A) | b_a (A) | v (A)]
 *   reserve: ATTENTION u (T, B, A), a (T, B), out (B, F) and a scratch (B); backward
 *   overwrites u with dz, the gradient w.r.t. the scoring layer's pre-activation
 *   Y_t W_a + b_a, and the scratch with sum_t a_t (dout . Y_t) = dout . out. MAX: the maxima (B, F),
 *   which backward marks off as it finds the first step holding each.
 */

/* e^y for y <= 0 (a softmax weight after subtracting the max). */
static inline real FN(exp_nonpositive)(real y)
{
    y = y < EXP_LO ? EXP_LO : y;
    real s, q;
    FN(exp_parts)(y, &s, &q);
    return s + s * q;
}

/* x . y over n entries in 8 partial sums: a loop GCC vectorizes (one running sum would not
 * be, without -ffast-math's reassociation). */
static inline real FN(dot)(int n, const real *restrict x, const real *restrict y)
{
    enum { LANES = 8 };
    real part[LANES] = {0}, total = 0;
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; ++l)
            part[l] += x[j + l] * y[j + l];
    for (; j < n; ++j)
        total += x[j] * y[j];
    for (int l = 0; l < LANES; ++l)
        total += part[l];
    return total;
}

/* Forward of ATTENTION: u, the weights a (reserve) and out. (ROW_FN: inlined into each
 * CPU_DISPATCH clone of the caller.) */
ROW_FN FN(attention_forward)(const BLAS_TABLE *blas, const crnn_readout_dims *d,
                                  const real *Y, const int *lengths, const real *params,
                                  real *out, real *reserve)
{
    const int B = d->B, F = d->D * d->H, A = d->A, T_max = lengths[0];
    const real *W_a = params, *b_a = params + (size_t)F * A, *v = b_a + A;
    real *u = reserve, *a = reserve + (size_t)d->T * B * A;
    for (int t = 0, rows, nt; t < T_max; t += nt) {
        nt = row_block(lengths, B, t, T_max, &rows);
        real *restrict ub = u + (size_t)t * B * A;
        /* u = tanh(b_a + Y W_a)    (rows, A) = (rows, F)(F, A), active rows only; the bias
         * goes in first so that tanh runs over the block's rows as one flat array */
        for (int r = 0; r < rows; ++r)
            memcpy(ub + (size_t)r * A, b_a, (size_t)A * sizeof(real));
        blas->gemm(0, 0, rows, A, F, 1, Y + (size_t)t * B * F, F, W_a, A, 1, ub, A);
        for (size_t i = 0; i < (size_t)rows * A; ++i)
            ub[i] = FN(tanh)(ub[i]);
        /* score s = u . v, kept in a until the softmax (the block's rows are a's entries
         * from t*B on) */
        for (int r = 0; r < rows; ++r)
            a[(size_t)t * B + r] = FN(dot)(A, ub + (size_t)r * A, v);
    }
    /* a = softmax over each sequence's steps, out = sum_t a_t Y_t */
    for (int bb = 0; bb < B; ++bb) {
        const int L = lengths[bb];
        real top = a[bb], total = 0;
        for (int t = 1; t < L; ++t)
            top = a[(size_t)t * B + bb] > top ? a[(size_t)t * B + bb] : top;
        for (int t = 0; t < L; ++t) {
            real *at = a + (size_t)t * B + bb;
            *at = FN(exp_nonpositive)(*at - top);
            total += *at;
        }
        real *o = out + (size_t)bb * F;
        memset(o, 0, (size_t)F * sizeof(real));
        for (int t = 0; t < L; ++t) {
            real *at = a + (size_t)t * B + bb;
            const real *y = Y + ((size_t)t * B + bb) * F;
            *at /= total;
            for (int j = 0; j < F; ++j)
                o[j] += *at * y[j];
        }
    }
    memcpy(a + (size_t)d->T * B, out, (size_t)B * F * sizeof(real));
}

CPU_DISPATCH int FN(crnn_readout_forward)(const BLAS_TABLE *blas, const crnn_readout_dims *d,
                             const real *Y, const int *lengths, const real *params, real *out,
                             real *reserve)
{
    int status = crnn_check_readout(d, lengths);
    if (status != CRNN_OK)
        return status;
    const int attention = d->kind == CRNN_READOUT_ATTENTION;
    if (Y == NULL || out == NULL || (d->kind == CRNN_READOUT_MAX && reserve == NULL) ||
        (attention && (blas == NULL || blas->gemm == NULL || params == NULL || reserve == NULL)))
        return CRNN_ERR_NULL;
    if (attention) {
        FN(attention_forward)(blas, d, Y, lengths, params, out, reserve);
        return CRNN_OK;
    }
    const int B = d->B, H = d->H, F = d->D * H;
    for (int bb = 0; bb < B; ++bb) {
        const int L = lengths[bb];
        real *o = out + (size_t)bb * F;
        const real *y0 = Y + (size_t)bb * F;                  /* Y[0, b] */
        const size_t step = (size_t)B * F;                    /* Y[t+1, b] - Y[t, b] */
        switch (d->kind) {
        case CRNN_READOUT_LAST:
            memcpy(o, y0 + (L - 1) * step, (size_t)H * sizeof(real));
            if (d->D == 2) /* the reverse direction's last step is time 0 */
                memcpy(o + H, y0 + H, (size_t)H * sizeof(real));
            break;
        case CRNN_READOUT_MEAN:
            memset(o, 0, (size_t)F * sizeof(real));
            for (int t = 0; t < L; ++t)
                for (int j = 0; j < F; ++j)
                    o[j] += y0[t * step + j];
            for (int j = 0; j < F; ++j)
                o[j] /= L;
            break;
        default: /* CRNN_READOUT_MAX */
            memcpy(o, y0, (size_t)F * sizeof(real));
            for (int t = 1; t < L; ++t)
                for (int j = 0; j < F; ++j) {
                    const real y = y0[t * step + j];
                    o[j] = y > o[j] ? y : o[j];
                }
            break;
        }
    }
    if (d->kind == CRNN_READOUT_MAX)
        memcpy(reserve, out, (size_t)B * F * sizeof(real));
    return CRNN_OK;
}

/* Backward of ATTENTION, with
 *   da_t = dout . Y_t,   ds_t = a_t (da_t - sum_t' a_t' da_t'),   dz_t = ds_t v (1 - u_t^2)
 *   dY_t += a_t dout + dz_t W_a^T,   dW_a += Y^T dz,   db_a += sum dz,   dv += sum ds_t u_t */
ROW_FN FN(attention_backward)(const BLAS_TABLE *blas, const crnn_readout_dims *d,
                                   const real *Y, const int *lengths, const real *params,
                                   real *reserve, const real *dout, real *dY, real *dparams)
{
    const int B = d->B, F = d->D * d->H, A = d->A, T_max = lengths[0];
    const real *W_a = params, *v = params + (size_t)F * A + A;
    real *dW_a = dparams, *db_a = dparams + (size_t)F * A, *dv = db_a + A;
    real *u = reserve;
    const real *a = reserve + (size_t)d->T * B * A;
    const real *out = a + (size_t)d->T * B;
    real *mean_da = (real *)out + (size_t)B * F;
    for (int bb = 0; bb < B; ++bb) /* sum_t a_t da_t = dout . out */
        mean_da[bb] = FN(dot)(F, dout + (size_t)bb * F, out + (size_t)bb * F);
    /* one pass over the rows in memory order */
    for (int t = 0; t < T_max; ++t) {
        const int nb = n_longer(lengths, B, t);
        for (int bb = 0; bb < nb; ++bb) {
            const size_t row = (size_t)t * B + bb;
            const real *restrict g = dout + (size_t)bb * F, *restrict y = Y + row * F;
            real *restrict dy = dY + row * F;
            const real at = a[row], ds = at * (FN(dot)(F, g, y) - mean_da[bb]);
            for (int j = 0; j < F; ++j)
                dy[j] += at * g[j];
            real *restrict ur = u + row * A, *restrict dvr = dv, *restrict dbr = db_a;
            for (int k = 0; k < A; ++k) {
                const real uk = ur[k], dz = ds * v[k] * (1 - uk * uk);
                dvr[k] += ds * uk;
                dbr[k] += dz;
                ur[k] = dz;
            }
        }
    }
    for (int t = 0, rows, nt; t < T_max; t += nt) {
        nt = row_block(lengths, B, t, T_max, &rows);
        const real *y = Y + (size_t)t * B * F, *dz = u + (size_t)t * B * A;
        /* dW_a += Y^T dz    (F, A) += (rows, F)^T (rows, A) */
        blas->gemm(1, 0, F, A, rows, 1, y, F, dz, A, 1, dW_a, A);
        /* dY += dz W_a^T    (rows, F) += (rows, A)(F, A)^T */
        blas->gemm(0, 1, rows, F, A, 1, dz, A, W_a, A, 1, dY + (size_t)t * B * F, F);
    }
}

CPU_DISPATCH int FN(crnn_readout_backward)(const BLAS_TABLE *blas, const crnn_readout_dims *d,
                              const real *Y, const int *lengths, const real *params,
                              real *reserve, const real *dout, real *dY, real *dparams)
{
    int status = crnn_check_readout(d, lengths);
    if (status != CRNN_OK)
        return status;
    const int attention = d->kind == CRNN_READOUT_ATTENTION;
    if (Y == NULL || dout == NULL || dY == NULL ||
        (d->kind == CRNN_READOUT_MAX && reserve == NULL) ||
        (attention && (blas == NULL || blas->gemm == NULL || params == NULL ||
                       reserve == NULL || dparams == NULL)))
        return CRNN_ERR_NULL;
    if (attention) {
        FN(attention_backward)(blas, d, Y, lengths, params, reserve, dout, dY, dparams);
        return CRNN_OK;
    }
    const int B = d->B, H = d->H, F = d->D * H;
    for (int bb = 0; bb < B; ++bb) {
        const int L = lengths[bb];
        const real *g = dout + (size_t)bb * F;
        const real *y0 = Y + (size_t)bb * F;
        real *dy0 = dY + (size_t)bb * F;
        const size_t step = (size_t)B * F;
        switch (d->kind) {
        case CRNN_READOUT_LAST:
            for (int j = 0; j < H; ++j)
                dy0[(L - 1) * step + j] += g[j];
            for (int j = H; j < F; ++j) /* D = 2: the reverse direction, at time 0 */
                dy0[j] += g[j];
            break;
        case CRNN_READOUT_MEAN: {
            const real w = (real)1 / L;
            for (int t = 0; t < L; ++t) {
                real *restrict dy = dy0 + t * step;
                for (int j = 0; j < F; ++j)
                    dy[j] += w * g[j];
            }
            break;
        }
        default: { /* CRNN_READOUT_MAX: to the first step holding the maximum, step by step */
            real *restrict top = reserve + (size_t)bb * F;
            const real *restrict gb = g;
            for (int t = 0; t < L; ++t) {
                const real *restrict y = y0 + t * step;
                real *restrict dy = dy0 + t * step;
                /* Found maxima become +inf, which no finite later step equals. (Written as
                 * selects of values, not of an int flag, so that GCC vectorizes the loop.) */
                for (int j = 0; j < F; ++j) {
                    const real hit = y[j] == top[j] ? 1 : 0;
                    dy[j] += hit * gb[j];
                    top[j] = hit > 0 ? (real)INFINITY : top[j];
                }
            }
            break;
        }
        }
    }
    return CRNN_OK;
}
