/*
 * net.c -- a whole network over one training minibatch, and the encoder-decoder's
 * autoregressive decoding (template body: compiled through dtype.h after layer.c, readout.c
 * and head.c). include/crnn/crnn.h (crnn_net) describes the networks and the flat parameters.
 *
 * crnn_net_grad reads as the algorithm:
 *     encoder forward (each layer, each direction: crnn_forward)
 *       -> features: readout (SEQ2VEC), every step (SEQ2SEQ), or the decoder's steps
 *          (ENCDEC: the encoder's final states bridged into the decoder's initial states)
 *       -> head: outputs = features W_out + b_out, the loss and d(outputs)
 *       -> backward through the head, the readout or the decoder, then the encoder
 * Every buffer is carved from the caller's arena (carve_*), the same code sizing the arena
 * when it has no base, so sizes and layout cannot drift apart.
 */

/* A bump allocator over the arena: with base NULL it only counts. Blocks start on 64-byte
 * boundaries (16 floats, 8 doubles) so that no two buffers share a cache line. */
typedef struct {
    real *base;
    size_t used;
} FN(arena);

static real *FN(take)(FN(arena) *a, size_t n)
{
    const size_t align = 64 / sizeof(real);
    real *p = a->base != NULL ? a->base + a->used : NULL;
    a->used += (n + align - 1) / align * align;
    return p;
}

/* One stack's buffers for one call: per layer its outputs, final states, one reserve per
 * direction and (between-layer dropout) the masked outputs the next layer reads; for the
 * backward pass the gradients of the final states (dhn, dcn) and, for a decoder, its
 * initial states and their gradients (h0, c0, dh0, dc0: the bridge to the encoder). */
typedef struct {
    real *y[CRNN_MAX_LAYERS], *hn[CRNN_MAX_LAYERS], *cn[CRNN_MAX_LAYERS];
    real *reserve[CRNN_MAX_LAYERS][2], *dropped[CRNN_MAX_LAYERS];
    real *dhn[CRNN_MAX_LAYERS], *dcn[CRNN_MAX_LAYERS];
    real *h0[CRNN_MAX_LAYERS], *c0[CRNN_MAX_LAYERS], *dh0[CRNN_MAX_LAYERS], *dc0[CRNN_MAX_LAYERS];
} FN(stack_bufs);

/* The dims of layer l, direction dir of a stack over T steps of B sequences. */
static crnn_dims FN(layer_dims)(const crnn_stack *s, int l, int dir, int T, int B, int masked)
{
    const int H = s->hidden[l];
    crnn_dims d = {.cell = s->cell, .T = T, .B = B, .n_in = crnn_stack_layer_input(s, l),
                   .H = H, .reverse = dir, .masked = masked};
    d.ldx = d.n_in;
    d.ldy = s->D * H;
    return d;
}

/* Carve one stack's buffers (flags: what this call uses), and grow the shared sizes: the
 * workspace and the ping-pong gradient buffers (the input gradient of a layer above the
 * first). */
