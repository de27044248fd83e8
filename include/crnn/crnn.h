/*
 * crnn.h -- the public C API of crnn's recurrent kernels.
 *
 * One call runs one direction of one recurrent layer over a batch of sequences, forward or
 * backward (BPTT). Stacking and bidirectional layers are built by the caller from these calls:
 * outputs are written with a row stride (ldy) and a column offset, so the two directions of a
 * layer write straight into the halves of one (T, B, 2H) array that feeds the next layer.
 * crnn_net_grad and crnn_train_update (at the end) build a whole network's training minibatch
 * from them: the stacked layers, a readout or a decoder, the output layer and its loss, the
 * backward pass and the optimizer's update.
 *
 * Conventions
 *   - Row-major, time-major: x (T, B, I), y (T, B, ldy); weights W_x (I, G*H), W_h (H, G*H),
 *     bias b (G*H). G is the number of gate blocks, stored in this column order:
 *         RNN  (G=1): [a]            h' = act(a),  act = tanh or relu
 *         LSTM (G=4): [i, f, g, o]   c' = f*c + i*g,  h' = o*tanh(c')
 *         GRU  (G=3): [r, z, n]      n = tanh(x W_xn + b_n + r*(h W_hn + b_hn)),
 *                                    h' = (1-z)*n + z*h
 *     (the GRU applies the reset gate after the recurrent product, as PyTorch and Keras do;
 *      b_hn is its extra recurrent bias of length H).
 *   - Variable lengths: lengths[b] in [1, T], sorted non-increasing, so the sequences still
 *     running at step t are the prefix b < nb(t). No arithmetic is spent on padding; outputs past
 *     a sequence's end are not written (the caller zeroes y). A reverse direction processes
 *     sequence b from t = lengths[b]-1 down to 0.
 *   - The final state of sequence b is the state after its own last step.
 *   - Every buffer is the caller's: the C code never allocates, prints or exits. Sizes come from
 *     crnn_reserve_size (kept from forward to backward) and crnn_workspace_size (scratch).
 *   - Backward *accumulates* (+=) into dx, dh0, dc0 and the weight gradients; the caller zeroes
 *     them. This lets both directions of the next layer add into one dx.
 *   - Every function returns CRNN_OK or a negative crnn_status.
 *   - A call's tensors come by name, in two structs: crnn_layer_* (what forward reads and
 *     writes, and backward reads again) and crnn_grads_* (what backward reads and adds into).
 *
 * One step of the forward pass (per direction; "Gx" is the input projection of all steps,
 * computed by one GEMM before the step loop; names are crnn_layer_* fields):
 *
 *        x(t) ---- W_x ---> Gx(t) --+ (+ b)
 *                                    +--> gates --> cell --> h(t) --+--> y(t)
 *        h(t-1) -- W_h ---> Gh -----+       ^                       |
 *          ^    (masked: m * h(t-1))        |  c(t-1) (LSTM)        |
 *          +--------------------------------------------------------+
 *        h(-1) = h0, c(-1) = c0; after each sequence's last step: hn, cn
 *
 * Backward, per step (reverse processing order; names are crnn_grads_* fields): one fused
 * elementwise pass turns dh(t) (from dy and from step t+1; dhn, dcn at the last step) into
 * gate gradients dG(t); one GEMM dh(t-1) = dG(t) W_h^T (at t = 0 it goes to dh0). After the
 * loop, large GEMMs give dW_x += x^T dG, dW_h += h_prev^T dG, dx += dG W_x^T, and db = sum of dG.
 */
