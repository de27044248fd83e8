/*
 * internal.h -- helpers shared by crnn's C sources (not part of the public API).
 */
#ifndef CRNN_INTERNAL_H
#define CRNN_INTERNAL_H

#include "crnn/crnn.h"

/* Width of one reserve row: the activated gates of one (step, sequence), plus for the GRU
 * the recurrent n-projection (h W_hn + b_hn) that the reset gate multiplies. */
static inline int reserve_row_width(int cell, int H)
{
    return cell == CRNN_GRU ? 4 * H : crnn_gates(cell) * H;
}

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

#endif /* CRNN_INTERNAL_H */
