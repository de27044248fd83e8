/*
 * optim.c -- the optimizers' update rules, one pass over a flat parameter array each
 * (template body: included by dtype_f32.c and dtype_f64.c with `real` and FN() bound).
 *
 * The estimators keep every parameter in one array, so a training step updates it with one
 * call. The same rules as NumPy statements (scikit-learn's _stochastic_optimizers.py) make
 * 5-12 passes over the arrays with a temporary: ~100 us a step for 19k parameters, 10-20% of
 * a small model's step.
 */

/* Adam: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr_t m / (sqrt(v) + eps), where
 * lr_t carries the bias correction (the caller's step size). */
CPU_DISPATCH int FN(crnn_adam_update)(size_t n, real *params, const real *grad, real *m,
                                      real *v, real lr_t, real beta_1, real beta_2, real eps)
{
    if (n > 0 && (params == NULL || grad == NULL || m == NULL || v == NULL))
        return CRNN_ERR_NULL;
    const real a1 = 1 - beta_1, a2 = 1 - beta_2;
    for (size_t i = 0; i < n; ++i) {
        const real g = grad[i];
        const real mi = beta_1 * m[i] + a1 * g;
        const real vi = beta_2 * v[i] + a2 * (g * g);
        m[i] = mi;
        v[i] = vi;
        params[i] -= lr_t * (mi / (SQRT(vi) + eps));
    }
    return CRNN_OK;
}

/* SGD with momentum: u = momentum u - lr g, then p += u (classical) or
 * p += momentum u - lr g (Nesterov). */
CPU_DISPATCH int FN(crnn_sgd_update)(size_t n, real *params, const real *grad, real *velocity,
                                     real lr, real momentum, int nesterov)
{
    if (n > 0 && (params == NULL || grad == NULL || velocity == NULL))
        return CRNN_ERR_NULL;
    for (size_t i = 0; i < n; ++i) {
        const real step = lr * grad[i];
        const real u = momentum * velocity[i] - step;
        velocity[i] = u;
        params[i] += nesterov ? momentum * u - step : u;
    }
    return CRNN_OK;
}

/* Sum of squares, accumulated in double: float32 gradients whose squares overflow float
 * still get their true norm. NaN or infinity in x make it NaN or infinity. */
int FN(crnn_sum_squares)(size_t n, const real *x, double *out)
{
    if (out == NULL || (n > 0 && x == NULL))
        return CRNN_ERR_NULL;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* four chains: the adds need not wait in line */
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)x[i] * x[i];
        s1 += (double)x[i + 1] * x[i + 1];
        s2 += (double)x[i + 2] * x[i + 2];
        s3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < n; ++i)
        s0 += (double)x[i] * x[i];
    *out = (s0 + s1) + (s2 + s3);
    return CRNN_OK;
}

/* The rest of a training step after the gradient (crnn.h): L2, clipping, the finiteness
 * check, the update. In the order and the precision of the NumPy statements it replaces
 * (crnn._training, crnn._optim.clip_by_global_norm). */
int FN(crnn_train_update)(size_t n, real *params, real *grad, const real *decay,
                          double clip_norm, const crnn_optimizer *opt, real *m, real *v,
                          double *loss, double *norm, int *updated)
{
    if (opt == NULL || loss == NULL || norm == NULL || updated == NULL ||
        (n > 0 && (params == NULL || grad == NULL || m == NULL ||
                   (opt->solver == CRNN_ADAM && v == NULL))))
        return CRNN_ERR_NULL;
    if (opt->solver != CRNN_ADAM && opt->solver != CRNN_SGD)
        return CRNN_ERR_NET;
    *updated = 0;
    if (decay != NULL && isfinite(*loss)) {
        double penalty = 0;
        for (size_t i = 0; i < n; ++i) {
            const real p = decay[i] * params[i];
            grad[i] += p;
            penalty += (double)p * params[i];
        }
        *loss += 0.5 * penalty;
    }
    double squares;
    FN(crnn_sum_squares)(n, grad, &squares);
    *norm = sqrt(squares);
    if (clip_norm > 0 && *norm > clip_norm) {
        const real scale = (real)(clip_norm / *norm);
        for (size_t i = 0; i < n; ++i)
            grad[i] *= scale;
    }
    if (!(isfinite(*loss) && isfinite(*norm)))
        return CRNN_OK;
    if (opt->solver == CRNN_ADAM)
        FN(crnn_adam_update)(n, params, grad, m, v, (real)opt->lr, (real)opt->beta_1,
                             (real)opt->beta_2, (real)opt->eps);
    else
        FN(crnn_sgd_update)(n, params, grad, m, (real)opt->lr, (real)opt->momentum,
                            opt->nesterov);
    *updated = 1;
    return CRNN_OK;
}