#ifndef CRNN_CRNN_H
#define CRNN_CRNN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CRNN_OK = 0,
    CRNN_ERR_CELL = -1,        /* unknown cell kind */
    CRNN_ERR_DIMS = -2,        /* a size is < 1, or a stride is smaller than the row it holds */
    CRNN_ERR_LENGTHS = -3,     /* a length outside [1, T], or lengths not sorted non-increasing */
    CRNN_ERR_TRUNCATE = -4,    /* truncate < 0 */
    CRNN_ERR_NULL = -5,        /* a required buffer, or the layer or grads struct, is NULL */
    CRNN_ERR_READOUT = -6,     /* unknown readout kind, or directions not 1 or 2 */
    CRNN_ERR_NET = -7,         /* an invalid network: kind, head, stacks, or arena too small */
    CRNN_ERR_TARGET = -8       /* a class code outside [0, n_out) */
} crnn_status;

typedef enum {
    CRNN_RNN_TANH = 0,
    CRNN_RNN_RELU = 1,
    CRNN_LSTM = 2,
    CRNN_GRU = 3
} crnn_cell;

/* Sizes of one call. T steps, B sequences, I inputs, H hidden units. */
typedef struct {
    int cell;      /* a crnn_cell */
    int T, B;      /* steps, sequences */
    int n_in, H;   /* input and hidden sizes (n_in, not I: complex.h defines I) */
    int ldx;       /* row stride of x and dx, >= I */
    int ldy;       /* row stride of y and dy, >= H (y points at this direction's first column) */
    int reverse;   /* 0: t = 0 .. len-1, 1: t = len-1 .. 0 */
    int masked;    /* 1: recurrent dropout, the call takes a mask (see crnn_forward) */
} crnn_dims;

/*
 * Row-major GEMM: C = alpha * op(A) op(B) + beta * C, op(X) = X or X^T as trans_x is 0 or 1,
 * op(A) is m x k, op(B) is k x n, C is m x n; lda, ldb, ldc are row strides.
 * The Cython layer fills these from scipy.linalg.cython_blas; a test may plug in anything.
 */
typedef void (*crnn_sgemm_fn)(int trans_a, int trans_b, int m, int n, int k,
                              float alpha, const float *a, int lda, const float *b, int ldb,
                              float beta, float *c, int ldc);
typedef void (*crnn_dgemm_fn)(int trans_a, int trans_b, int m, int n, int k,
                              double alpha, const double *a, int lda, const double *b, int ldb,
                              double beta, double *c, int ldc);

/*
 * Row-major GEMV: y = alpha * op(A) x + beta * y, A is m x n with row stride lda; op(A) = A
 * (x has n entries, y has m) or A^T (x has m, y has n) as trans is 0 or 1. The kernels use it
 * for products of a single row (one active sequence), which a GEMM runs several times slower.
 */
typedef void (*crnn_sgemv_fn)(int trans, int m, int n, float alpha, const float *a, int lda,
                              const float *x, float beta, float *y);
typedef void (*crnn_dgemv_fn)(int trans, int m, int n, double alpha, const double *a, int lda,
                              const double *x, double beta, double *y);

/*
 * small_gemm: the number of multiply-adds up to which the BLAS runs a product through
 * small-matrix kernels (OpenBLAS on AVX-512 cores: about 10^6), or 0 if it has none. With
 * them, the kernels split large products into row chunks that fit, as that runs up to 3x
 * faster there; without, such chunks would run up to 3x slower (src/csrc/plan.c).
 */
typedef struct { crnn_sgemm_fn gemm; crnn_sgemv_fn gemv; double small_gemm; } crnn_blas_f32;
typedef struct { crnn_dgemm_fn gemm; crnn_dgemv_fn gemv; double small_gemm; } crnn_blas_f64;

/* Number of gate blocks G of a cell (1, 4 or 3), or 0 for an unknown cell. */
int crnn_gates(int cell);

/* Elements (of the call's dtype) of the reserve that forward fills and backward reads:
 * the activated gates of every step (and the LSTM cell states, and with d->masked the masked
 * states m*h(t-1) every step multiplied with W_h). 0 if dims are invalid. */
size_t crnn_reserve_size(const crnn_dims *d);

/* Elements of scratch space one forward or backward call needs. 0 if dims are invalid. */
size_t crnn_workspace_size(const crnn_dims *d);

