/*
 * head.c -- the output layer: a dense layer, out = x W + b, its losses and its backward pass
 * (template body: included by dtype_f32.c and dtype_f64.c with `real` and FN() bound).
 *
 * The estimators' output layer: run by a streamed step in the same call as the recurrent
 * layers (crnn_dense), and by a training minibatch in crnn_net_grad (net.c). Through NumPy,
 * its product, bias and loss cost more than a small layer's step.
 *
 * Losses are weighted sums over positions i with w_i = weights[i] / batch_weight (the weights
 * carry sample and class weights and the zero weight of padding), their gradient fused with
 * the loss; in the dtype of the outputs, the weights and the sum in double (as the NumPy
 * statements of crnn._loss, which they replace in training, compute them).
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

/* The gradients of out = x W + b, x (P, n_in) with row stride n_in, from dout (P, n_out):
 * dW = x^T dout, db = the column sums of dout, dx = dout W^T (all overwritten). */
static void FN(dense_backward)(const BLAS_TABLE *blas, int P, int n_in, int n_out,
                               const real *x, const real *dout, const real *W, real *dW,
                               real *db, real *dx)
{
    blas->gemm(1, 0, n_in, n_out, P, 1, x, n_in, dout, n_out, 0, dW, n_out);
    memset(db, 0, (size_t)n_out * sizeof(real));
    for (int i = 0; i < P; ++i)
        for (int j = 0; j < n_out; ++j)
            db[j] += dout[(size_t)i * n_out + j];
    blas->gemm(0, 1, P, n_in, n_out, 1, dout, n_out, W, n_out, 0, dx, n_in);
}

/* Softmax cross-entropy over logits (P, k), in place: *loss = sum_i w_i (log sum_j e^{z_ij}
 * - z_i,code_i) with z the logits minus their row maximum; the logits become the gradient
 * w_i (softmax_i - onehot(code_i)). A position of weight zero gets a zero gradient. */
static int FN(softmax_cross_entropy)(int P, int k, real *logits, const int *codes,
                                     const double *weights, double batch_weight, double *loss)
{
    double sum = 0;
    for (int i = 0; i < P; ++i) {
        real *z = logits + (size_t)i * k;
        const int code = codes[i];
        if (code < 0 || code >= k)
            return CRNN_ERR_TARGET;
        const double w = weights[i] / batch_weight;
        if (w == 0) {
            memset(z, 0, (size_t)k * sizeof(real));
            continue;
        }
        real top = z[0];
        for (int j = 1; j < k; ++j)
            top = z[j] > top ? z[j] : top;
        real total = 0;
        for (int j = 0; j < k; ++j) {
            z[j] -= top;
            total += EXP(z[j]);
        }
        sum += w * (double)(LOG(total) - z[code]);
        for (int j = 0; j < k; ++j)
            z[j] = EXP(z[j]) / total;
        z[code] -= 1;
        for (int j = 0; j < k; ++j)
            z[j] = (real)(z[j] * w);
    }
    *loss = sum;
    return CRNN_OK;
}

/* Half the squared error averaged over the k outputs, in place: *loss = sum_i w_i
 * sum_j (out_ij - y_ij)^2 / (2k); the outputs become the gradient w_i (out_i - y_i) / k. */
static int FN(squared_error)(int P, int k, real *outputs, const real *targets,
                             const double *weights, double batch_weight, double *loss)
{
    double sum = 0;
    for (int i = 0; i < P; ++i) {
        real *o = outputs + (size_t)i * k;
        const real *y = targets + (size_t)i * k;
        const double w = weights[i] / batch_weight;
        real squares = 0;
        for (int j = 0; j < k; ++j) {
            o[j] -= y[j];
            squares += o[j] * o[j];
        }
        sum += w * (double)squares;
        for (int j = 0; j < k; ++j)
            o[j] = (real)(o[j] * (w / k));
    }
    *loss = 0.5 * sum / k;
    return CRNN_OK;
}