static void FN(carve_stack)(FN(arena) *a, const crnn_stack *s, int T, int B, int masked,
                            int dropped, int bridged, FN(stack_bufs) *out, size_t *workspace,
                            size_t *d_in)
{
    const int is_lstm = cell_desc_of(s->cell)->has_c;
    for (int l = 0; l < s->n_layers; ++l) {
        const size_t H = (size_t)s->hidden[l], DBH = (size_t)s->D * B * H;
        out->y[l] = FN(take)(a, (size_t)T * DBH);
        out->hn[l] = FN(take)(a, DBH);
        out->dhn[l] = FN(take)(a, DBH);
        out->cn[l] = out->dcn[l] = NULL;
        if (is_lstm) {
            out->cn[l] = FN(take)(a, DBH);
            out->dcn[l] = FN(take)(a, DBH);
        }
        for (int dir = 0; dir < s->D; ++dir) {
            crnn_dims d = FN(layer_dims)(s, l, dir, T, B, masked);
            out->reserve[l][dir] = FN(take)(a, crnn_reserve_size(&d));
            size_t w = crnn_workspace_size(&d);
            *workspace = w > *workspace ? w : *workspace;
        }
        out->dropped[l] = dropped && l + 1 < s->n_layers ? FN(take)(a, (size_t)T * DBH) : NULL;
        if (l > 0) {
            size_t n = (size_t)T * B * crnn_stack_layer_input(s, l);
            *d_in = n > *d_in ? n : *d_in;
        }
        out->h0[l] = out->c0[l] = out->dh0[l] = out->dc0[l] = NULL;
        if (bridged) {
            out->h0[l] = FN(take)(a, DBH);
            out->dh0[l] = FN(take)(a, DBH);
            if (is_lstm) {
                out->c0[l] = FN(take)(a, DBH);
                out->dc0[l] = FN(take)(a, DBH);
            }
        }
    }
}

/* Every buffer of a crnn_net_grad call. */
typedef struct {
    FN(stack_bufs) enc, dec;
    real *x_in;       /* the encoder's input, standardized and times the input dropout mask */
    real *features;   /* SEQ2VEC (B, F): the readout */
    real *dfeatures;  /* SEQ2VEC (B, F) */
    real *outputs;    /* (P, n_out): the head's outputs, then their gradient */
    real *d_top;      /* (P, F) the gradient of the last layer's outputs (SEQ2VEC: (T, B, F)) */
    real *readout_reserve;
    real *d_in[2];    /* ping-pong input gradients of the layers above the first */
    real *workspace;
} FN(net_bufs);

static size_t FN(carve_net)(FN(arena) *a, const crnn_net *net, int T, int T_out, int B,
                            int masked, int dropped, int input_masked, FN(net_bufs) *out)
{
    const int F = crnn_stack_output_size(&net->enc);
    const int encdec = net->kind == CRNN_ENCDEC;
    size_t workspace = 0, d_in = 0;
    const size_t P = crnn_net_positions(net, T, T_out, B);
    FN(carve_stack)(a, &net->enc, T, B, masked, dropped, 0, &out->enc, &workspace, &d_in);
    if (encdec)
        FN(carve_stack)(a, &net->dec, T_out, B, masked, dropped, 1, &out->dec, &workspace,
                        &d_in);
    out->x_in = input_masked ? FN(take)(a, (size_t)T * B * net->enc.n_in) : NULL;
    out->features = out->dfeatures = out->readout_reserve = NULL;
    if (net->kind == CRNN_SEQ2VEC) {
        out->features = FN(take)(a, (size_t)B * F);
        out->dfeatures = FN(take)(a, (size_t)B * F);
        crnn_readout_dims rd = {net->readout, T, B, net->enc.D,
                                net->enc.hidden[net->enc.n_layers - 1], net->A};
        out->readout_reserve = FN(take)(a, crnn_readout_reserve_size(&rd));
    }
    out->outputs = FN(take)(a, P * net->n_out);
    out->d_top = FN(take)(a, (net->kind == CRNN_SEQ2VEC ? (size_t)T * B : P) * F);
    out->d_in[0] = FN(take)(a, d_in);
    out->d_in[1] = FN(take)(a, d_in);
    out->workspace = FN(take)(a, workspace);
    return a->used;
}

size_t FN(crnn_net_arena_size)(const crnn_net *net, int T, int T_out, int B)
{
    if (crnn_check_net(net) != CRNN_OK || T < 1 || B < 1 ||
        (net->kind == CRNN_ENCDEC && T_out < 1))
        return 0;
    FN(arena) a = {NULL, 0};
    FN(net_bufs) bufs;
    return FN(carve_net)(&a, net, T, T_out, B, 1, 1, 1, &bufs);
}

