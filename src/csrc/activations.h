/*
 * activations.h -- elementwise activations, written once against `real` and the FN() name
 * macro (dtype_f32.c / dtype_f64.c include this file once per dtype).
 */

/* Split on the sign so exp never overflows: for x < 0, exp(x) is in (0, 1]. */
static inline real FN(sigmoid)(real x)
{
    if (x >= 0)
        return 1 / (1 + EXP(-x));
    real e = EXP(x);
    return e / (1 + e);
}

/* Written so that NaN passes through instead of becoming 0. */
static inline real FN(relu)(real x)
{
    return x < 0 ? 0 : x;
}
