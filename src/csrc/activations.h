/*
 * activations.h -- elementwise activations, written once against `real` and the FN() name
 * macro (dtype_f32.c / dtype_f64.c include this file once per dtype, after defining
 * EXP_DEGREE, EXP_LO, LN2_HI, LN2_LO and FN(round_log2) for the type).
 *
 * libm's expf/tanhf are scalar calls (10-20 ns each) and dominate a small cell's step. These
 * are branch-free, call-free versions the compiler vectorizes inside the row loops, accurate
 * to a few ulp over the whole range (tests/test_activations compares them with libm):
 *   e^y = 2^n (1 + q(r)),  y = n ln2 + r,  |r| <= ln2/2,  q(r) = e^r - 1 by its Taylor series,
 * for y <= 0 only: the activations need e^-|x|, which cannot overflow. NaN inputs come out
 * as NaN. The code has no branches, calls or float-to-int conversions, which would keep the
 * compiler from vectorizing the loops that use it.
 */

/* 1/k!, the Taylor coefficients of e^r. */
static const real FN(inv_factorial)[14] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};

/* s = 2^n and q = e^r - 1 with e^y = s (1 + q), for EXP_LO <= y <= 0 or y NaN (then q is
 * NaN). */
static inline void FN(exp_parts)(real y, real *s, real *q)
{
    real n = FN(round_log2)(y, s);
    real r = (y - n * LN2_HI) - n * LN2_LO;
    real p = FN(inv_factorial)[EXP_DEGREE];
    for (int k = EXP_DEGREE - 1; k >= 1; --k)
        p = p * r + FN(inv_factorial)[k];
    *q = p * r;
}

/* 1 / (1 + e^-x), from e^-|x| so nothing overflows. */
static inline real FN(sigmoid)(real x)
{
    real y = x < 0 ? x : -x;
    y = y < EXP_LO ? EXP_LO : y; /* (NaN compares false and stays NaN) */
    real s, q;
    FN(exp_parts)(y, &s, &q);
    real e = s + s * q;
    return (x >= 0 ? (real)1 : e) / (1 + e);
}

/* tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)): no cancellation near 0. */
static inline real FN(tanh)(real x)
{
    real a = x < 0 ? -x : x;
    real y = -2 * a;
    y = y < EXP_LO ? EXP_LO : y;
    real s, q;
    FN(exp_parts)(y, &s, &q);
    real em = (s - 1) + s * q; /* expm1(y): exactly q when n = 0, so small y keep their bits */
    real t = -em / (2 + em);
    return x < 0 ? -t : t;
}

/* Written so that NaN passes through instead of becoming 0. */
static inline real FN(relu)(real x)
{
    return x < 0 ? 0 : x;
}