/* The tensors of layer l, direction dir: its weights in params, its input and buffers. */
static LAYER FN(bind_layer)(const crnn_stack *s, int l, int dir, const real *params, int B,
                            const int *lengths, const real *x, const real *h0, const real *c0,
                            const real *mask, const FN(stack_bufs) *bufs)
{
    const size_t H = (size_t)s->hidden[l], BH = (size_t)B * H;
    const real *w = params + crnn_stack_weights_offset(s, l, dir);
    const int G = crnn_gates(s->cell), I = crnn_stack_layer_input(s, l);
    LAYER L = {.x = x, .lengths = lengths};
    L.W_x = w;
    L.W_h = w + (size_t)I * G * H;
    L.b = L.W_h + H * G * H;
    L.b_hn = cell_desc_of(s->cell)->hn_block ? L.b + G * H : NULL;
    L.h0 = h0 != NULL ? h0 + dir * BH : NULL;
    L.c0 = c0 != NULL ? c0 + dir * BH : NULL;
    L.mask = mask != NULL ? mask + dir * BH : NULL;
    L.y = bufs->y[l] + dir * H;
    L.hn = bufs->hn[l] + dir * BH;
    L.cn = bufs->cn[l] != NULL ? bufs->cn[l] + dir * BH : NULL;
    L.reserve = bufs->reserve[l][dir];
    return L;
}

/* The dropout masks of one stack, per layer (NULL where off). */
typedef struct {
    const real *rec[CRNN_MAX_LAYERS], *drop[CRNN_MAX_LAYERS];
} FN(stack_masks);

/* Point at each layer's masks in the batch's back-to-back mask arrays, past those of the
 * stacks before (rec, drop advance). */
static void FN(stack_masks_of)(const crnn_stack *s, int T, int B, const real **rec,
                               const real **drop, FN(stack_masks) *out)
{
    for (int l = 0; l < s->n_layers; ++l) {
        const size_t DBH = (size_t)s->D * B * s->hidden[l];
        out->rec[l] = *rec;
        if (*rec != NULL)
            *rec += DBH;
        out->drop[l] = NULL;
        if (*drop != NULL && l + 1 < s->n_layers) {
            out->drop[l] = *drop;
            *drop += (size_t)T * DBH;
        }
    }
}

/* out = a * m elementwise (out may be a). */
static void FN(multiply)(size_t n, real *out, const real *a, const real *restrict m)
{
    for (size_t i = 0; i < n; ++i)
        out[i] = a[i] * m[i];
}

/* Forward through a stack over T steps; its input x (T, B, n_in), initial states h0, c0
 * (per layer, or NULL for zeros). */
static int FN(stack_forward)(const BLAS_TABLE *blas, const crnn_stack *s, const real *params,
                             int T, int B, const int *lengths, const real *x,
                             const FN(stack_masks) *masks, FN(stack_bufs) *bufs,
                             real *workspace)
{
    const real *input = x;
    for (int l = 0; l < s->n_layers; ++l) {
        const size_t F = (size_t)s->D * s->hidden[l];
        /* The kernels write the steps of each sequence and leave its padding: zero it. */
        if (lengths[B - 1] < T)
            memset(bufs->y[l] + (size_t)lengths[B - 1] * B * F, 0,
                   (size_t)(T - lengths[B - 1]) * B * F * sizeof(real));
        for (int dir = 0; dir < s->D; ++dir) {
            crnn_dims d = FN(layer_dims)(s, l, dir, T, B, masks->rec[l] != NULL);
            LAYER L = FN(bind_layer)(s, l, dir, params, B, lengths, input, bufs->h0[l],
                                     bufs->c0[l], masks->rec[l], bufs);
            int status = FN(crnn_forward)(blas, &d, &L, workspace);
            if (status != CRNN_OK)
                return status;
        }
        input = bufs->y[l];
        if (masks->drop[l] != NULL) {
            FN(multiply)((size_t)T * B * F, bufs->dropped[l], input, masks->drop[l]);
            input = bufs->dropped[l];
        }
    }
    return CRNN_OK;
}

