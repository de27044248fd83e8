/*
 * layer.c -- one direction of one recurrent layer over a batch of sequences: the forward pass
 * and backpropagation through time, side by side.
 * Template body: compiled through dtype_f32.c / dtype_f64.c with `real`, FN() and BLAS_TABLE
 * defined, after the cell files.
 *
 * Shapes (rows are (t, b) pairs, row index t*B + b; G*H = GH gate columns):
 *   x (T, B, ldx)   y (T, B, ldy)   W_x (I, GH)   W_h (H, GH)   h0, hn (B, H)
 *   reserve: gate rows (T, B, Gs) [+ LSTM cell states (T, B, H)]   workspace: see below
 * Processing step s visits sequence b at time t = s (forward) or lengths[b]-1-s (reverse).
 * The carried state is kept in step order in hn (and cn), so the per-step GEMM reads a
 * contiguous prefix of rows in either direction.
 */

/* C (rows, n) = A (rows, k) B (k, n) + beta C, row-major. A single row goes to GEMV: OpenBLAS
 * runs a one-row GEMM several times slower (measured: (1,512)x(512,2048) 220-390 us as GEMM,
 * 62 us as GEMV), and single rows are every step of a streamed sequence and the tail of a
 * variable-length batch. */
static void FN(rows_times)(const BLAS_TABLE *blas, int rows, int n, int k, const real *a,
                           int lda, const real *b, int ldb, real beta, real *c, int ldc)
{
    if (rows == 1) {
        if (beta == 0) /* BLAS may compute 0 * y, and y may hold NaN from earlier use */
            memset(c, 0, (size_t)n * sizeof(real));
        blas->gemv(1, k, n, 1, b, ldb, a, beta, c); /* c = B^T a */
    } else {
        blas->gemm(0, 0, rows, n, k, 1, a, lda, b, ldb, beta, c, ldc);
    }
}

static void FN(copy_or_zero)(real *dst, const real *src, size_t n)
{
    if (src != NULL)
        memmove(dst, src, n * sizeof(real));
    else
        memset(dst, 0, n * sizeof(real));
}

