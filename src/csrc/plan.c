/*
 * plan.c -- how each matrix product of layer.c runs on the BLAS: whole, in row chunks that
 * fit a BLAS's small-matrix kernels (blas->small_gemm, see crnn.h), in column blocks, as its
 * transpose, or through GEMV for a single row. Tuning only: every path computes the same
 * product, and tests/test_functional_reference.py runs each (crnn_product_plan says which).
 * The constants are in tuning.h, the measurements behind them in bench/RESULTS.md
 * ("Product plans"). Template body: included by dtype.h.
 */

/* c (n) = a (k) B (k, n) [+ c if add]: one row, through GEMV. OpenBLAS runs a one-row GEMM
 * several times slower, and single rows are every step of a streamed sequence and the tail of
 * a variable-length batch. */
static void FN(row_times)(const BLAS_TABLE *blas, int n, int k, const real *a, const real *b,
                          int ldb, int add, real *c)
{
    if (!add) /* BLAS may compute 0 * c, and c may hold NaN from earlier use */
        memset(c, 0, (size_t)n * sizeof(real));
    blas->gemv(1, k, n, 1, b, ldb, a, add, c); /* c = B^T a */
}

/* dst (cols, rows) = src (rows, cols)^T [+ dst if add], in tiles with contiguous writes. */
static void FN(transpose)(int rows, int cols, const real *restrict src, real *restrict dst,
                          int add)
{
    enum { TILE = TRANSPOSE_TILE };
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

/*
 * How a per-step recurrent product (rows, n) = (rows, k)(k, n) runs, rows being the active
 * batch and {n, k} = {G*H, H}. A single row goes to GEMV. A BLAS with small-matrix kernels
 * runs the row-major form fastest within their size, so a batch that fits runs whole, and a
 * larger one in chunks of rows that fit, while those stay at least SMALL_ROWS_STEP rows.
 * Beyond that (LSTM and GRU from H ~ 256), and with any other BLAS, sgemm runs a batch
 * narrower than H fastest through the product's transpose, (n, rows) = (k, n)^T (rows, k)^T,
 * transposed back into place; a wider batch, and every dgemm, whole.
 */
enum { STEP_GEMV, STEP_ROWS, STEP_TRANSPOSED };

/* Rows per product of (rows, n) = (rows, k)(k, n) that the BLAS's small-matrix kernels take:
 * a multiple of SMALL_ROWS_STEP, or 0 if fewer fit or it has none. */
static int FN(small_rows)(const BLAS_TABLE *blas, int n, int k)
{
    double fit = blas->small_gemm / ((double)n * k);
    fit = fit < (1 << 30) ? fit : (1 << 30); /* (int)fit stays defined */
    return fit >= SMALL_ROWS_STEP ? (int)fit - (int)fit % SMALL_ROWS_STEP : 0;
}

/* Rows per product for the products over every (step, sequence) row (the input projection,
 * the weight gradients): small_rows when that holds MIN_CHUNK_ROWS or more, else all `rows`. */
static int FN(chunk_rows)(const BLAS_TABLE *blas, int n, int k, int rows)
{
    const int small = FN(small_rows)(blas, n, k);
    return small >= TUNED(MIN_CHUNK_ROWS) ? small : rows;
}

static int FN(step_plan)(const BLAS_TABLE *blas, int rows, int n, int k, int *chunk)
{
    if (rows == 1)
        return STEP_GEMV;
    const int small = FN(small_rows)(blas, n, k);
    *chunk = rows;
    if (rows <= small)
        return STEP_ROWS;
    if (small > 0) { /* equal chunks: 64 rows as 32 + 32, not 56 + 8 (an 8-row product
                      * costs nearly what a 56-row one does) */
        const int n_chunks = (rows + small - 1) / small;
        const int even = (rows + n_chunks - 1) / n_chunks;
        *chunk = (even + SMALL_ROWS_STEP - 1) / SMALL_ROWS_STEP * SMALL_ROWS_STEP;
        return STEP_ROWS;
    }
    return TUNED(TRANSPOSED_STEPS) && rows < (n < k ? n : k) ? STEP_TRANSPOSED : STEP_ROWS;
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

/* C (rows, n) = A (rows, k) B (k, n) over every (step, sequence) row of a block: the input
 * projection. In small-matrix chunks where they hold MIN_CHUNK_ROWS rows or more. */
static void FN(all_rows_times)(const BLAS_TABLE *blas, int rows, int n, int k, const real *a,
                               int lda, const real *b, int ldb, real *c, int ldc)
{
    FN(rows_in_chunks)(blas, rows, FN(chunk_rows)(blas, n, k, rows), n, k, a, lda, b, ldb, 0,
                       c, ldc);
}

/* Whether a call over batches of up to B rows needs W_h^T besides W_h for its per-step
 * products C = A op(W_h), op(W_h) = W_h (forward, `trans` 0, (n, k) = (GH, H)) or W_h^T
 * (backward, `trans` 1, (n, k) = (H, GH)): the row-major product of the backward and the
 * transposed product of the forward read it. */
static int FN(needs_W_hT)(const BLAS_TABLE *blas, int trans, int B, int n, int k)
{
    return FN(some_rows_take)(blas, trans ? STEP_ROWS : STEP_TRANSPOSED, B, n, k);
}

/* The per-step recurrent product, C (rows, n) = A (rows, k) op(W_h) [+ C if add], op as for
 * needs_W_hT. W_h is (H, GH) and W_hT its transpose (GH, H), filled if needs_W_hT; scratch
 * holds (n, rows) for the transposed path. */
static void FN(recurrent_product)(const BLAS_TABLE *blas, int trans, int rows, int n, int k,
                                  const real *a, const real *W_h, const real *W_hT, int add,
                                  real *c, real *scratch)
{
    int chunk;
    switch (FN(step_plan)(blas, rows, n, k, &chunk)) {
    case STEP_GEMV: /* c = op(W_h)^T a, from W_h itself */
        if (!add) /* BLAS may compute 0 * c, and c may hold NaN from earlier use */
            memset(c, 0, (size_t)n * sizeof(real));
        blas->gemv(!trans, trans ? n : k, trans ? k : n, 1, W_h, trans ? k : n, a, add, c);
        break;
    case STEP_ROWS: /* both operands untransposed: up to 1.5x faster in small-matrix kernels */
        FN(rows_in_chunks)(blas, rows, chunk, n, k, a, k, trans ? W_hT : W_h, n, add, c, n);
        break;
    default: /* STEP_TRANSPOSED: C^T (n, rows) = op(W_h)^T (n, k) A^T (k, rows) */
        blas->gemm(0, 1, n, rows, k, 1, trans ? W_h : W_hT, k, a, k, 0, scratch, rows);
        FN(transpose)(n, rows, scratch, c, add);
        break;
    }
}

/* add_AtB's plan: `chunk` rows per product, in blocks of `width` of the n columns. An output
 * too wide for row chunks (LSTM dW_h from H = 126) but not too tall: blocks of COL_BLOCK
 * columns in chunks of BLOCK_ROWS or more rows, each row chunk visiting every block while it
 * is in cache. */
static void FN(atb_plan)(const BLAS_TABLE *blas, int m, int n, int k, int *chunk, int *width)
{
    const int block_rows = FN(small_rows)(blas, m, COL_BLOCK);
    *width = n;
    *chunk = FN(chunk_rows)(blas, m, n, k);
    if (TUNED(COLUMN_BLOCKS) && FN(small_rows)(blas, m, n) < TUNED(MIN_CHUNK_ROWS) &&
        n > COL_BLOCK && block_rows >= BLOCK_ROWS) {
        *width = COL_BLOCK;
        *chunk = block_rows;
    }
}

/* C (m, n) += A^T B, summed over k rows (A (k, m), B (k, n), row-major): the weight
 * gradients, a small output summed over every (step, sequence) row. A BLAS with small-matrix
 * kernels runs these up to 3x faster as a sum of products that fit them. With more outputs
 * even MIN_CHUNK_ROWS rows per product exceed them: the whole product runs as fast or faster,
 * or for sgemm, while the output has few rows, blocks of its columns in row chunks. */
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