/* Backward through a stack: d_top the gradient of the last layer's outputs (or NULL),
 * bufs->dhn, dcn those of every layer's final states (with_dhn; else none), into grad (the
 * stack's part) and, for a decoder, bufs->dh0, dc0. The first layer's input gets none. */
static int FN(stack_backward)(const BLAS_TABLE *blas, const crnn_stack *s, const real *params,
                              real *grad, int T, int B, const int *lengths, const real *x,
                              const FN(stack_masks) *masks, const real *d_top, int with_dhn,
                              int truncate, FN(stack_bufs) *bufs, real *const d_in_bufs[2],
                              real *workspace)
{
    const real *d_out = d_top;
    const int G = crnn_gates(s->cell);
    for (int l = s->n_layers - 1; l >= 0; --l) {
        const int I = crnn_stack_layer_input(s, l);
        const size_t H = (size_t)s->hidden[l], BH = (size_t)B * H;
        const real *input = l == 0 ? x : (masks->drop[l - 1] ? bufs->dropped[l - 1]
                                                             : bufs->y[l - 1]);
        real *d_in = NULL;
        if (l > 0) {
            d_in = d_in_bufs[(s->n_layers - 1 - l) % 2];
            memset(d_in, 0, (size_t)T * B * I * sizeof(real));
        }
        for (int dir = 0; dir < s->D; ++dir) {
            crnn_dims d = FN(layer_dims)(s, l, dir, T, B, masks->rec[l] != NULL);
            LAYER L = FN(bind_layer)(s, l, dir, params, B, lengths, input, bufs->h0[l],
                                     bufs->c0[l], masks->rec[l], bufs);
            real *g = grad + crnn_stack_weights_offset(s, l, dir);
            GRADS dL = {.dy = d_out != NULL ? d_out + dir * H : NULL, .dx = d_in};
            dL.dhn = with_dhn ? bufs->dhn[l] + dir * BH : NULL;
            dL.dcn = with_dhn && bufs->dcn[l] != NULL ? bufs->dcn[l] + dir * BH : NULL;
            dL.dh0 = bufs->dh0[l] != NULL ? bufs->dh0[l] + dir * BH : NULL;
            dL.dc0 = bufs->dc0[l] != NULL ? bufs->dc0[l] + dir * BH : NULL;
            dL.dW_x = g;
            dL.dW_h = g + (size_t)I * G * H;
            dL.db = dL.dW_h + H * G * H;
            dL.db_hn = L.b_hn != NULL ? dL.db + G * H : NULL;
            int status = FN(crnn_backward)(blas, &d, &L, &dL, truncate, workspace);
            if (status != CRNN_OK)
                return status;
        }
        if (l > 0 && masks->drop[l - 1] != NULL)
            FN(multiply)((size_t)T * B * I, d_in, d_in, masks->drop[l - 1]);
        d_out = d_in;
    }
    return CRNN_OK;
}

/* States (D, B, H) as rows (B, D*H), the directions side by side (to_rows), or back: the
 * last layer's final states as SEQ2VEC's LAST features, the encoder's final states as the
 * decoder's initial states (row j from sequence order[j]; NULL: j), and their gradients the
 * other way. */
static void FN(side_by_side)(int D, int B, int H, real *states, real *rows, const int *order,
                             int to_rows)
{
    for (int dir = 0; dir < D; ++dir)
        for (int bb = 0; bb < B; ++bb) {
            real *s = states + ((size_t)dir * B + (order != NULL ? order[bb] : bb)) * H;
            real *r = rows + ((size_t)bb * D + dir) * H;
            if (to_rows)
                memcpy(r, s, (size_t)H * sizeof(real));
            else
                memcpy(s, r, (size_t)H * sizeof(real));
        }
}

