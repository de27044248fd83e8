"""
=====================================
A training loop on the functional API
=====================================

:mod:`crnn.functional` runs the recurrent layers' forward pass and backpropagation through
time on NumPy arrays; the rest of a model (here a linear output layer, a squared-error loss
and Adam) is yours to write. The task: read sequences of 5 to 20 random numbers and output
``tanh`` of their sum, from the final hidden state.

Arrays are time-major: ``X`` is ``(T, B, I)``. Sequences shorter than ``T`` give their
lengths, and every result (outputs, final states, gradients) respects them.
"""

import matplotlib.pyplot as plt
import numpy as np

from crnn.functional import RNNLayout, backward, forward, init_params

rng = np.random.default_rng(0)
T, B, H = 20, 32, 16
layout = RNNLayout("gru", input_size=1, hidden_sizes=(H,))
params = init_params(layout, random_state=0)  # the recurrent layer's flat parameters
W, b = rng.normal(scale=0.1, size=(H, 1)), np.zeros(1)  # the output layer, ours


def batch(n):
    """``n`` sequences of 5 to 20 steps, time-major, and their targets tanh(sum)."""
    lengths = rng.integers(5, T + 1, size=n)
    X = rng.normal(size=(T, n, 1))
    X[np.arange(T)[:, None] >= lengths] = 0.0  # padding (never read; zero for the sum)
    return X, lengths, np.tanh(X.sum(axis=0))


# Adam over the two parameter sets, written out.
weights = [params, W, b]
moments = [(np.zeros_like(w), np.zeros_like(w)) for w in weights]
learning_rate, beta_1, beta_2 = 1e-2, 0.9, 0.999
losses = []
for step in range(1, 401):
    X, lengths, target = batch(B)
    _, (h_n, _), cache = forward(layout, params, X, lengths=lengths)
    h = h_n[0][0]  # the final state of layer 0, direction 0: (B, H)
    out = h @ W + b
    error = out - target
    losses.append(float(np.mean(error**2)))
    d_out = 2 * error / B
    # Gradients of the output layer, and of the final state for backward().
    grads_head = [h.T @ d_out, d_out.sum(axis=0)]
    _, _, _, grad = backward(cache, dh_n=[(d_out @ W.T)[None]], input_grad=False)
    lr_t = learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
    for w, g, (m, v) in zip(weights, [grad, *grads_head], moments):
        m[...] = beta_1 * m + (1 - beta_1) * g
        v[...] = beta_2 * v + (1 - beta_2) * g**2
        w -= lr_t * m / (np.sqrt(v) + 1e-8)

X, lengths, target = batch(1000)
_, (h_n, _), _ = forward(layout, params, X, lengths=lengths, keep_cache=False)
test_mse = float(np.mean((h_n[0][0] @ W + b - target) ** 2))
print(
    f"mean squared error on 1000 new sequences: {test_mse:.4f} "
    f"(predicting 0 everywhere: {float(np.mean(target**2)):.4f})"
)

# %%
# The training loss of every minibatch, and its moving average over 20 minibatches.

fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(losses, color="C0", alpha=0.35, lw=1, label="minibatch loss")
ax.plot(
    np.arange(19, len(losses)),
    np.convolve(losses, np.ones(20) / 20, "valid"),
    color="C0",
    label="moving average",
)
ax.set_yscale("log")
ax.set_xlabel("training step")
ax.set_ylabel("mean squared error")
ax.set_title("A GRU and a linear head trained with crnn.functional")
ax.legend()
fig.tight_layout()