/*
 * A layer call's tensors, by name (one struct per dtype, the same fields): what forward reads
 * and writes, and what the matching backward reads again (all but b, b_hn, hn and cn).
 *   x (T, B, ldx)  lengths (B)  W_x (I, G*H)  W_h (H, G*H)  b (G*H)  b_hn (H, GRU only)
 *   h0, c0 (B, H) or NULL for zeros (c0: LSTM only)
 *   mask (B, H), d->masked only (else NULL): recurrent (variational) dropout, one mask per
 *     sequence reused at every step: the recurrent product reads m * h(t-1) instead of
 *     h(t-1) (the LSTM's c and the GRU's z * h term are not masked); entries 0 or 1/(1-p)
 *   y (T, B, ldy) written at t < lengths[b] only;  hn, cn (B, H) final states (cn: LSTM only)
 *   reserve: crnn_reserve_size elements, filled by forward, read and overwritten by backward
 *     (one forward serves one backward).
 */
typedef struct {
    const float *x;
    const int *lengths;
    const float *W_x, *W_h, *b, *b_hn;
    const float *h0, *c0, *mask;
    float *y, *hn, *cn;
    float *reserve;
} crnn_layer_f32;
typedef struct {
    const double *x;
    const int *lengths;
    const double *W_x, *W_h, *b, *b_hn;
    const double *h0, *c0, *mask;
    double *y, *hn, *cn;
    double *reserve;
} crnn_layer_f64;

/*
 * A backward call's gradients, by name (one struct per dtype, the same fields).
 *   In:  dy (T, B, ldy) or NULL; dhn, dcn (B, H) or NULL: gradients of the loss w.r.t. y and
 *        the final states (NULL: zero).
 *   Accumulated (+=): dx (T, B, ldx), dh0, dc0 (B, H), dW_x (I, G*H), dW_h (H, G*H),
 *        db (G*H), db_hn (H, GRU only). dx, dh0 and dc0 may be NULL: that gradient is not
 *        wanted (a NULL dx saves a product of the size of the input projection, e.g. for the
 *        first layer when training).
 */
typedef struct {
    const float *dy, *dhn, *dcn;
    float *dx, *dh0, *dc0;
    float *dW_x, *dW_h, *db, *db_hn;
} crnn_grads_f32;
typedef struct {
    const double *dy, *dhn, *dcn;
    double *dx, *dh0, *dc0;
    double *dW_x, *dW_h, *db, *db_hn;
} crnn_grads_f64;

/*
 * Forward over all steps of `layer` (see crnn_layer_f32); workspace: crnn_workspace_size.
 */
int crnn_forward_f32(const crnn_blas_f32 *blas, const crnn_dims *d, const crnn_layer_f32 *layer,
                     float *workspace);
int crnn_forward_f64(const crnn_blas_f64 *blas, const crnn_dims *d, const crnn_layer_f64 *layer,
                     double *workspace);

/*
 * Backward (BPTT) through the steps of the matching forward call: the same dims and layer
 * (x, lengths, weights, h0, c0, mask, y and the reserve forward filled). truncate: 0 for full
 * BPTT, k > 0 to run only the last k steps each sequence processed (earlier steps, and h0, get
 * no gradient). With a mask: dh(t-1) = (dG W_h^T) * m and dW_h += (m * h(t-1))^T dG.
 */
int crnn_backward_f32(const crnn_blas_f32 *blas, const crnn_dims *d,
                      const crnn_layer_f32 *layer, const crnn_grads_f32 *grads, int truncate,
                      float *workspace);
int crnn_backward_f64(const crnn_blas_f64 *blas, const crnn_dims *d,
                      const crnn_layer_f64 *layer, const crnn_grads_f64 *grads, int truncate,
                      double *workspace);