/* The encoder's input: (x - mean) / scale (if scaled) times the input dropout mask (if any)
 * at every real step, zero at padding. */
static void FN(encoder_input)(const BATCH *batch, int I, real *out)
{
    const int T = batch->T, B = batch->B;
    const real *mean = batch->input_mean, *scale = batch->input_scale, *mask = batch->input_mask;
    for (int t = 0; t < T; ++t)
        for (int bb = 0; bb < B; ++bb) {
            const size_t row = ((size_t)t * B + bb) * I;
            real *o = out + row;
            const real *x = batch->x + row;
            if (t >= batch->lengths[bb]) {
                memset(o, 0, (size_t)I * sizeof(real));
                continue;
            }
            for (int i = 0; i < I; ++i) {
                real v = x[i];
                if (mean != NULL)
                    v = (v - mean[i]) / scale[i];
                o[i] = mask != NULL ? v * mask[(size_t)bb * I + i] : v;
            }
        }
}

/* Whether order holds each of 0 .. B-1 once (scratch: B reals, as flags). */
static int FN(is_permutation)(const int *order, int B, real *scratch)
{
    memset(scratch, 0, (size_t)B * sizeof(real));
    for (int j = 0; j < B; ++j) {
        if (order[j] < 0 || order[j] >= B || scratch[order[j]] != 0)
            return 0;
        scratch[order[j]] = 1;
    }
    return 1;
}

