"""
=========================
Tagging every step
=========================

A per-step classifier (the seq2seq pattern): one label for every step of every sequence.
Each sequence is a noisy oscillation that switches, at random times, between a slow and a
fast rhythm; the task is to say at every step which rhythm is playing. A single step cannot
tell (both rhythms pass through every value), so the network has to read the context.

Given labels of shape ``(n_sequences, n_steps)``, ``pattern="auto"`` picks the per-step
pattern, and ``predict_proba`` returns ``(n_sequences, n_steps, n_classes)``. A
bidirectional network reads each sequence both ways, so each step's label can use what
comes after it too.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from crnn import RNNClassifier

rng = np.random.default_rng(0)
n_sequences, n_steps = 600, 80


def make_sequences(n):
    """Signals (n, n_steps) and their rhythm (0 slow, 1 fast) at every step."""
    switches = rng.random((n, n_steps)) < 0.04  # a change of rhythm every 25 steps on average
    labels = np.cumsum(switches, axis=1) % 2 ^ rng.integers(0, 2, size=(n, 1))
    phase = np.cumsum(np.where(labels == 1, 1.2, 0.3), axis=1) + rng.uniform(0, 6, (n, 1))
    return np.sin(phase) + 0.2 * rng.normal(size=(n, n_steps)), labels


X, y = make_sequences(n_sequences)
X_test, y_test = make_sequences(100)

# 25 epochs keep the example fast; the loss is still falling slowly when they end.
warnings.filterwarnings("ignore", category=ConvergenceWarning)
clf = RNNClassifier(
    cell="gru",
    hidden_layer_sizes=(24,),
    bidirectional=True,
    learning_rate_init=1e-2,
    max_iter=25,
    random_state=0,
).fit(X, y)
proba = clf.predict_proba(X_test)
print(
    f"pattern {clf.pattern_!r}; predict_proba shape {proba.shape}; "
    f"per-step accuracy on new sequences {clf.score(X_test, y_test):.3f}"
)

# %%
# Three new sequences: the signal, with the fast rhythm shaded, and the predicted
# probability of the fast rhythm at every step.

fig, axes = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
steps = np.arange(n_steps)
for ax, i in zip(axes, range(3)):
    ax.fill_between(
        steps,
        -1.6,
        1.6,
        where=y_test[i] == 1,
        step="mid",
        color="C1",
        alpha=0.15,
        label="fast rhythm (truth)",
    )
    ax.plot(steps, X_test[i], color="0.3", lw=1, label="signal")
    ax.plot(
        steps, 3.2 * proba[i, :, 1] - 1.6, color="C0", lw=1.5, label="predicted P(fast), 0 to 1"
    )
    ax.set_ylim(-1.7, 1.7)
    ax.set_yticks([])
axes[0].legend(loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 1.35))
axes[-1].set_xlabel("step")
fig.tight_layout()