/*
 * Readouts: a layer's outputs Y (T, B, F), F = D*H (the D directions' states side by side,
 * zero past each length), become one vector per sequence, out (B, F). Lengths as above
 * (sorted non-increasing, in [1, T]); a sequence's padding never counts.
 *   LAST       the final state of each direction: out[b, :H] = Y[len_b - 1, b, :H] and, with
 *              D = 2, out[b, H:] = Y[0, b, H:] (the reverse direction ends at time 0)
 *   MEAN       out[b] = sum_{t < len_b} Y[t, b] / len_b
 *   MAX        out[b, j] = max_{t < len_b} Y[t, b, j]; its gradient goes to the first maximum
 *   ATTENTION  additive (Bahdanau) attention pooling with A scoring units:
 *                  u_t = tanh(Y_t W_a + b_a)  (A),   s_t = u_t . v,
 *                  a = softmax(s_0 .. s_{len_b - 1})  (minus the max),   out[b] = sum a_t Y_t
 *              params = [W_a (F, A) row-major | b_a (A) | v (A)]
 *
 *        Y (T, B, F) --W_a, b_a, tanh--> u (T, B, A) --v--> s --softmax over t < len_b--> a
 *             |                                                                           |
 *             +---------------------> out[b] = sum_t a[t, b] Y[t, b] <--------------------+
 *
 * Forward fills the reserve (MAX: the maxima; ATTENTION: u and a of every row, and out);
 * backward reads it, overwrites it, and *accumulates* into dY (T, B, F) and dparams.
 */
typedef enum {
    CRNN_READOUT_LAST = 0,
    CRNN_READOUT_MEAN = 1,
    CRNN_READOUT_MAX = 2,
    CRNN_READOUT_ATTENTION = 3
} crnn_readout;

typedef struct {
    int kind;      /* a crnn_readout */
    int T, B;      /* steps, sequences */
    int D, H;      /* directions (1 or 2) and hidden units of each: F = D*H features */
    int A;         /* ATTENTION: scoring units (>= 1); ignored by the other kinds */
} crnn_readout_dims;

/* Parameters of a readout (ATTENTION: F*A + 2A, the others 0), and reserve elements
 * (MAX: B*F, the maxima; ATTENTION: T*B*(A+1) + B*(F+1); the others 0); both 0 for
 * invalid dims. */
size_t crnn_readout_params_size(const crnn_readout_dims *d);
size_t crnn_readout_reserve_size(const crnn_readout_dims *d);

/*
 * Y (T, B, F)  lengths (B)  params (crnn_readout_params_size, or NULL if 0)  out (B, F)
 * reserve: crnn_readout_reserve_size elements (NULL if 0), kept for backward.
 * Backward, with the same Y, lengths, params and the reserve forward filled:
 *   dout (B, F);  accumulated (+=): dY (T, B, F) at t < len_b only, dparams.
 */
int crnn_readout_forward_f32(const crnn_blas_f32 *blas, const crnn_readout_dims *d,
                             const float *Y, const int *lengths, const float *params,
                             float *out, float *reserve);
int crnn_readout_forward_f64(const crnn_blas_f64 *blas, const crnn_readout_dims *d,
                             const double *Y, const int *lengths, const double *params,
                             double *out, double *reserve);
int crnn_readout_backward_f32(const crnn_blas_f32 *blas, const crnn_readout_dims *d,
                              const float *Y, const int *lengths, const float *params,
                              float *reserve, const float *dout, float *dY, float *dparams);
int crnn_readout_backward_f64(const crnn_blas_f64 *blas, const crnn_readout_dims *d,
                              const double *Y, const int *lengths, const double *params,
                              double *reserve, const double *dout, double *dY,
                              double *dparams);

/*
 * Plan query: the path one product of forward or backward takes, as the kernels choose it
 * (src/csrc/plan.c), so that tests can check they cover each path.
 *   product CRNN_PLAN_STEP: a per-step recurrent product (m, n) = (m, k)(k, n), m the active
 *     rows: forward h W_h with {n, k} = {G*H, H}, backward dG W_h^T with {n, k} = {H, G*H};
 *   product CRNN_PLAN_ATB: a weight gradient (m, n) += A^T B summed over k rows.
 *   Out: *plan a crnn_path; *chunk rows per product; *width columns per block.
 */