int FN(crnn_net_grad)(const BLAS_TABLE *blas, const crnn_net *net, const BATCH *batch,
                      const real *params, real *grad, real *arena, size_t arena_size,
                      double *loss)
{
    int status = crnn_check_net(net);
    if (status != CRNN_OK)
        return status;
    if (blas == NULL || batch == NULL || params == NULL || grad == NULL || arena == NULL ||
        loss == NULL || batch->x == NULL || batch->lengths == NULL || batch->weights == NULL ||
        (net->head == CRNN_HEAD_SOFTMAX ? batch->codes == NULL : batch->targets == NULL) ||
        (net->kind == CRNN_ENCDEC && (batch->dec_x == NULL || batch->dec_lengths == NULL)) ||
        ((batch->input_mean == NULL) != (batch->input_scale == NULL)))
        return CRNN_ERR_NULL;
    const int T = batch->T, B = batch->B, encdec = net->kind == CRNN_ENCDEC;
    const int T_out = encdec ? batch->T_out : 0;
    if (T < 1 || B < 1 || (encdec && T_out < 1) || !(batch->batch_weight > 0))
        return CRNN_ERR_DIMS;
    if (!crnn_lengths_ok(batch->lengths, T, B) ||
        (encdec && !crnn_lengths_ok(batch->dec_lengths, T_out, B)))
        return CRNN_ERR_LENGTHS;
    FN(arena) a = {arena, 0};
    FN(net_bufs) bufs;
    if (FN(carve_net)(&a, net, T, T_out, B, batch->rec_mask != NULL, batch->drop_mask != NULL,
                      batch->input_mask != NULL || batch->input_mean != NULL,
                      &bufs) > arena_size)
        return CRNN_ERR_NET;
    const int *order = encdec ? batch->dec_order : NULL;
    if (order != NULL && !FN(is_permutation)(order, B, arena))
        return CRNN_ERR_LENGTHS;

    const crnn_stack *enc = &net->enc, *dec = &net->dec;
    const int F = crnn_stack_output_size(enc), k = net->n_out;
    const int H_last = enc->hidden[enc->n_layers - 1];
    const real *rec = batch->rec_mask, *drop = batch->drop_mask;
    FN(stack_masks) enc_masks, dec_masks;
    FN(stack_masks_of)(enc, T, B, &rec, &drop, &enc_masks);
    if (encdec)
        FN(stack_masks_of)(dec, T_out, B, &rec, &drop, &dec_masks);
    const size_t n_params = crnn_net_params_size(net);
    const size_t dec_offset = crnn_stack_params_size(enc);
    const size_t readout_offset = dec_offset + (encdec ? crnn_stack_params_size(dec) : 0);
    const size_t head_offset = n_params - (size_t)F * k - k;
    const real *W = params + head_offset, *b = W + (size_t)F * k;
    memset(grad, 0, n_params * sizeof(real));

    /* Forward: the encoder, then what feeds the head. */
    const real *x = batch->x;
    if (batch->input_mask != NULL || batch->input_mean != NULL) {
        FN(encoder_input)(batch, enc->n_in, bufs.x_in);
        x = bufs.x_in;
    }
    status = FN(stack_forward)(blas, enc, params, T, B, batch->lengths, x, &enc_masks,
                               &bufs.enc, bufs.workspace);
    if (status != CRNN_OK)
        return status;
    const real *Y = bufs.enc.y[enc->n_layers - 1];
    crnn_readout_dims rd = {net->readout, T, B, enc->D, H_last, net->A};
    const real *features = Y;
    int P = T * B;
    if (net->kind == CRNN_SEQ2VEC) {
        P = B;
        features = bufs.features;
        if (net->readout == CRNN_READOUT_LAST)
            FN(side_by_side)(enc->D, B, H_last, bufs.enc.hn[enc->n_layers - 1],
                              bufs.features, NULL, 1);
        else if ((status = FN(crnn_readout_forward)(blas, &rd, Y, batch->lengths,
                                                   params + readout_offset, bufs.features,
                                                   bufs.readout_reserve)) != CRNN_OK)
            return status;
    } else if (encdec) {
        P = T_out * B;
        for (int l = 0; l < enc->n_layers; ++l) {
            FN(side_by_side)(enc->D, B, enc->hidden[l], bufs.enc.hn[l], bufs.dec.h0[l], order, 1);
            if (bufs.dec.c0[l] != NULL)
                FN(side_by_side)(enc->D, B, enc->hidden[l], bufs.enc.cn[l], bufs.dec.c0[l], order,
                                 1);
        }
        status = FN(stack_forward)(blas, dec, params + dec_offset, T_out, B, batch->dec_lengths,
                                   batch->dec_x, &dec_masks, &bufs.dec, bufs.workspace);
        if (status != CRNN_OK)
            return status;
        features = bufs.dec.y[dec->n_layers - 1];
    }

    /* The head and its loss; outputs become their gradient. */
    if ((status = FN(crnn_dense)(blas, P, F, k, features, F, W, b, bufs.outputs)) != CRNN_OK)
        return status;
    status = net->head == CRNN_HEAD_SOFTMAX
                 ? FN(softmax_cross_entropy)(P, k, bufs.outputs, batch->codes, batch->weights,
                                            batch->batch_weight, loss)
                 : FN(squared_error)(P, k, bufs.outputs, batch->targets, batch->weights,
                                    batch->batch_weight, loss);
    if (status != CRNN_OK || !isfinite(*loss))
        return status;
    real *d_features = net->kind == CRNN_SEQ2VEC ? bufs.dfeatures : bufs.d_top;
    FN(dense_backward)(blas, P, F, k, features, bufs.outputs, W, grad + head_offset,
                       grad + head_offset + (size_t)F * k, d_features);

    /* Backward: the readout or the decoder, then the encoder. */
    const real *d_top = NULL;
    int with_dhn = 0;
    if (net->kind == CRNN_SEQ2SEQ) {
        d_top = bufs.d_top;
    } else if (net->kind == CRNN_SEQ2VEC && net->readout == CRNN_READOUT_LAST) {
        for (int l = 0; l + 1 < enc->n_layers; ++l) {
            const size_t DBH = (size_t)enc->D * B * enc->hidden[l];
            memset(bufs.enc.dhn[l], 0, DBH * sizeof(real));
            if (bufs.enc.dcn[l] != NULL)
                memset(bufs.enc.dcn[l], 0, DBH * sizeof(real));
        }
        const int l = enc->n_layers - 1;
        FN(side_by_side)(enc->D, B, H_last, bufs.enc.dhn[l], bufs.dfeatures, NULL, 0);
        if (bufs.enc.dcn[l] != NULL)
            memset(bufs.enc.dcn[l], 0, (size_t)enc->D * B * H_last * sizeof(real));
        with_dhn = 1;
    } else if (net->kind == CRNN_SEQ2VEC) {
        memset(bufs.d_top, 0, (size_t)T * B * F * sizeof(real));
        status = FN(crnn_readout_backward)(blas, &rd, Y, batch->lengths,
                                           params + readout_offset, bufs.readout_reserve,
                                           bufs.dfeatures, bufs.d_top, grad + readout_offset);
        if (status != CRNN_OK)
            return status;
        d_top = bufs.d_top;
    } else { /* ENCDEC: the decoder, whose initial states' gradients reach the encoder */
        for (int l = 0; l < dec->n_layers; ++l) {
            const size_t BH = (size_t)B * dec->hidden[l];
            memset(bufs.dec.dh0[l], 0, BH * sizeof(real));
            if (bufs.dec.dc0[l] != NULL)
                memset(bufs.dec.dc0[l], 0, BH * sizeof(real));
        }
        status = FN(stack_backward)(blas, dec, params + dec_offset, grad + dec_offset, T_out, B,
                                    batch->dec_lengths, batch->dec_x, &dec_masks, bufs.d_top, 0,
                                    net->truncate, &bufs.dec, bufs.d_in, bufs.workspace);
        if (status != CRNN_OK)
            return status;
        for (int l = 0; l < enc->n_layers; ++l) {
            FN(side_by_side)(enc->D, B, enc->hidden[l], bufs.enc.dhn[l], bufs.dec.dh0[l], order,
                             0);
            if (bufs.enc.dcn[l] != NULL)
                FN(side_by_side)(enc->D, B, enc->hidden[l], bufs.enc.dcn[l], bufs.dec.dc0[l], order,
                                 0);
        }
        with_dhn = 1;
    }
    return FN(stack_backward)(blas, enc, params, grad, T, B, batch->lengths, x, &enc_masks,
                              d_top, with_dhn, net->truncate, &bufs.enc, bufs.d_in,
                              bufs.workspace);
}

