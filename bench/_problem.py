"""One benchmark problem: shapes, data, shared initial weights, the loss head, the FLOPs.

Every implementation starts from the same weights and data, so the benchmark can check
that they compute the same loss and gradients before it times them.
"""

from dataclasses import dataclass

import numpy as np

from _numpy_ref import GATES

#: Outputs of the linear head on top of the recurrent layer (a tiny regression).
N_OUTPUTS = 4


@dataclass(frozen=True)
class Shape:
    """Sizes of one problem: T steps, B sequences, I input features, H hidden units."""

    cell: str
    dtype: str
    B: int
    T: int
    I: int  # noqa: E741 (the field's usual name)
    H: int

    @property
    def G(self):
        """Gate blocks of the cell (1, 4 or 3)."""
        return GATES[self.cell]


@dataclass
class Problem:
    """Data and weights of one problem; ``loss`` is "s2v" (last step) or "s2s" (every step)."""

    shape: Shape
    loss: str
    X: np.ndarray  # (T, B, I)
    target: np.ndarray  # (B, K) for "s2v", (T, B, K) for "s2s"
    weights: dict  # W_x, W_h, b, [b_hn], W_o, b_o
    lengths: np.ndarray = None  # (B,) or None for full-length sequences


def make_problem(shape, loss="s2s", lengths=None, seed=0):
    """Random data and PyTorch-style uniform weights for ``shape``."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(shape.dtype)
    T, B, n_in, H, GH = shape.T, shape.B, shape.I, shape.H, shape.G * shape.H
    bound = 1.0 / np.sqrt(H)

    def uniform(*size):
        return rng.uniform(-bound, bound, size).astype(dtype)

    weights = {"W_x": uniform(n_in, GH), "W_h": uniform(H, GH), "b": uniform(GH)}
    if shape.cell == "gru":
        weights["b_hn"] = uniform(H)
    weights["W_o"] = uniform(H, N_OUTPUTS)
    weights["b_o"] = uniform(N_OUTPUTS)
    X = rng.standard_normal((T, B, n_in)).astype(dtype)
    target_shape = (B, N_OUTPUTS) if loss == "s2v" else (T, B, N_OUTPUTS)
    target = rng.standard_normal(target_shape).astype(dtype)
    return Problem(shape, loss, X, target, weights, lengths)


def spread_lengths(T, B, seed=0):
    """Lengths spread evenly from 10% to 100% of ``T``, in random order."""
    lengths = np.linspace(max(1, round(0.1 * T)), T, B).round().astype(np.intp)
    return np.random.default_rng(seed).permutation(lengths)


def head_loss(Z, W_o, b_o, target):
    """Linear head and mean squared error, with their gradients (as ``nn.MSELoss``).

    Parameters
    ----------
    Z : ndarray of shape (..., H)
        The recurrent layer's output the loss looks at.

    Returns
    -------
    loss : float
    dZ : ndarray like ``Z``
    grads : dict
        ``W_o`` and ``b_o``.
    """
    Z2 = Z.reshape(-1, Z.shape[-1])
    err = Z2 @ W_o
    err += b_o
    err -= target.reshape(-1, target.shape[-1])
    flat = err.reshape(-1)
    loss = float(np.dot(flat, flat)) / err.size
    d_out = err
    d_out *= 2.0 / err.size
    # Column sums as a product with ones: NumPy's sum(axis=0) of a tall array with a few
    # columns is up to 20x slower.
    grads = {"W_o": Z2.T @ d_out, "b_o": np.ones(len(d_out), dtype=d_out.dtype) @ d_out}
    return loss, (d_out @ W_o.T).reshape(Z.shape), grads


def training_gemms(shape):
    """The GEMMs of one training step, row-major ``(m, n, k, count)``: C(m, n) = A(m, k) B(k, n).

    Forward input projection, recurrent products, backward dh, dW_x, dW_h and dx. The loss
    head and elementwise work are not counted.
    """
    T, B, n_in, H = shape.T, shape.B, shape.I, shape.H
    GH = shape.G * H
    return [
        (T * B, GH, n_in, 1),  # forward: X W_x
        (B, GH, H, T),  # forward: h_{t-1} W_h, per step
        (B, H, GH, T),  # backward: dG_t W_h^T, per step
        (n_in, GH, T * B, 1),  # dW_x = X^T dG
        (H, GH, T * B, 1),  # dW_h = H_prev^T dG
        (T * B, n_in, GH, 1),  # dX = dG W_x^T
    ]


def gemm_flops(gemms):
    """Floating-point operations of a list of ``(m, n, k, count)`` GEMMs."""
    return sum(2 * m * n * k * count for m, n, k, count in gemms)
