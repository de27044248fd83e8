/*
 * layer.c -- one direction of one recurrent layer over a batch of sequences: the forward pass
 * and backpropagation through time, side by side.
 * Template body: compiled through dtype_f32.c / dtype_f64.c with `real`, FN() and BLAS_TABLE
 * defined, after the cell files.
 *
 * Shapes (rows are (t, b) pairs, row index t*B + b; G*H = GH gate columns):
 *   x (T, B, ldx)   y (T, B, ldy)   W_x (I, GH)   W_h (H, GH)   h0, hn, mask (B, H)
 *   reserve: gate rows (T, B, Gs) [+ LSTM cell states (T, B, H)] [+ masked states (T, B, H):
 *   the m * h(t-1) that the step of row (t, b) multiplied with W_h]   workspace: see below
 * Processing step s visits sequence b at time t = s (forward) or lengths[b]-1-s (reverse).
 * The carried state is kept in step order in hn (and cn), so the per-step GEMM reads a
 * contiguous prefix of rows in either direction.
 */

/* c (n) = a (k) B (k, n) [+ c if add]: one row, through GEMV. OpenBLAS runs a one-row GEMM
 * several times slower (measured: (1,512)x(512,2048) 220-390 us as GEMM, 62 us as GEMV), and
 * single rows are every step of a streamed sequence and the tail of a variable-length batch. */
static void FN(row_times)(const BLAS_TABLE *blas, int n, int k, const real *a, const real *b,
                          int ldb, int add, real *c)
{
    if (!add) /* BLAS may compute 0 * c, and c may hold NaN from earlier use */
        memset(c, 0, (size_t)n * sizeof(real));
    blas->gemv(1, k, n, 1, b, ldb, a, add, c); /* c = B^T a */
}

/* dst (cols, rows) = src (rows, cols)^T [+ dst if add]. Tiles of 16 x 16 with contiguous
 * writes: 0.3 ns an element here, against 0.8-1.9 for 32 x 32 tiles written column-wise
 * (power-of-two strides made those tiles evict themselves from L1). */
static void FN(transpose)(int rows, int cols, const real *restrict src, real *restrict dst,
                          int add)
{
    enum { TILE = 16 };
    for (int j0 = 0; j0 < cols; j0 += TILE) {
        const int j1 = j0 + TILE < cols ? j0 + TILE : cols;
        for (int i0 = 0; i0 < rows; i0 += TILE) {
            const int i1 = i0 + TILE < rows ? i0 + TILE : rows;
            for (int j = j0; j < j1; ++j) {
                real *d = dst + (size_t)j * rows;
                if (add)
                    for (int i = i0; i < i1; ++i)
                        d[i] += src[(size_t)i * cols + j];
                else
                    for (int i = i0; i < i1; ++i)
                        d[i] = src[(size_t)i * cols + j];
            }
        }
    }
}

static void FN(copy_or_zero)(real *dst, const real *src, size_t n)
{
    if (src != NULL)
        memmove(dst, src, n * sizeof(real));
    else
        memset(dst, 0, n * sizeof(real));
}

/*
 * How a per-step recurrent product (rows, n) = (rows, k)(k, n) runs, rows being the active
 * batch and {n, k} = {G*H, H}. A single row goes to GEMV. A BLAS with small-matrix kernels
 * (OpenBLAS on AVX-512 cores, blas->small_gemm ~ 10^6 multiply-adds) runs the row-major form
 * fastest within that size, so a batch that fits runs whole, and a larger one in chunks of
 * rows that fit, while those stay at least 8 rows. Beyond that (LSTM and GRU from H ~ 256),
 * and with any other BLAS, sgemm runs a batch narrower than H fastest through the product's
 * transpose, (n, rows) = (k, n)^T (rows, k)^T, transposed back into place; a wider batch,
 * and every dgemm, whole. Measured through cython_blas, 1 thread, GFLOP/s
 * (whole / in chunks / transposed):
 *   OpenBLAS SkylakeX kernels (this machine, AVX-512):
 *     sgemm h W_h  LSTM B=32 H=128: 72 / 113 / 80      B=128 H=128: 93 / 113 / 99
 *                  GRU  B=32 H=128: 63 / 115 / 89      LSTM B=64 H=64: 78 / 110 / 92
 *                  LSTM B=32 H=512: 71 / - / 88        B=16 H=256: 52 / - / 81
 *     sgemm dG W_h^T     B=32 H=128..512: whole 65-71, transposed 84-87
 *     dgemm h W_h  LSTM B=32 H=128: 46 / 55 / 40       B=32 H=512: 44 / - / 36
 *   OpenBLAS Haswell kernels (the same CPU with OPENBLAS_CORETYPE=Haswell: AVX2 only):
 *     sgemm h W_h  LSTM B=32 H=128: 60 / 25 / 94       B=8 H=64: 25 / - / 67
 *                  B=128 H=32: 82 / - / 83             RNN B=128 H=32: 64 / - / 50
 */