/* ------------------------------------------------------------------ autoregressive decoding */

typedef struct {
    real *y[CRNN_MAX_LAYERS], *reserve[CRNN_MAX_LAYERS];
    real *input;    /* (B, n_out + 1): one step's input */
    int *lengths;   /* (B): ones */
    real *workspace;
} FN(decode_bufs);

static size_t FN(carve_decode)(FN(arena) *a, const crnn_net *net, int B, FN(decode_bufs) *out)
{
    const crnn_stack *s = &net->dec;
    size_t workspace = 0;
    for (int l = 0; l < s->n_layers; ++l) {
        crnn_dims d = FN(layer_dims)(s, l, 0, 1, B, 0);
        out->y[l] = FN(take)(a, (size_t)B * s->hidden[l]);
        out->reserve[l] = FN(take)(a, crnn_reserve_size(&d));
        size_t w = crnn_workspace_size(&d);
        workspace = w > workspace ? w : workspace;
    }
    out->input = FN(take)(a, (size_t)B * s->n_in);
    out->lengths = (int *)FN(take)(a, (size_t)B);
    out->workspace = FN(take)(a, workspace);
    return a->used;
}

/* The index of the largest of n values (the first, on ties: NumPy's argmax). */
static int FN(argmax)(int n, const real *v)
{
    int best = 0;
    for (int j = 1; j < n; ++j)
        if (v[j] > v[best])
            best = j;
    return best;
}