enum { CRNN_PLAN_STEP = 0, CRNN_PLAN_ATB = 1 };
typedef enum {
    CRNN_PATH_GEMV = 0,         /* one row, through GEMV */
    CRNN_PATH_WHOLE = 1,        /* one product */
    CRNN_PATH_ROW_CHUNKS = 2,   /* products of `chunk` rows (small-matrix kernels) */
    CRNN_PATH_TRANSPOSED = 3,   /* the product's transpose, transposed back */
    CRNN_PATH_COLUMN_BLOCKS = 4 /* blocks of `width` columns in chunks of `chunk` rows */
} crnn_path;
int crnn_product_plan_f32(const crnn_blas_f32 *blas, int product, int m, int n, int k,
                          int *plan, int *chunk, int *width);
int crnn_product_plan_f64(const crnn_blas_f64 *blas, int product, int m, int n, int k,
                          int *plan, int *chunk, int *width);

/*
 * Optimizer updates over a flat parameter array of n elements, in place.
 *   Adam: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, params -= lr_t m / (sqrt(v) + eps),
 *         lr_t being the step size with Adam's bias correction applied by the caller.
 *   SGD:  velocity = momentum velocity - lr g; params += velocity, or with nesterov != 0,
 *         params += momentum velocity - lr g.
 * crnn_sum_squares: *out = sum of x^2, accumulated in double (a gradient's squared norm).
 */
int crnn_adam_update_f32(size_t n, float *params, const float *grad, float *m, float *v,
                         float lr_t, float beta_1, float beta_2, float eps);
int crnn_adam_update_f64(size_t n, double *params, const double *grad, double *m, double *v,
                         double lr_t, double beta_1, double beta_2, double eps);
int crnn_sgd_update_f32(size_t n, float *params, const float *grad, float *velocity, float lr,
                        float momentum, int nesterov);
int crnn_sgd_update_f64(size_t n, double *params, const double *grad, double *velocity,
                        double lr, double momentum, int nesterov);
int crnn_sum_squares_f32(size_t n, const float *x, double *out);
int crnn_sum_squares_f64(size_t n, const double *x, double *out);

/*
 * A dense layer, out = x W + b: the estimators' output layer on a streamed step.
 *   x (B, ldx)  W (n_in, n_out)  b (n_out)  out (B, n_out)
 */
int crnn_dense_f32(const crnn_blas_f32 *blas, int B, int n_in, int n_out, const float *x,
                   int ldx, const float *W, const float *b, float *out);
int crnn_dense_f64(const crnn_blas_f64 *blas, int B, int n_in, int n_out, const double *x,
                   int ldx, const double *W, const double *b, double *out);

/*
 * A whole network over one minibatch (src/csrc/net.c): the stacked layers, the readout, the
 * output layer (the head) and its loss, the backward pass, and (crnn_train_step) the L2
 * penalty, gradient clipping and the optimizer update, in one call. It is what one training
 * minibatch of the estimators runs; Python only picks the sequences of the batch.
 *
 * The network's parameters are one flat array, in this order (the layout of
 * crnn._patterns.Network):
 *     [ encoder | decoder (ENCDEC) | readout (ATTENTION) | W_out (F, n_out) | b_out ]
 * a stack's layers in order, each direction's W_x (I, G*H), W_h (H, G*H), b (G*H) and, for
 * the GRU, b_hn (H); F = D*H of the encoder's last layer. What feeds the head:
 *   SEQ2VEC  one vector per sequence: the readout of the last layer's outputs (LAST: its
 *            final states, [forward | reverse]); positions P = B
 *   SEQ2SEQ  the last layer's output at every step (vec2seq too, its vector repeated as the
 *            input of every step); P = T*B, time-major
 *   ENCDEC   a one-way decoder stack (layer l has D*H_l units, its input n_out + 1 values),
 *            started from the encoder's final states, the two directions side by side; it
 *            reads the teacher inputs dec_x, its batch in its own order (dec_order: row j
 *            is the encoder's sequence dec_order[j], so that its lengths dec_lengths are
 *            sorted too); P = T_out*B, in the decoder's order
 * The heads: SOFTMAX, cross-entropy of softmax(outputs) against class codes; LINEAR, half
 * the squared error against targets, averaged over the n_out outputs. The loss is the
 * weighted sum over positions of those, with weights[i] / batch_weight.
 */
