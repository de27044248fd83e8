/*
 * dense.c -- a dense layer's forward pass, out = x W + b (template body: included by
 * dtype_f32.c and dtype_f64.c with `real` and FN() bound).
 *
 * The estimators' output layer, run by a streamed step in the same call as the recurrent
 * layers: through NumPy, its product and bias cost more than a small layer's step.
 */

/*   x (B, ldx)  W (n_in, n_out)  b (n_out)  ->  out (B, n_out) */
int FN(crnn_dense)(const BLAS_TABLE *blas, int B, int n_in, int n_out, const real *x, int ldx,
                   const real *W, const real *b, real *out)
{
    if (blas == NULL || blas->gemm == NULL || blas->gemv == NULL || x == NULL || W == NULL ||
        b == NULL || out == NULL)
        return CRNN_ERR_NULL;
    if (B < 1 || n_in < 1 || n_out < 1 || ldx < n_in)
        return CRNN_ERR_DIMS;
    for (int i = 0; i < B; ++i)
        memcpy(out + (size_t)i * n_out, b, (size_t)n_out * sizeof(real));
    if (B == 1)
        blas->gemv(1, n_in, n_out, 1, W, n_out, x, 1, out);           /* out += W^T x */
    else
        blas->gemm(0, 0, B, n_out, n_in, 1, x, ldx, W, n_out, 1, out, n_out); /* out += x W */
    return CRNN_OK;
}
