/*
 * layer.c -- one direction of one recurrent layer over a batch of sequences: the forward pass
 * and backpropagation through time, side by side.
 * Template body: compiled through dtype.h, after the cell files and plan.c (how each product
 * runs on the BLAS).
 *
 * Shapes (rows are (t, b) pairs, row index t*B + b; G*H = GH gate columns):
 *   x (T, B, ldx)   y (T, B, ldy)   W_x (I, GH)   W_h (H, GH)   h0, hn, mask (B, H)
 *   reserve: gate rows (T, B, Gs) [+ LSTM cell states (T, B, H)] [+ masked states (T, B, H):
 *   the m * h(t-1) that the step of row (t, b) multiplied with W_h]   workspace: see below
 * Processing step s visits sequence b at time t = s (forward) or lengths[b]-1-s (reverse).
 * The carried state is kept in step order in hn (and cn), so the per-step GEMM reads a
 * contiguous prefix of rows in either direction.
 */

static void FN(copy_or_zero)(real *dst, const real *src, size_t n)
{
    if (src != NULL)
        memmove(dst, src, n * sizeof(real));
    else
        memset(dst, 0, n * sizeof(real));
}

/* Recurrent dropout: m * h(t-1) of the nb sequences at processing step s, kept in the reserve
 * at the row of the step (for dW_h). Returns its nb contiguous rows for the product: the
 * reserve's own in the forward direction (step s is time s), else a copy in `hm` (B, H). */
static inline const real *FN(masked_state)(const crnn_dims *d, const int *lengths, int s,
                                           int nb, const real *mask, const real *hn, real *hm,
                                           real *hm_keep)
{
    const int B = d->B, H = d->H;
    real *rows = d->reverse ? hm : hm_keep + (size_t)s * B * H;
    for (int bb = 0; bb < nb; ++bb) {
        const real *restrict m = mask + (size_t)bb * H, *restrict h = hn + (size_t)bb * H;
        real *restrict out = rows + (size_t)bb * H;
        for (int j = 0; j < H; ++j)
            out[j] = m[j] * h[j];
        if (d->reverse)
            memcpy(hm_keep + ((size_t)step_time(1, lengths[bb], s) * B + bb) * H, out,
                   (size_t)H * sizeof(real));
    }
    return rows;
}

CPU_DISPATCH int FN(crnn_forward)(const BLAS_TABLE *blas, const crnn_dims *d, const LAYER *L,
                                  real *workspace)
{
    if (L == NULL)
        return CRNN_ERR_NULL;
    const real *x = L->x, *W_x = L->W_x, *W_h = L->W_h, *b = L->b, *b_hn = L->b_hn;
    const real *h0 = L->h0, *c0 = L->c0, *mask = L->mask;
    const int *lengths = L->lengths;
    real *y = L->y, *hn = L->hn, *cn = L->cn, *reserve = L->reserve;
    int status = crnn_check_call(d, lengths, 0);
    if (status != CRNN_OK)
        return status;
    const int cell = d->cell;
    const cell_desc *desc = cell_desc_of(cell);
    if (blas == NULL || blas->gemm == NULL || blas->gemv == NULL || x == NULL || W_x == NULL ||
        W_h == NULL || b == NULL || y == NULL || hn == NULL || reserve == NULL ||
        workspace == NULL || (desc->hn_block && b_hn == NULL) || (desc->has_c && cn == NULL) ||
        (d->masked && mask == NULL))
        return CRNN_ERR_NULL;

    const int B = d->B, I = d->n_in, H = d->H, ldx = d->ldx, ldy = d->ldy;
    const int GH = desc->gates * H, Gs = desc->row_blocks * H;
    const int T_max = lengths[0];
    /* Workspace: gh (B, GH) one step's h W_h | W_hT (GH, H) | ghT (GH, B) its transpose |
     * hm (B, H) one step's masked state m * h(t-1), reverse direction with a mask only */
    real *gh = workspace, *W_hT = gh + (size_t)B * GH, *ghT = W_hT + (size_t)GH * H;
    real *hm = ghT + (size_t)GH * B;
    real *c_keep = reserve + (size_t)d->T * B * Gs;         /* (T, B, H) LSTM cell states */
    real *hm_keep = c_keep + (desc->has_c ? (size_t)d->T * B * H : 0); /* (T, B, H) */
    if (FN(needs_W_hT)(blas, 0, B, GH, H))
        FN(transpose)(H, GH, W_h, W_hT, 0);

    FN(copy_or_zero)(hn, h0, (size_t)B * H);
    if (desc->has_c)
        FN(copy_or_zero)(cn, c0, (size_t)B * H);

    /* Input projection of every active row, before the step loop:
     *   Gx = x W_x    (rows, GH) = (rows, I)(I, GH) */
    for (int t = 0, rows, nt; t < T_max; t += nt) {
        nt = row_block(lengths, B, t, T_max, &rows);
        FN(all_rows_times)(blas, rows, GH, I, x + (size_t)t * B * ldx, ldx, W_x, GH,
                           reserve + (size_t)t * B * Gs, Gs);
    }

    for (int s = 0; s < T_max; ++s) {
        const int nb = n_longer(lengths, B, s);
        const real *h_in = d->masked ? FN(masked_state)(d, lengths, s, nb, mask, hn, hm, hm_keep)
                                     : hn; /* what multiplies W_h */
        /* Gh = h(t-1) W_h    (nb, GH) = (nb, H)(H, GH) */
        FN(recurrent_product)(blas, 0, nb, GH, H, h_in, W_h, W_hT, 0, gh, ghT);
        for (int bb = 0; bb < nb; ++bb) {
            const size_t row = (size_t)step_time(d->reverse, lengths[bb], s) * B + bb;
            real *g = reserve + row * Gs, *yr = y + row * ldy, *h = hn + (size_t)bb * H;
            const real *ghr = gh + (size_t)bb * GH;
            switch (cell) {
            case CRNN_RNN_TANH:
                FN(rnn_tanh_forward_row)(H, g, ghr, b, h, yr);
                break;
            case CRNN_RNN_RELU:
                FN(rnn_relu_forward_row)(H, g, ghr, b, h, yr);
                break;
            case CRNN_LSTM:
                FN(lstm_forward_row)(H, g, ghr, b, cn + (size_t)bb * H, c_keep + row * H, h, yr);
                break;
            default: /* CRNN_GRU */
                FN(gru_forward_row)(H, g, ghr, b, b_hn, h, yr);
                break;
            }
        }
    }
    return CRNN_OK;
}