int FN(crnn_net_decode)(const BLAS_TABLE *blas, const crnn_net *net, const real *params, int B,
                        int steps, real *h0, real *c0, real *out, real *arena,
                        size_t arena_size)
{
    int status = crnn_check_net(net);
    if (status != CRNN_OK)
        return status;
    if (net->kind != CRNN_ENCDEC)
        return CRNN_ERR_NET;
    const crnn_stack *s = &net->dec;
    const int is_lstm = cell_desc_of(s->cell)->has_c, k = net->n_out;
    if (blas == NULL || params == NULL || h0 == NULL || (is_lstm && c0 == NULL) ||
        out == NULL || arena == NULL)
        return CRNN_ERR_NULL;
    if (B < 1 || steps < 1)
        return CRNN_ERR_DIMS;
    FN(arena) a = {arena, 0};
    FN(decode_bufs) bufs;
    if (FN(carve_decode)(&a, net, B, &bufs) > arena_size)
        return CRNN_ERR_NET;
    const size_t n_params = crnn_net_params_size(net);
    const int F = s->hidden[s->n_layers - 1];
    const real *dec = params + crnn_stack_params_size(&net->enc);
    const real *W = params + n_params - (size_t)F * k - k, *b = W + (size_t)F * k;
    for (int bb = 0; bb < B; ++bb)
        bufs.lengths[bb] = 1;
    memset(bufs.input, 0, (size_t)B * (k + 1) * sizeof(real));
    for (int bb = 0; bb < B; ++bb)
        bufs.input[(size_t)bb * (k + 1) + k] = 1; /* the start flag */
    for (int t = 0; t < steps; ++t) {
        const real *input = bufs.input;
        size_t state = 0; /* this layer's states in h0, c0 (read and overwritten in place) */
        for (int l = 0; l < s->n_layers; ++l) {
            crnn_dims d = FN(layer_dims)(s, l, 0, 1, B, 0);
            const real *w = dec + crnn_stack_weights_offset(s, l, 0);
            const int G = crnn_gates(s->cell), H = s->hidden[l];
            LAYER L = {.x = input, .lengths = bufs.lengths, .W_x = w};
            L.W_h = w + (size_t)d.n_in * G * H;
            L.b = L.W_h + (size_t)H * G * H;
            L.b_hn = cell_desc_of(s->cell)->hn_block ? L.b + G * H : NULL;
            L.h0 = L.hn = h0 + state;
            L.c0 = L.cn = is_lstm ? c0 + state : NULL;
            L.y = bufs.y[l];
            L.reserve = bufs.reserve[l];
            if ((status = FN(crnn_forward)(blas, &d, &L, bufs.workspace)) != CRNN_OK)
                return status;
            input = bufs.y[l];
            state += (size_t)B * H;
        }
        real *o = out + (size_t)t * B * k;
        if ((status = FN(crnn_dense)(blas, B, F, k, input, F, W, b, o)) != CRNN_OK)
            return status;
        for (int bb = 0; bb < B; ++bb) { /* the next step reads this step's outputs */
            real *next = bufs.input + (size_t)bb * (k + 1);
            const real *row = o + (size_t)bb * k;
            if (net->head == CRNN_HEAD_SOFTMAX) {
                memset(next, 0, (size_t)k * sizeof(real));
                next[FN(argmax)(k, row)] = 1;
            } else {
                memcpy(next, row, (size_t)k * sizeof(real));
            }
            next[k] = 0;
        }
    }
    return CRNN_OK;
}

size_t FN(crnn_net_decode_arena_size)(const crnn_net *net, int B)
{
    if (crnn_check_net(net) != CRNN_OK || net->kind != CRNN_ENCDEC || B < 1)
        return 0;
    FN(arena) a = {NULL, 0};
    FN(decode_bufs) bufs;
    return FN(carve_decode)(&a, net, B, &bufs);
}