enum { STEP_GEMV, STEP_ROWS, STEP_TRANSPOSED };
enum { COL_BLOCK = 64, BLOCK_ROWS = 64 };

/* Rows per product of (rows, n) = (rows, k)(k, n) that the BLAS's small-matrix kernels take:
 * a multiple of 8 (others ran 10-25% slower), or 0 if fewer than 8 rows fit or it has none. */
static int FN(small_rows)(const BLAS_TABLE *blas, int n, int k)
{
    double fit = blas->small_gemm / ((double)n * k);
    fit = fit < (1 << 30) ? fit : (1 << 30); /* (int)fit stays defined */
    return fit >= 8 ? (int)fit - (int)fit % 8 : 0;
}

/* Rows per product for the products over every (step, sequence) row (the input projection,
 * the weight gradients): small_rows when that holds MIN_CHUNK_ROWS or more, else all `rows`. */
static int FN(chunk_rows)(const BLAS_TABLE *blas, int n, int k, int rows)
{
    const int small = FN(small_rows)(blas, n, k);
    return small >= MIN_CHUNK_ROWS ? small : rows;
}

static int FN(step_plan)(const BLAS_TABLE *blas, int rows, int n, int k, int *chunk)
{
    if (rows == 1)
        return STEP_GEMV;
    const int small = FN(small_rows)(blas, n, k);
    *chunk = rows;
    if (rows <= small)
        return STEP_ROWS;
    if (small > 0) {
        *chunk = small;
        return STEP_ROWS;
    }
    return TRANSPOSED_STEPS && rows < (n < k ? n : k) ? STEP_TRANSPOSED : STEP_ROWS;
}

/* Whether some batch of 2..B rows takes the product with the given plan. */
static int FN(some_rows_take)(const BLAS_TABLE *blas, int plan, int B, int n, int k)
{
    int chunk;
    for (int rows = 2; rows <= B; ++rows)
        if (FN(step_plan)(blas, rows, n, k, &chunk) == plan)
            return 1;
    return 0;
}