/* dW_h += h_prev^T dG_h over `rows` rows. With a separate recurrent part (the GRU's
 * [dr, dz, dhn]) the recurrent gradient is the reserve row's first G-1 blocks and hn_block. */
static void FN(add_recurrent_grad)(const BLAS_TABLE *blas, const cell_desc *desc, int H,
                                   int rows, const real *h_prev, int ldh, const real *g, int Gs,
                                   real *dW_h)
{
    const int GH = desc->gates * H, GH1 = GH - H;
    if (desc->hn_block) {
        /* dW_h[:, :(G-1)H] += h_prev^T [dr dz]    (H, (G-1)H) += (rows, H)^T (rows, (G-1)H) */
        FN(add_AtB)(blas, H, GH1, rows, h_prev, ldh, g, Gs, dW_h, GH);
        /* dW_h[:, (G-1)H:] += h_prev^T dhn        (H, H) += (rows, H)^T (rows, H) */
        FN(add_AtB)(blas, H, H, rows, h_prev, ldh, g + desc->hn_block * H, Gs, dW_h + GH1, GH);
    } else {
        /* dW_h += h_prev^T dG                 (H, GH) += (rows, H)^T (rows, GH) */
        FN(add_AtB)(blas, H, GH, rows, h_prev, ldh, g, Gs, dW_h, GH);
    }
}

/*
 * Workspace: dgs (B, GH) one step's recurrent gate gradients in step order | dh (B, H) the
 * carried dL/dh | dc (B, H) the carried dL/dc (LSTM) | zeros (H) stands in for absent h0/c0 |
 * W_hT (GH, H) a transposed copy of W_h for the per-step product (plan.c) | dhT (H, B) for
 * its transposed path | dhm (B, H) with a mask, one step's gradient w.r.t. m * h(t-1).
 * The reserve's gate rows are overwritten with the gate gradients, so a forward call's reserve
 * serves one backward call.
 */
