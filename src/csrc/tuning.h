/*
 * tuning.h -- every constant that only trades speed (none changes a result's meaning), with
 * what it trades. Measured GFLOP/s behind them: bench/RESULTS.md, "Product plans".
 * Per-dtype constants come as name_F32 / name_F64; the kernels read them as TUNED(name).
 */
#ifndef CRNN_TUNING_H
#define CRNN_TUNING_H

/* Fewest rows per product worth splitting the input projection and the weight gradients
 * into for the small-matrix kernels: sgemm gains down to 16 rows, dgemm only down to 64. */
#define MIN_CHUNK_ROWS_F32 16
#define MIN_CHUNK_ROWS_F64 64

/* Whether a per-step product larger than the small-matrix kernels, with fewer rows than
 * columns, runs as its transpose: faster for sgemm, slower for dgemm. */
#define TRANSPOSED_STEPS_F32 1
#define TRANSPOSED_STEPS_F64 0

/* Whether weight gradients too wide for row chunks run in column blocks: LSTM H=128 14-16%
 * faster backward for sgemm, 5-9% slower for dgemm. */
#define COLUMN_BLOCKS_F32 1
#define COLUMN_BLOCKS_F64 0

/* Columns per block and fewest rows per chunk of those column blocks: fewer rows per chunk
 * (H >= 256) gained nothing. */
#define COL_BLOCK 64
#define BLOCK_ROWS 64

/* Row chunks for the small-matrix kernels are a multiple of this many rows, and at least
 * that many: other multiples ran 10-25% slower. */
#define SMALL_ROWS_STEP 8

/* Side of the square tiles of a transpose: contiguous writes of 16 x 16 tiles ran at 0.3 ns
 * an element, 32 x 32 tiles written column-wise at 0.8-1.9 (power-of-two strides made those
 * tiles evict themselves from L1). */
#define TRANSPOSE_TILE 16

#endif /* CRNN_TUNING_H */
