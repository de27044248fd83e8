"""
======================================
An encoder-decoder reversing sequences
======================================

The encoder-decoder pattern maps a sequence to a target sequence of another length. The
encoder reads the input; its final state starts a decoder that is fed the true previous
target while training (teacher forcing) and its own previous output when predicting.

The task: read 3 to 6 symbols out of 4 and write them in reverse order. Inputs of
different lengths are given as a list of arrays, and ``predict`` takes the number of
output steps of each sequence (``n_steps_out``).
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from crnn import RNNClassifier

rng = np.random.default_rng(0)
n_symbols = 4
lengths = rng.integers(3, 7, size=1500)
symbols = [rng.integers(0, n_symbols, size=n) for n in lengths]
X = [np.eye(n_symbols)[s] for s in symbols]  # one-hot steps: arrays (length, 4)
y = [s[::-1] for s in symbols]
train, test = slice(0, 1200), slice(1200, None)

# 25 epochs keep the example fast; the loss is still falling slowly when they end.
warnings.filterwarnings("ignore", category=ConvergenceWarning)
clf = RNNClassifier(
    pattern="encdec",
    hidden_layer_sizes=(48,),
    learning_rate_init=1e-2,
    max_iter=25,
    random_state=0,
).fit(X[train], y[train])
predicted = clf.predict(X[test], n_steps_out=lengths[test])  # a list: one array per sequence
proba = clf.predict_proba(X[test], n_steps_out=lengths[test])
print(
    f"per-step accuracy on new sequences {clf.score(X[test], y[test]):.3f}; "
    f"exactly reversed: {np.mean([np.array_equal(p, t) for p, t in zip(predicted, y[test])]):.3f}"
)
print("first test sequence:", symbols[1200], "-> predicted", predicted[0])

# %%
# What the decoder writes
# -----------------------
# For four new sequences of each length: the input symbols (left), and the decoder's
# probability of each symbol at each output step (right), with the true reversed sequence
# marked. A confident decoder puts nearly all its probability on one symbol per step.

picks = [1200 + int(np.flatnonzero(lengths[test] == n)[0]) for n in (3, 4, 5, 6)]
fig, axes = plt.subplots(len(picks), 2, figsize=(7, 7), layout="constrained")
for row, i in zip(axes, picks):
    n = lengths[i]
    row[0].imshow(X[i].T, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    row[1].imshow(proba[i - 1200].T, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    row[1].plot(np.arange(n), y[i], "rx", ms=8, label="true reversed symbol")
    for ax in row:
        ax.set_xticks(range(n))
        ax.set_yticks(range(n_symbols))
        ax.set_xlim(-0.5, 5.5)
    row[0].set_ylabel("symbol")
axes[0, 0].set_title("input (one-hot)")
axes[0, 1].set_title("decoder: P(symbol) per step")
axes[-1, 0].set_xlabel("input step")
axes[-1, 1].set_xlabel("output step")
fig.legend(*axes[0, 1].get_legend_handles_labels(), loc="outside lower center", fontsize=8)
