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
int crnn_lengths_ok(const int *lengths, int T, int B)
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
    return crnn_lengths_ok(lengths, d->T, d->B) ? CRNN_OK : CRNN_ERR_LENGTHS;
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
    return crnn_lengths_ok(lengths, d->T, d->B) ? CRNN_OK : CRNN_ERR_LENGTHS;
}

/* ------------------------------------------------------------------ networks (net.c) */

int crnn_stack_layer_input(const crnn_stack *s, int l)
{
    return l == 0 ? s->n_in : s->D * s->hidden[l - 1];
}

int crnn_stack_output_size(const crnn_stack *s)
{
    return s->D * s->hidden[s->n_layers - 1];
}

/* Parameters of one direction of layer l: W_x (I, G*H), W_h (H, G*H), b (G*H), b_hn (H). */
static size_t layer_params_size(const crnn_stack *s, int l)
{
    const size_t G = (size_t)crnn_gates(s->cell), H = (size_t)s->hidden[l];
    const size_t I = (size_t)crnn_stack_layer_input(s, l);
    return I * G * H + H * G * H + G * H + (cell_desc_of(s->cell)->hn_block ? H : 0);
}

size_t crnn_stack_weights_offset(const crnn_stack *s, int l, int dir)
{
    size_t offset = 0;
    for (int i = 0; i < l; ++i)
        offset += (size_t)s->D * layer_params_size(s, i);
    return offset + (size_t)dir * layer_params_size(s, l);
}

size_t crnn_stack_params_size(const crnn_stack *s)
{
    return crnn_stack_weights_offset(s, s->n_layers, 0);
}

static int stack_ok(const crnn_stack *s)
{
    if (crnn_gates(s->cell) == 0 || s->n_layers < 1 || s->n_layers > CRNN_MAX_LAYERS ||
        (s->D != 1 && s->D != 2) || s->n_in < 1 || s->hidden == NULL)
        return 0;
    for (int l = 0; l < s->n_layers; ++l)
        if (s->hidden[l] < 1 || 4LL * s->D * s->hidden[l] > INT_MAX)
            return 0;
    return 1;
}

int crnn_check_net(const crnn_net *net)
{
    if (net == NULL)
        return CRNN_ERR_NULL;
    if (!stack_ok(&net->enc) || net->n_out < 1 || net->truncate < 0 ||
        (net->head != CRNN_HEAD_SOFTMAX && net->head != CRNN_HEAD_LINEAR))
        return CRNN_ERR_NET;
    switch (net->kind) {
    case CRNN_SEQ2VEC:
        if (net->readout < CRNN_READOUT_LAST || net->readout > CRNN_READOUT_ATTENTION ||
            (net->readout == CRNN_READOUT_ATTENTION && net->A < 1))
            return CRNN_ERR_NET;
        return CRNN_OK;
    case CRNN_SEQ2SEQ:
        return CRNN_OK;
    case CRNN_ENCDEC: {
        /* the decoder the encoder's states start: one-way, D*H_l units per layer */
        const crnn_stack *e = &net->enc, *d = &net->dec;
        if (!stack_ok(d) || d->cell != e->cell || d->D != 1 || d->n_layers != e->n_layers ||
            d->n_in != net->n_out + 1)
            return CRNN_ERR_NET;
        for (int l = 0; l < e->n_layers; ++l)
            if (d->hidden[l] != e->D * e->hidden[l])
                return CRNN_ERR_NET;
        return CRNN_OK;
    }
    default:
        return CRNN_ERR_NET;
    }
}

size_t crnn_net_params_size(const crnn_net *net)
{
    if (crnn_check_net(net) != CRNN_OK)
        return 0;
    const size_t F = (size_t)crnn_stack_output_size(&net->enc), k = (size_t)net->n_out;
    size_t n = crnn_stack_params_size(&net->enc) + F * k + k;
    if (net->kind == CRNN_ENCDEC)
        n += crnn_stack_params_size(&net->dec);
    if (net->kind == CRNN_SEQ2VEC && net->readout == CRNN_READOUT_ATTENTION)
        n += (F + 2) * (size_t)net->A;
    return n;
}

size_t crnn_net_positions(const crnn_net *net, int T, int T_out, int B)
{
    switch (net->kind) {
    case CRNN_SEQ2VEC:
        return (size_t)B;
    case CRNN_ENCDEC:
        return (size_t)T_out * B;
    default:
        return (size_t)T * B;
    }
}