CPU_DISPATCH int FN(crnn_backward)(const BLAS_TABLE *blas, const crnn_dims *d, const LAYER *L,
                                   const GRADS *grads, int truncate, real *workspace)
{
    if (L == NULL || grads == NULL)
        return CRNN_ERR_NULL;
    const real *x = L->x, *W_x = L->W_x, *W_h = L->W_h, *h0 = L->h0, *c0 = L->c0;
    const real *mask = L->mask, *y = L->y;
    const int *lengths = L->lengths;
    real *reserve = L->reserve;
    const real *dy = grads->dy, *dhn = grads->dhn, *dcn = grads->dcn;
    real *dx = grads->dx, *dh0 = grads->dh0, *dc0 = grads->dc0, *dW_x = grads->dW_x;
    real *dW_h = grads->dW_h, *db = grads->db, *db_hn = grads->db_hn;
    int status = crnn_check_call(d, lengths, truncate);
    if (status != CRNN_OK)
        return status;
    const int cell = d->cell;
    const cell_desc *desc = cell_desc_of(cell);
    if (blas == NULL || blas->gemm == NULL || blas->gemv == NULL || x == NULL || W_x == NULL ||
        W_h == NULL || y == NULL || reserve == NULL || dW_x == NULL || dW_h == NULL ||
        db == NULL || workspace == NULL || (desc->hn_block && db_hn == NULL) ||
        (d->masked && mask == NULL))
        return CRNN_ERR_NULL;

    const int B = d->B, I = d->n_in, H = d->H, ldx = d->ldx, ldy = d->ldy, rev = d->reverse;
    const int GH = desc->gates * H, Gs = desc->row_blocks * H;
    const int T_max = lengths[0];
    /* Each sequence's backward pass covers its last k processing steps. */
    const int k = truncate > 0 && truncate < T_max ? truncate : T_max;
    const real *c_keep = reserve + (size_t)d->T * B * Gs;
    const real *hm_keep = c_keep + (desc->has_c ? (size_t)d->T * B * H : 0);
    real *dgs = workspace;
    real *dh = dgs + (size_t)B * GH;
    real *dc = dh + (size_t)B * H;
    real *zeros = dc + (size_t)B * H;
    real *W_hT = zeros + H;
    real *dhT = W_hT + (size_t)GH * H;
    real *dhm = dhT + (size_t)H * B;

    memset(zeros, 0, (size_t)H * sizeof(real));
    if (FN(needs_W_hT)(blas, 1, B, H, GH))
        FN(transpose)(H, GH, W_h, W_hT, 0);
    FN(copy_or_zero)(dh, dhn, (size_t)B * H);
    if (desc->has_c)
        FN(copy_or_zero)(dc, dcn, (size_t)B * H);

    for (int s = T_max - 1; s >= 0; --s) {
        /* Sequences at step s: s < lengths[b] (prefix nb); within the truncation window:
         * lengths[b] <= s + k (suffix from lo). */
        const int nb = n_longer(lengths, B, s);
        const int lo = n_longer(lengths, B, s + k);
        for (int bb = lo; bb < nb; ++bb) {
            const size_t row = (size_t)step_time(rev, lengths[bb], s) * B + bb;
            const size_t prev = s == 0 ? 0 : (size_t)step_time(rev, lengths[bb], s - 1) * B + bb;
            real *g = reserve + row * Gs, *dhr = dh + (size_t)bb * H, *dgr = dgs + (size_t)bb * GH;
            if (dy != NULL) {
                const real *dyr = dy + row * ldy;
                for (int j = 0; j < H; ++j)
                    dhr[j] += dyr[j];
            }
            switch (cell) {
            case CRNN_RNN_TANH:
                FN(rnn_tanh_backward_row)(H, g, dhr, dgr);
                break;
            case CRNN_RNN_RELU:
                FN(rnn_relu_backward_row)(H, g, dhr, dgr);
                break;
            case CRNN_LSTM: {
                const real *c_prev = s > 0 ? c_keep + prev * H
                                           : (c0 != NULL ? c0 + (size_t)bb * H : zeros);
                FN(lstm_backward_row)(H, g, c_keep + row * H, c_prev, dhr, dc + (size_t)bb * H,
                                      dgr);
                break;
            }
            default: { /* CRNN_GRU */
                const real *h_prev = s > 0 ? y + prev * ldy
                                           : (h0 != NULL ? h0 + (size_t)bb * H : zeros);
                FN(gru_backward_row)(H, g, h_prev, dhr, dgr);
                break;
            }
            }
        }
        /* dh(t-1) (+)= dG W_h^T    (rows, H) = (rows, GH)(GH, H), rows = nb - lo
         * (added to the direct part a cell's row pass may leave in dh: the GRU's z*dh). With
         * a mask the product is the gradient w.r.t. m * h(t-1): it goes to dhm, then
         * dh (+)= m * dhm. */
        const int rows = nb - lo, add = desc->direct_dh && !d->masked;
        if (rows == 0 || (s == 0 && dh0 == NULL))
            continue; /* nothing to propagate */
        FN(recurrent_product)(blas, 1, rows, H, GH, dgs + (size_t)lo * GH, W_h, W_hT, add,
                              (d->masked ? dhm : dh) + (size_t)lo * H, dhT);
        for (int bb = lo; d->masked && bb < nb; ++bb) {
            const real *m = mask + (size_t)bb * H, *g = dhm + (size_t)bb * H;
            real *dhr = dh + (size_t)bb * H;
            if (desc->direct_dh)
                for (int j = 0; j < H; ++j)
                    dhr[j] += m[j] * g[j];
            else
                for (int j = 0; j < H; ++j)
                    dhr[j] = m[j] * g[j];
        }
    }

    /* Sequences from `first` on reached their first step: only they pass a gradient to h0. */
    const int first = n_longer(lengths, B, k);
    for (int bb = first; bb < B; ++bb) {
        for (int j = 0; j < H; ++j) {
            if (dh0 != NULL)
                dh0[(size_t)bb * H + j] += dh[(size_t)bb * H + j];
            if (dc0 != NULL && desc->has_c)
                dc0[(size_t)bb * H + j] += dc[(size_t)bb * H + j];
        }
    }
    /* Rows outside the truncation window still hold forward gates: zero them for the GEMMs. */
    for (int bb = 0; bb < first; ++bb) {
        const int t0 = rev ? k : 0, t1 = rev ? lengths[bb] : lengths[bb] - k;
        for (int t = t0; t < t1; ++t)
            memset(reserve + ((size_t)t * B + bb) * Gs, 0, (size_t)Gs * sizeof(real));
    }

    /* db += column sums of the gate gradients (the GRU's dhn block goes to db_hn) */
    for (int t = 0; t < T_max; ++t) {
        const int nb = n_longer(lengths, B, t);
        for (int bb = 0; bb < nb; ++bb) {
            const real *g = reserve + ((size_t)t * B + bb) * Gs;
            for (int j = 0; j < GH; ++j)
                db[j] += g[j];
            if (desc->hn_block)
                for (int j = 0; j < H; ++j)
                    db_hn[j] += g[desc->hn_block * H + j];
        }
    }

    for (int t = 0, rows, nt; t < T_max; t += nt) {
        nt = row_block(lengths, B, t, T_max, &rows);
        const real *g = reserve + (size_t)t * B * Gs;
        /* dW_x += x^T dG    (I, GH) += (rows, I)^T (rows, GH) */
        FN(add_AtB)(blas, I, GH, rows, x + (size_t)t * B * ldx, ldx, g, Gs, dW_x, GH);
        /* dx += dG W_x^T    (rows, I) += (rows, GH)(I, GH)^T */
        if (dx != NULL)
            blas->gemm(0, 1, rows, I, GH, 1, g, Gs, W_x, GH, 1, dx + (size_t)t * B * ldx, ldx);
    }

    /* With a mask, the reserve holds the state each row multiplied with W_h, the first steps'
     * (masked h0) included:    dW_h += hm^T dG    over every row */
    if (d->masked) {
        for (int t = 0, rows, nt; t < T_max; t += nt) {
            nt = row_block(lengths, B, t, T_max, &rows);
            FN(add_recurrent_grad)(blas, desc, H, rows, hm_keep + (size_t)t * B * H, H,
                                   reserve + (size_t)t * B * Gs, Gs, dW_h);
        }
        return CRNN_OK;
    }
    /* dW_h over every step but each sequence's first, whose h_prev is h0. The nb(u) sequences
     * that reach step u pair y at u-1 with dG at u (forward), or y at u with dG at u-1
     * (reverse: the step before time u-1 was time u). */
    for (int u = 1, rows, nt; u < T_max; u += nt) {
        nt = row_block(lengths, B, u, T_max, &rows);
        FN(add_recurrent_grad)(blas, desc, H, rows, y + (size_t)(rev ? u : u - 1) * B * ldy, ldy,
                               reserve + (size_t)(rev ? u - 1 : u) * B * Gs, Gs, dW_h);
    }
    /* ... and the first steps, whose recurrent gate gradients are still in dgs:
     * dW_h += h0^T dG_h(first)    (H, GH) += (B-first, H)^T (B-first, GH) */
    if (h0 != NULL && first < B)
        blas->gemm(1, 0, H, GH, B - first, 1, h0 + (size_t)first * H, H,
                   dgs + (size_t)first * GH, GH, 1, dW_h, GH);
    return CRNN_OK;
}
