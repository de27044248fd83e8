/*
 * internal.h -- helpers shared by crnn's C sources (not part of the public API).
 */
#ifndef CRNN_INTERNAL_H
#define CRNN_INTERNAL_H

#include "crnn/crnn.h"

/* Put before a cell's row loop: the gate blocks of a row (g, g + H, ...) and the other rows
 * it touches never overlap, so the compiler may vectorize without runtime aliasing checks
 * (it cannot prove this itself, as H is a run-time value). */
#if defined(__GNUC__) && !defined(__clang__)
#define IVDEP _Pragma("GCC ivdep")
#elif defined(__clang__)
#define IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define IVDEP
#endif

/* What the layer driver (layer.c) and the buffer sizes need to know of a cell beyond its row
 * functions, so that its special cases are data there rather than branches on the cell. */
typedef struct {
    int gates;      /* G: gate blocks of W_x, W_h and b */
    int row_blocks; /* H-wide blocks of a reserve row: the activated gates of one (step,
                     * sequence), plus for the GRU the recurrent n-projection h W_hn + b_hn
                     * that the reset gate multiplies */
    int has_c;      /* a cell state (LSTM): c0, cn, dcn, dc0, and the reserve's (T, B, H) c */
    int hn_block;   /* GRU: the reserve block of h W_hn + b_hn, a separate recurrent bias b_hn:
                     * its gradient goes to db_hn and to dW_h's last gate block, the other
                     * recurrent blocks being the first G-1 (0: no separate part, no b_hn) */
    int direct_dh;  /* the row pass leaves a direct part of dL/dh(t-1) in dh (GRU: z * dh),
                     * which the recurrent product dG W_h^T adds to */
} cell_desc;

/* The descriptor of a crnn_cell, or NULL for an unknown cell. */
static inline const cell_desc *cell_desc_of(int cell)
{
    static const cell_desc cells[] = {
        [CRNN_RNN_TANH] = {.gates = 1, .row_blocks = 1},
        [CRNN_RNN_RELU] = {.gates = 1, .row_blocks = 1},
        [CRNN_LSTM] = {.gates = 4, .row_blocks = 4, .has_c = 1},
        [CRNN_GRU] = {.gates = 3, .row_blocks = 4, .hn_block = 3, .direct_dh = 1},
    };
    return cell >= 0 && cell < (int)(sizeof cells / sizeof cells[0]) ? &cells[cell] : NULL;
}

/* The kernels' elementwise passes are compiled three times on x86-64 with GCC: for the
 * baseline (SSE2), x86-64-v3 (AVX2 + FMA, every x86 CPU since about 2015) and x86-64-v4
 * (AVX-512: its mask registers and 32 vector registers took 10-25% off the LSTM and GRU
 * forward steps at H <= 128, measured on AMD EPYC); the loader picks the best the CPU runs.
 * Elsewhere the compiler's defaults apply. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(CRNN_NO_CPU_DISPATCH) /* setup.py's CRNN_CPU: one CPU's code, for testing it */
#define CPU_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CPU_DISPATCH
#endif

/* The cells' row functions: always inlined, so that each CPU_DISPATCH clone of the layer
 * driver compiles them for its own instruction set. */
#if defined(__GNUC__)
#define ROW_FN static inline __attribute__((always_inline)) void
#else
#define ROW_FN static inline void
#endif

/* Number of sequences still running at step t: lengths are sorted non-increasing, so they
 * are the prefix b < n_longer(lengths, B, t). Binary search: O(log B). */
static inline int n_longer(const int *lengths, int B, int t)
{
    int lo = 0, hi = B;              /* lengths[b] > t for b < lo, <= t for b >= hi */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (lengths[mid] > t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Rows (t, b) = t*B + b of the active part of steps [t, t_end) come in blocks that one GEMM can
 * take: while every sequence is running, the rows of consecutive steps are contiguous, so the
 * block spans steps up to the shortest length; after that a block is one step's prefix of
 * sequences. Returns the number of steps of the block starting at t; *rows gets its row count.
 */
static inline int row_block(const int *lengths, int B, int t, int t_end, int *rows)
{
    int nb = n_longer(lengths, B, t);
    if (nb == B) {
        int stop = lengths[B - 1] < t_end ? lengths[B - 1] : t_end;
        *rows = (stop - t) * B;
        return stop - t;
    }
    *rows = nb;
    return 1;
}

/* Time index of sequence b at processing step s. */
static inline int step_time(int reverse, int length, int s)
{
    return reverse ? length - 1 - s : s;
}

/* Validates everything a kernel call relies on; CRNN_OK or the first problem found. */
int crnn_check_call(const crnn_dims *d, const int *lengths, int truncate);

/* Lengths in [1, T], sorted non-increasing (lengths holds B >= 1 entries). */
int crnn_lengths_ok(const int *lengths, int T, int B);

/* The same for a readout call. */
int crnn_check_readout(const crnn_readout_dims *d, const int *lengths);

/* Networks (net.c): CRNN_OK for a valid crnn_net, else CRNN_ERR_NET (or NULL). */
int crnn_check_net(const crnn_net *net);
/* A stack's layer l input size (n_in, or D * hidden[l-1]) and its output size D*H_last. */
int crnn_stack_layer_input(const crnn_stack *s, int l);
int crnn_stack_output_size(const crnn_stack *s);
/* Where direction dir of layer l starts in the stack's flat parameters (l = n_layers: the
 * stack's size). */
size_t crnn_stack_weights_offset(const crnn_stack *s, int l, int dir);
size_t crnn_stack_params_size(const crnn_stack *s);
/* The head's positions: B (SEQ2VEC), T*B (SEQ2SEQ) or T_out*B (ENCDEC). */
size_t crnn_net_positions(const crnn_net *net, int T, int T_out, int B);

#endif /* CRNN_INTERNAL_H */