typedef enum { CRNN_SEQ2VEC = 0, CRNN_SEQ2SEQ = 1, CRNN_ENCDEC = 2 } crnn_net_kind;
typedef enum { CRNN_HEAD_SOFTMAX = 0, CRNN_HEAD_LINEAR = 1 } crnn_head;

/* A stack of recurrent layers: n_layers (1 .. CRNN_MAX_LAYERS) layers of hidden[l] units,
 * each in D directions. */
#define CRNN_MAX_LAYERS 64
typedef struct {
    int cell;              /* a crnn_cell */
    int n_layers;
    int D;                 /* 1 or 2 */
    int n_in;              /* inputs of the first layer */
    const int *hidden;     /* (n_layers) */
} crnn_stack;

typedef struct {
    int kind;              /* a crnn_net_kind */
    crnn_stack enc;
    crnn_stack dec;        /* ENCDEC only (n_layers 0 otherwise) */
    int readout;           /* SEQ2VEC: a crnn_readout */
    int A;                 /* ATTENTION: scoring units */
    int head;              /* a crnn_head */
    int n_out;
    int truncate;          /* truncated BPTT: 0 for full, else the steps each sequence keeps */
} crnn_net;

/*
 * One minibatch (one struct per dtype, the same fields):
 *   x (T, B, enc.n_in), lengths (B) sorted non-increasing in [1, T]
 *   ENCDEC (else NULL, T_out 0): dec_x (T_out, B, n_out + 1) the teacher inputs,
 *     dec_lengths (B) in [1, T_out] sorted non-increasing, dec_order (B) a permutation
 *     (NULL: the identity); dec_x, the targets, the weights and the decoder's masks are in
 *     the decoder's order
 *   codes (P) for SOFTMAX or targets (P, n_out) for LINEAR; weights (P), >= 0, with their
 *     sum batch_weight > 0
 *   input_mean, input_scale (enc.n_in) or NULL: the encoder reads (x - mean) / scale at
 *     every real step (the estimators' input standardization, applied per minibatch)
 *   dropout masks, each NULL when off (entries 0 or 1/(1-p), see crnn_layer_*.mask):
 *     input_mask (B, enc.n_in): multiplies the encoder's input at every step;
 *     rec_mask: recurrent dropout, (D, B, H_l) per encoder layer, then (1, B, Hdec_l) per
 *       decoder layer, back to back;
 *     drop_mask: between stacked layers, (T, B, D*H_l) for every encoder layer but the last,
 *       then (T_out, B, Hdec_l) for every decoder layer but the last, back to back.
 */
typedef struct {
    int T, B, T_out;
    const float *x, *dec_x;
    const int *lengths, *codes, *dec_lengths, *dec_order;
    const float *targets;
    const double *weights;
    double batch_weight;
    const float *input_mean, *input_scale;
    const float *input_mask, *rec_mask, *drop_mask;
} crnn_batch_f32;
typedef struct {
    int T, B, T_out;
    const double *x, *dec_x;
    const int *lengths, *codes, *dec_lengths, *dec_order;
    const double *targets;
    const double *weights;
    double batch_weight;
    const double *input_mean, *input_scale;
    const double *input_mask, *rec_mask, *drop_mask;
} crnn_batch_f64;