CPU_DISPATCH int FN(crnn_forward)(const BLAS_TABLE *blas, const crnn_dims *d, const real *x,
                     const int *lengths, const real *W_x, const real *W_h, const real *b,
                     const real *b_hn, const real *h0, const real *c0, real *y, real *hn,
                     real *cn, real *reserve, real *workspace)
{
    int status = crnn_check_call(d, lengths, 0);
    if (status != CRNN_OK)
        return status;
    const int cell = d->cell;
    if (blas == NULL || blas->gemm == NULL || blas->gemv == NULL || x == NULL || W_x == NULL ||
        W_h == NULL || b == NULL || y == NULL || hn == NULL || reserve == NULL || workspace == NULL ||
        (cell == CRNN_GRU && b_hn == NULL) || (cell == CRNN_LSTM && cn == NULL))
        return CRNN_ERR_NULL;

    const int B = d->B, I = d->n_in, H = d->H, ldx = d->ldx, ldy = d->ldy;
    const int GH = crnn_gates(cell) * H, Gs = reserve_row_width(cell, H);
    const int T_max = lengths[0];
    real *gh = workspace;                                   /* (B, GH) one step's h W_h */
    real *c_keep = reserve + (size_t)d->T * B * Gs;         /* (T, B, H) LSTM cell states */

    FN(copy_or_zero)(hn, h0, (size_t)B * H);
    if (cell == CRNN_LSTM)
        FN(copy_or_zero)(cn, c0, (size_t)B * H);

    /* Input projection of every active row, before the step loop:
     * Gx += x W_x    (rows, GH) = (rows, I)(I, GH) */
    for (int t = 0, rows, nt; t < T_max; t += nt) {
        nt = row_block(lengths, B, t, T_max, &rows);
        FN(rows_times)(blas, rows, GH, I, x + (size_t)t * B * ldx, ldx, W_x, GH, 0,
                       reserve + (size_t)t * B * Gs, Gs);
    }

    for (int s = 0; s < T_max; ++s) {
        const int nb = n_longer(lengths, B, s);
        /* Gh = h(t-1) W_h    (nb, GH) = (nb, H)(H, GH) */
        FN(rows_times)(blas, nb, GH, H, hn, H, W_h, GH, 0, gh, GH);
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

/* dst (cols, rows) = src (rows, cols)^T, in cache-sized tiles. */
static void FN(transpose)(int rows, int cols, const real *src, real *dst)
{
    enum { TILE = 32 };
    for (int i0 = 0; i0 < rows; i0 += TILE)
        for (int j0 = 0; j0 < cols; j0 += TILE)
            for (int i = i0; i < rows && i < i0 + TILE; ++i)
                for (int j = j0; j < cols && j < j0 + TILE; ++j)
                    dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

/* dW_h += h_prev^T dG_h over `rows` rows. The GRU's recurrent gradient is [dr, dz, dhn]: the
 * reserve row's blocks 0, 1 and 3. */
static void FN(add_recurrent_grad)(const BLAS_TABLE *blas, int cell, int H, int rows,
                                   const real *h_prev, int ldh, const real *g, int Gs,
                                   real *dW_h)
{
    const int GH = crnn_gates(cell) * H;
    if (cell == CRNN_GRU) {
        /* dW_h[:, :2H] += h_prev^T [dr dz]    (H, 2H) += (rows, H)^T (rows, 2H) */
        blas->gemm(1, 0, H, 2 * H, rows, 1, h_prev, ldh, g, Gs, 1, dW_h, GH);
        /* dW_h[:, 2H:] += h_prev^T dhn        (H, H) += (rows, H)^T (rows, H) */
        blas->gemm(1, 0, H, H, rows, 1, h_prev, ldh, g + 3 * H, Gs, 1, dW_h + 2 * H, GH);
    } else {
        /* dW_h += h_prev^T dG                 (H, GH) += (rows, H)^T (rows, GH) */
        blas->gemm(1, 0, H, GH, rows, 1, h_prev, ldh, g, Gs, 1, dW_h, GH);
    }
}

/*
 * Workspace: dgs (B, GH) one step's recurrent gate gradients in step order | dh (B, H) the
 * carried dL/dh | dc (B, H) the carried dL/dc (LSTM) | zeros (H) stands in for absent h0/c0 |
 * W_hT (GH, H) a transposed copy of W_h: OpenBLAS runs the per-step dh GEMM up to 1.5x
 * faster with both operands untransposed (measured at B=32, H=64..512).
 * The reserve's gate rows are overwritten with the gate gradients, so a forward call's reserve
 * serves one backward call.
 */
CPU_DISPATCH int FN(crnn_backward)(const BLAS_TABLE *blas, const crnn_dims *d, const real *x,
                      const int *lengths, const real *W_x, const real *W_h, const real *h0,
                      const real *c0, const real *y, real *reserve, const real *dy,
                      const real *dhn, const real *dcn, int truncate, real *dx, real *dh0,
                      real *dc0, real *dW_x, real *dW_h, real *db, real *db_hn, real *workspace)
{
    int status = crnn_check_call(d, lengths, truncate);
    if (status != CRNN_OK)
        return status;
    const int cell = d->cell;
    if (blas == NULL || blas->gemm == NULL || blas->gemv == NULL || x == NULL || W_x == NULL ||
        W_h == NULL || y == NULL || reserve == NULL || dx == NULL || dW_x == NULL || dW_h == NULL ||
        db == NULL || workspace == NULL || (cell == CRNN_GRU && db_hn == NULL))
        return CRNN_ERR_NULL;

    const int B = d->B, I = d->n_in, H = d->H, ldx = d->ldx, ldy = d->ldy, rev = d->reverse;
    const int GH = crnn_gates(cell) * H, Gs = reserve_row_width(cell, H);
    const int T_max = lengths[0];
    /* Each sequence's backward pass covers its last k processing steps. */
    const int k = truncate > 0 && truncate < T_max ? truncate : T_max;
    const real *c_keep = reserve + (size_t)d->T * B * Gs;
    real *dgs = workspace;
    real *dh = dgs + (size_t)B * GH;
    real *dc = dh + (size_t)B * H;
    real *zeros = dc + (size_t)B * H;
    real *W_hT = zeros + H;

    memset(zeros, 0, (size_t)H * sizeof(real));
    FN(transpose)(H, GH, W_h, W_hT);
    FN(copy_or_zero)(dh, dhn, (size_t)B * H);
    if (cell == CRNN_LSTM)
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
        /* dh(t-1) = dG W_h^T    (nb-lo, H) = (nb-lo, GH)(GH, H)
         * (the GRU adds it to the direct part z*dh its row pass left in dh) */
        if (nb > lo && (s > 0 || dh0 != NULL))
            FN(rows_times)(blas, nb - lo, H, GH, dgs + (size_t)lo * GH, GH, W_hT, H,
                           cell == CRNN_GRU ? 1 : 0, dh + (size_t)lo * H, H);
    }

    /* Sequences from `first` on reached their first step: only they pass a gradient to h0. */
    const int first = n_longer(lengths, B, k);
    for (int bb = first; bb < B; ++bb) {
        for (int j = 0; j < H; ++j) {
            if (dh0 != NULL)
                dh0[(size_t)bb * H + j] += dh[(size_t)bb * H + j];
            if (dc0 != NULL && cell == CRNN_LSTM)
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
            if (cell == CRNN_GRU)
                for (int j = 0; j < H; ++j)
                    db_hn[j] += g[3 * H + j];
        }
    }

    for (int t = 0, rows, nt; t < T_max; t += nt) {
        nt = row_block(lengths, B, t, T_max, &rows);
        const real *g = reserve + (size_t)t * B * Gs;
        /* dW_x += x^T dG    (I, GH) += (rows, I)^T (rows, GH) */
        blas->gemm(1, 0, I, GH, rows, 1, x + (size_t)t * B * ldx, ldx, g, Gs, 1, dW_x, GH);
        /* dx += dG W_x^T    (rows, I) += (rows, GH)(I, GH)^T */
        blas->gemm(0, 1, rows, I, GH, 1, g, Gs, W_x, GH, 1, dx + (size_t)t * B * ldx, ldx);
    }

    /* dW_h over every step but each sequence's first, whose h_prev is h0. The nb(u) sequences
     * that reach step u pair y at u-1 with dG at u (forward), or y at u with dG at u-1
     * (reverse: the step before time u-1 was time u). */
    for (int u = 1, rows, nt; u < T_max; u += nt) {
        nt = row_block(lengths, B, u, T_max, &rows);
        FN(add_recurrent_grad)(blas, cell, H, rows, y + (size_t)(rev ? u : u - 1) * B * ldy, ldy,
                               reserve + (size_t)(rev ? u - 1 : u) * B * Gs, Gs, dW_h);
    }
    /* ... and the first steps, whose recurrent gate gradients are still in dgs:
     * dW_h += h0^T dG_h(first)    (H, GH) += (B-first, H)^T (B-first, GH) */
    if (h0 != NULL && first < B)
        blas->gemm(1, 0, H, GH, B - first, 1, h0 + (size_t)first * H, H,
                   dgs + (size_t)first * GH, GH, 1, dW_h, GH);
    return CRNN_OK;
}
