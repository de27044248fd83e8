/*
 * common.c -- dtype-independent parts of the C API: gate counts, buffer sizes, validation.
 */
#include <limits.h>

#include "internal.h"

int crnn_gates(int cell)
{
    const cell_desc *desc = cell_desc_of(cell);
    return desc != NULL ? desc->gates : 0;
}

/* Sizes are int because BLAS takes int. Every row count handed to a GEMM is at most T*B, and
 * every leading dimension at most max(ldx, ldy, 4H): keep those inside int. */
static int dims_ok(const crnn_dims *d)
{
    if (d == NULL || crnn_gates(d->cell) == 0)
        return 0;
    if (d->T < 1 || d->B < 1 || d->n_in < 1 || d->H < 1 || d->ldx < d->n_in || d->ldy < d->H)
        return 0;
    if (d->masked != 0 && d->masked != 1)
        return 0;
    if ((long long)d->T * d->B > INT_MAX || 4LL * d->H > INT_MAX)
        return 0;
    return 1;
}

size_t crnn_reserve_size(const crnn_dims *d)
{
    if (!dims_ok(d))
        return 0;
    size_t rows = (size_t)d->T * (size_t)d->B;
    const cell_desc *desc = cell_desc_of(d->cell);
    size_t width = (size_t)desc->row_blocks * d->H;
    if (desc->has_c)
        width += (size_t)d->H; /* the cell state of every step */
    if (d->masked)
        width += (size_t)d->H; /* the masked state each step multiplied with W_h */
    return rows * width;
}

size_t crnn_workspace_size(const crnn_dims *d)
{
    if (!dims_ok(d))
        return 0;
    /* One step's gate rows (B, G*H), the carried dh and dc (B, H) each, a zero row (H), the
     * transposed recurrent weights (G*H, H), one step's product in feature-major order
     * (G*H, B) and, with a mask, one step's masked state or its gradient (B, H) (layer.c). */
    size_t B = (size_t)d->B, H = (size_t)d->H, GH = (size_t)crnn_gates(d->cell) * H;
    return 2 * B * GH + 2 * B * H + H + GH * H + (d->masked ? B * H : 0);
}

/* Lengths in [1, T], sorted in decreasing order: the batch order the kernels take. */
static int lengths_ok(const int *lengths, int T, int B)
{
    if (lengths[0] > T || lengths[B - 1] < 1)
        return 0;
    for (int b = 1; b < B; ++b)
        if (lengths[b] > lengths[b - 1])
            return 0;
    return 1;
}

int crnn_check_call(const crnn_dims *d, const int *lengths, int truncate)
{
    if (d == NULL || lengths == NULL)
        return CRNN_ERR_NULL;
    if (crnn_gates(d->cell) == 0)
        return CRNN_ERR_CELL;
    if (!dims_ok(d))
        return CRNN_ERR_DIMS;
    if (truncate < 0)
        return CRNN_ERR_TRUNCATE;
    return lengths_ok(lengths, d->T, d->B) ? CRNN_OK : CRNN_ERR_LENGTHS;
}

static int readout_dims_ok(const crnn_readout_dims *d)
{
    if (d->T < 1 || d->B < 1 || d->H < 1 || (d->kind == CRNN_READOUT_ATTENTION && d->A < 1))
        return 0;
    /* row counts T*B and row widths F, A reach BLAS as ints */
    return (long long)d->T * d->B <= INT_MAX && (long long)d->D * d->H <= INT_MAX;
}

static int readout_kind_ok(const crnn_readout_dims *d)
{
    return d->kind >= CRNN_READOUT_LAST && d->kind <= CRNN_READOUT_ATTENTION &&
           (d->D == 1 || d->D == 2);
}

size_t crnn_readout_params_size(const crnn_readout_dims *d)
{
    if (d == NULL || !readout_kind_ok(d) || !readout_dims_ok(d) ||
        d->kind != CRNN_READOUT_ATTENTION)
        return 0;
    return ((size_t)d->D * d->H + 2) * (size_t)d->A;
}

size_t crnn_readout_reserve_size(const crnn_readout_dims *d)
{
    if (d == NULL || !readout_kind_ok(d) || !readout_dims_ok(d))
        return 0;
    if (d->kind == CRNN_READOUT_MAX)
        return (size_t)d->B * d->D * d->H;
    if (d->kind == CRNN_READOUT_ATTENTION) /* readout.c: u, a | out, scratch */
        return (size_t)d->T * d->B * ((size_t)d->A + 1) +
               (size_t)d->B * ((size_t)d->D * d->H + 1);
    return 0;
}

int crnn_check_readout(const crnn_readout_dims *d, const int *lengths)
{
    if (d == NULL || lengths == NULL)
        return CRNN_ERR_NULL;
    if (!readout_kind_ok(d))
        return CRNN_ERR_READOUT;
    if (!readout_dims_ok(d))
        return CRNN_ERR_DIMS;
    return lengths_ok(lengths, d->T, d->B) ? CRNN_OK : CRNN_ERR_LENGTHS;
}