/* C (rows, n) = A (rows, k) B (k, n) [+ C if add], row-major, in chunks of `chunk` rows. */
static void FN(rows_in_chunks)(const BLAS_TABLE *blas, int rows, int chunk, int n, int k,
                               const real *a, int lda, const real *b, int ldb, int add,
                               real *c, int ldc)
{
    for (int r0 = 0; r0 < rows; r0 += chunk) {
        const int m = rows - r0 < chunk ? rows - r0 : chunk;
        if (m == 1)
            FN(row_times)(blas, n, k, a + (size_t)r0 * lda, b, ldb, add, c + (size_t)r0 * ldc);
        else
            blas->gemm(0, 0, m, n, k, 1, a + (size_t)r0 * lda, lda, b, ldb, add,
                       c + (size_t)r0 * ldc, ldc);
    }
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

CPU_DISPATCH int FN(crnn_forward)(const BLAS_TABLE *blas, const crnn_dims *d, const real *x,
                     const int *lengths, const real *W_x, const real *W_h, const real *b,
                     const real *b_hn, const real *h0, const real *c0, const real *mask,
                     real *y, real *hn, real *cn, real *reserve, real *workspace)
{
    int status = crnn_check_call(d, lengths, 0);
    if (status != CRNN_OK)
        return status;
    const int cell = d->cell;
    if (blas == NULL || blas->gemm == NULL || blas->gemv == NULL || x == NULL || W_x == NULL ||
        W_h == NULL || b == NULL || y == NULL || hn == NULL || reserve == NULL ||
        workspace == NULL || (cell == CRNN_GRU && b_hn == NULL) ||
        (cell == CRNN_LSTM && cn == NULL) || (d->masked && mask == NULL))
        return CRNN_ERR_NULL;

    const int B = d->B, I = d->n_in, H = d->H, ldx = d->ldx, ldy = d->ldy;
    const int GH = crnn_gates(cell) * H, Gs = reserve_row_width(cell, H);
    const int T_max = lengths[0];
    /* Workspace: gh (B, GH) one step's h W_h | W_hT (GH, H) | ghT (GH, B) its transpose |
     * hm (B, H) one step's masked state m * h(t-1), reverse direction with a mask only */
    real *gh = workspace, *W_hT = gh + (size_t)B * GH, *ghT = W_hT + (size_t)GH * H;
    real *hm = ghT + (size_t)GH * B;
    real *c_keep = reserve + (size_t)d->T * B * Gs;         /* (T, B, H) LSTM cell states */
    real *hm_keep = c_keep + (cell == CRNN_LSTM ? (size_t)d->T * B * H : 0); /* (T, B, H) */
    if (FN(some_rows_take)(blas, STEP_TRANSPOSED, B, GH, H))
        FN(transpose)(H, GH, W_h, W_hT, 0);

    FN(copy_or_zero)(hn, h0, (size_t)B * H);
    if (cell == CRNN_LSTM)
        FN(copy_or_zero)(cn, c0, (size_t)B * H);

    /* Input projection of every active row, before the step loop, in small-matrix chunks
     * where they hold MIN_CHUNK_ROWS rows or more (3200 rows, GFLOP/s whole vs chunks: sgemm
     * (64, 128) 92 vs 110, (8, 512) 48 vs 59; dgemm (64, 128) 46 vs 54, and slower in chunks
     * of fewer than 64 rows):    Gx = x W_x    (rows, GH) = (rows, I)(I, GH) */
    for (int t = 0, rows, nt; t < T_max; t += nt) {
        nt = row_block(lengths, B, t, T_max, &rows);
        FN(rows_in_chunks)(blas, rows, FN(chunk_rows)(blas, GH, I, rows), GH, I,
                           x + (size_t)t * B * ldx, ldx, W_x, GH, 0,
                           reserve + (size_t)t * B * Gs, Gs);
    }

    for (int s = 0; s < T_max; ++s) {
        const int nb = n_longer(lengths, B, s);
        const real *h_in = d->masked ? FN(masked_state)(d, lengths, s, nb, mask, hn, hm, hm_keep)
                                     : hn; /* what multiplies W_h */
        /* Gh = h(t-1) W_h    (nb, GH) = (nb, H)(H, GH)
         * or its transpose:  (GH, nb) = (GH, H)(nb, H)^T, transposed into gh */
        int chunk;
        switch (FN(step_plan)(blas, nb, GH, H, &chunk)) {
        case STEP_GEMV:
            FN(row_times)(blas, GH, H, h_in, W_h, GH, 0, gh);
            break;
        case STEP_ROWS:
            FN(rows_in_chunks)(blas, nb, chunk, GH, H, h_in, H, W_h, GH, 0, gh, GH);
            break;
        default: /* STEP_TRANSPOSED */
            blas->gemm(0, 1, GH, nb, H, 1, W_hT, H, h_in, H, 0, ghT, nb);
            FN(transpose)(GH, nb, ghT, gh, 0);
            break;
        }
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

/* add_AtB's plan: `chunk` rows per product, in blocks of `width` of the n columns. An output
 * too wide for row chunks (LSTM dW_h from H = 126) but not too tall: blocks of COL_BLOCK
 * columns in chunks of BLOCK_ROWS or more rows, each row chunk visiting every block while it
 * is in cache (sgemm, 1 thread, backward: LSTM H=128 14-16% faster; with fewer rows per
 * chunk, H >= 256, no gain). */
static void FN(atb_plan)(const BLAS_TABLE *blas, int m, int n, int k, int *chunk, int *width)
{
    const int block_rows = FN(small_rows)(blas, m, COL_BLOCK);
    *width = n;
    *chunk = FN(chunk_rows)(blas, m, n, k);
    if (COLUMN_BLOCKS && FN(small_rows)(blas, m, n) < MIN_CHUNK_ROWS && n > COL_BLOCK &&
        block_rows >= BLOCK_ROWS) {
        *width = COL_BLOCK;
        *chunk = block_rows;
    }
}

/* C (m, n) += A^T B, summed over k rows (A (k, m), B (k, n), row-major): the weight
 * gradients, a small output summed over every (step, sequence) row. A BLAS with small-matrix
 * kernels runs these up to 3x faster as a sum of products that fit them (OpenBLAS SkylakeX,
 * 1 thread, 3200 rows, whole vs in row chunks, sgemm GFLOP/s: (8, 512) 34 vs 96, (32, 128)
 * 65 vs 108, (64, 512) 72 vs 94; dgemm (8, 128) 30 vs 49). With more outputs even
 * MIN_CHUNK_ROWS rows per product exceed them: the whole product runs as fast or faster, or
 * for sgemm, while the output has few rows, blocks of its columns in row chunks. */
static void FN(add_AtB)(const BLAS_TABLE *blas, int m, int n, int k, const real *a, int lda,
                        const real *b, int ldb, real *c, int ldc)
{
    int width, chunk;
    FN(atb_plan)(blas, m, n, k, &chunk, &width);
    for (int k0 = 0; k0 < k; k0 += chunk) {
        const int rows = k - k0 < chunk ? k - k0 : chunk;
        for (int j0 = 0; j0 < n; j0 += width) {
            const int w = n - j0 < width ? n - j0 : width;
            blas->gemm(1, 0, m, w, rows, 1, a + (size_t)k0 * lda, lda,
                       b + (size_t)k0 * ldb + j0, ldb, 1, c + j0, ldc);
        }
    }
}

/* The plan query of crnn.h: the path step_plan or atb_plan gives a product. */
int FN(crnn_product_plan)(const BLAS_TABLE *blas, int product, int m, int n, int k, int *plan,
                          int *chunk, int *width)
{
    if (blas == NULL || plan == NULL || chunk == NULL || width == NULL)
        return CRNN_ERR_NULL;
    if (m < 1 || n < 1 || k < 1 || (product != CRNN_PLAN_STEP && product != CRNN_PLAN_ATB))
        return CRNN_ERR_DIMS;
    if (product == CRNN_PLAN_ATB) {
        FN(atb_plan)(blas, m, n, k, chunk, width);
        *plan = *width < n ? CRNN_PATH_COLUMN_BLOCKS
                : *chunk < k ? CRNN_PATH_ROW_CHUNKS : CRNN_PATH_WHOLE;
        return CRNN_OK;
    }
    *width = n;
    switch (FN(step_plan)(blas, m, n, k, chunk)) {
    case STEP_GEMV:
        *chunk = 1;
        *plan = CRNN_PATH_GEMV;
        break;
    case STEP_ROWS:
        *plan = *chunk < m ? CRNN_PATH_ROW_CHUNKS : CRNN_PATH_WHOLE;
        break;
    default:
        *chunk = m;
        *plan = CRNN_PATH_TRANSPOSED;
        break;
    }
    return CRNN_OK;
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
        FN(add_AtB)(blas, H, 2 * H, rows, h_prev, ldh, g, Gs, dW_h, GH);
        /* dW_h[:, 2H:] += h_prev^T dhn        (H, H) += (rows, H)^T (rows, H) */
        FN(add_AtB)(blas, H, H, rows, h_prev, ldh, g + 3 * H, Gs, dW_h + 2 * H, GH);
    } else {
        /* dW_h += h_prev^T dG                 (H, GH) += (rows, H)^T (rows, GH) */
        FN(add_AtB)(blas, H, GH, rows, h_prev, ldh, g, Gs, dW_h, GH);
    }
}

/*
 * Workspace: dgs (B, GH) one step's recurrent gate gradients in step order | dh (B, H) the
 * carried dL/dh | dc (B, H) the carried dL/dc (LSTM) | zeros (H) stands in for absent h0/c0 |
 * W_hT (GH, H) a transposed copy of W_h: OpenBLAS's small-matrix kernels run the per-step dh
 * GEMM up to 1.5x faster with both operands untransposed | dhT (H, B) for the transposed
 * product (see step_plan) | dhm (B, H) with a mask, one step's gradient w.r.t. m * h(t-1).
 * The reserve's gate rows are overwritten with the gate gradients, so a forward call's reserve
 * serves one backward call.
 */
CPU_DISPATCH int FN(crnn_backward)(const BLAS_TABLE *blas, const crnn_dims *d, const real *x,
                      const int *lengths, const real *W_x, const real *W_h, const real *h0,
                      const real *c0, const real *mask, const real *y, real *reserve,
                      const real *dy, const real *dhn, const real *dcn, int truncate, real *dx,
                      real *dh0, real *dc0, real *dW_x, real *dW_h, real *db, real *db_hn,
                      real *workspace)
{
    int status = crnn_check_call(d, lengths, truncate);
    if (status != CRNN_OK)
        return status;
    const int cell = d->cell;
    if (blas == NULL || blas->gemm == NULL || blas->gemv == NULL || x == NULL || W_x == NULL ||
        W_h == NULL || y == NULL || reserve == NULL || dW_x == NULL || dW_h == NULL ||
        db == NULL || workspace == NULL || (cell == CRNN_GRU && db_hn == NULL) ||
        (d->masked && mask == NULL))
        return CRNN_ERR_NULL;

    const int B = d->B, I = d->n_in, H = d->H, ldx = d->ldx, ldy = d->ldy, rev = d->reverse;
    const int GH = crnn_gates(cell) * H, Gs = reserve_row_width(cell, H);
    const int T_max = lengths[0];
    /* Each sequence's backward pass covers its last k processing steps. */
    const int k = truncate > 0 && truncate < T_max ? truncate : T_max;
    const real *c_keep = reserve + (size_t)d->T * B * Gs;
    const real *hm_keep = c_keep + (cell == CRNN_LSTM ? (size_t)d->T * B * H : 0);
    real *dgs = workspace;
    real *dh = dgs + (size_t)B * GH;
    real *dc = dh + (size_t)B * H;
    real *zeros = dc + (size_t)B * H;
    real *W_hT = zeros + H;
    real *dhT = W_hT + (size_t)GH * H;
    real *dhm = dhT + (size_t)H * B;

    memset(zeros, 0, (size_t)H * sizeof(real));
    if (FN(some_rows_take)(blas, STEP_ROWS, B, H, GH))
        FN(transpose)(H, GH, W_h, W_hT, 0);
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
        /* dh(t-1) = dG W_h^T    (rows, H) = (rows, GH)(GH, H), rows = nb - lo,
         * or its transpose:     (H, rows) = (H, GH)(rows, GH)^T, transposed into dh
         * (the GRU adds it to the direct part z*dh its row pass left in dh). With a mask the
         * product is the gradient w.r.t. m * h(t-1): it goes to dhm, then dh (+)= m * dhm. */
        const int rows = nb - lo, gru = cell == CRNN_GRU, add = gru && !d->masked;
        real *dh_lo = d->masked ? dhm + (size_t)lo * H : dh + (size_t)lo * H;
        const real *dg_lo = dgs + (size_t)lo * GH;
        int chunk;
        if (rows == 0 || (s == 0 && dh0 == NULL))
            continue; /* nothing to propagate */
        switch (FN(step_plan)(blas, rows, H, GH, &chunk)) {
        case STEP_GEMV:
            if (!add) /* BLAS may compute 0 * y, and y holds this step's dh */
                memset(dh_lo, 0, (size_t)H * sizeof(real));
            blas->gemv(0, H, GH, 1, W_h, GH, dg_lo, add, dh_lo); /* W_h dg */
            break;
        case STEP_ROWS:
            FN(rows_in_chunks)(blas, rows, chunk, H, GH, dg_lo, GH, W_hT, H, add, dh_lo, H);
            break;
        default: /* STEP_TRANSPOSED */
            blas->gemm(0, 1, H, rows, GH, 1, W_h, GH, dg_lo, GH, 0, dhT, rows);
            FN(transpose)(H, rows, dhT, dh_lo, add);
            break;
        }
        for (int bb = lo; d->masked && bb < nb; ++bb) {
            const real *m = mask + (size_t)bb * H, *g = dhm + (size_t)bb * H;
            real *dhr = dh + (size_t)bb * H;
            if (gru)
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
            FN(add_recurrent_grad)(blas, cell, H, rows, hm_keep + (size_t)t * B * H, H,
                                   reserve + (size_t)t * B * Gs, Gs, dW_h);
        }
        return CRNN_OK;
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