/* Parameters of a network (0 if invalid), and the elements of scratch space (the arena) a
 * crnn_net_grad call needs for at most T steps, T_out decoder steps and B sequences (0 if
 * invalid; one arena serves any smaller batch). */
size_t crnn_net_params_size(const crnn_net *net);
size_t crnn_net_arena_size_f32(const crnn_net *net, int T, int T_out, int B);
size_t crnn_net_arena_size_f64(const crnn_net *net, int T, int T_out, int B);

/*
 * The minibatch's loss (*loss, a double) and, if it is finite, its gradient, written into
 * grad (crnn_net_params_size elements, overwritten). A non-finite loss leaves grad
 * unspecified. The arena holds crnn_net_arena_size elements for a batch this size or larger.
 */
int crnn_net_grad_f32(const crnn_blas_f32 *blas, const crnn_net *net, const crnn_batch_f32 *batch,
                      const float *params, float *grad, float *arena, size_t arena_size,
                      double *loss);
int crnn_net_grad_f64(const crnn_blas_f64 *blas, const crnn_net *net, const crnn_batch_f64 *batch,
                      const double *params, double *grad, double *arena, size_t arena_size,
                      double *loss);

/*
 * The rest of a training step, on a gradient over n parameters (in place):
 *   grad += decay * params and *loss += sum(decay * params^2) / 2, if decay is not NULL (the
 *     L2 penalty; decay is zero for biases) and the loss is finite;
 *   *norm = ||grad|| (accumulated in double); if clip_norm > 0 and *norm > clip_norm, grad is
 *     scaled to norm clip_norm;
 *   if the loss and the norm are finite, the optimizer's update of params (*updated = 1),
 *   else nothing (*updated = 0: the caller decides what a diverged step means).
 * The optimizer: ADAM (m, v its moments, lr its step size with the bias correction applied)
 * or SGD (m the velocity, lr the learning rate, momentum, nesterov); see crnn_adam_update.
 */
typedef enum { CRNN_ADAM = 0, CRNN_SGD = 1 } crnn_solver;
typedef struct {
    int solver;                 /* a crnn_solver */
    double lr, beta_1, beta_2, eps, momentum;
    int nesterov;
} crnn_optimizer;
int crnn_train_update_f32(size_t n, float *params, float *grad, const float *decay,
                          double clip_norm, const crnn_optimizer *opt, float *m, float *v,
                          double *loss, double *norm, int *updated);
int crnn_train_update_f64(size_t n, double *params, double *grad, const double *decay,
                          double clip_norm, const crnn_optimizer *opt, double *m, double *v,
                          double *loss, double *norm, int *updated);

/*
 * ENCDEC prediction: the decoder run on its own outputs for `steps` steps from the states
 * h0, c0 (per decoder layer (B, Hdec_l), back to back; c0 for the LSTM only, else NULL),
 * which it overwrites with its states. The first step reads the start flag; each next step
 * reads the previous step's outputs (SOFTMAX: the one-hot of their largest value).
 *   out (steps, B, n_out): the output layer's values (SOFTMAX: logits).
 * Arena: crnn_net_decode_arena_size elements (0: an invalid network, or not ENCDEC).
 */
size_t crnn_net_decode_arena_size_f32(const crnn_net *net, int B);
size_t crnn_net_decode_arena_size_f64(const crnn_net *net, int B);
int crnn_net_decode_f32(const crnn_blas_f32 *blas, const crnn_net *net, const float *params,
                        int B, int steps, float *h0, float *c0, float *out, float *arena,
                        size_t arena_size);
int crnn_net_decode_f64(const crnn_blas_f64 *blas, const crnn_net *net, const double *params,
                        int B, int steps, double *h0, double *c0, double *out, double *arena,
                        size_t arena_size);

#ifdef __cplusplus
}
#endif

#endif /* CRNN_CRNN_H */
