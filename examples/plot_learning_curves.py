"""
===============================
Learning and validation curves
===============================

Two views of how an :class:`~crnn.RNNClassifier` learns to read handwritten digits row by
row (scikit-learn's 8x8 digits as sequences of 8 steps of 8 pixels):

- the loss of every epoch, on the training data and on the share held out by
  ``early_stopping=True``, with the held-out accuracy;
- scikit-learn's :func:`~sklearn.model_selection.validation_curve` over the number of hidden
  units, with 3-fold cross-validation.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split, validation_curve

from crnn import RNNClassifier

X, y = load_digits(return_X_y=True)
X = X.reshape(-1, 8, 8) / 16  # (n_sequences, n_steps, n_features): 8 rows of 8 pixels
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# Loss curves
# -----------
# With ``early_stopping=True`` the estimator holds out ``validation_fraction`` of the
# training sequences (stratified) and records the loss and score on them after every epoch
# (``validation_loss_curve_``, ``validation_scores_``). Training stops when the validation
# loss has not improved for ``n_iter_no_change`` epochs, and the weights of the best epoch
# are kept.

clf = RNNClassifier(
    cell="gru",
    hidden_layer_sizes=(32,),
    learning_rate_init=5e-3,
    max_iter=60,
    early_stopping=True,
    validation_fraction=0.2,
    n_iter_no_change=8,
    random_state=0,
)
clf.fit(X_train, y_train)
best = int(np.argmin(clf.validation_loss_curve_))
print(
    f"{clf.n_iter_} epochs, best epoch {best + 1}, test accuracy {clf.score(X_test, y_test):.3f}"
)

fig, ax = plt.subplots(figsize=(7, 4.4))
epochs = np.arange(1, clf.n_iter_ + 1)
ax.plot(epochs, clf.loss_curve_, label="training loss")
ax.plot(epochs, clf.validation_loss_curve_, label="validation loss")
ax.axvline(best + 1, color="k", ls=":", lw=1, label="weights kept")
ax.set_xlabel("epoch")
ax.set_ylabel("cross-entropy")
ax.set_yscale("log")
score_ax = ax.twinx()
score_ax.plot(epochs, clf.validation_scores_, "C2--", label="validation accuracy")
score_ax.set_ylabel("accuracy")
lines = ax.get_legend_handles_labels()
score_lines = score_ax.get_legend_handles_labels()
ax.legend(
    lines[0] + score_lines[0],
    lines[1] + score_lines[1],
    loc="upper center",
    bbox_to_anchor=(0.5, -0.15),
    ncol=4,
    fontsize=8,
)
ax.set_title("GRU, 32 units, on the digits read row by row")
fig.tight_layout()

# %%
# Validation curve over the hidden size
# -------------------------------------
# Every estimator parameter can be tuned with scikit-learn's model selection tools. Here a
# short fit (15 epochs) per size and fold. Too few units underfit; where the
# cross-validated accuracy levels off, more units stop paying for their cost.

sizes = [4, 8, 16, 32, 64]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 15 epochs stop before convergence
    train_scores, valid_scores = validation_curve(
        RNNClassifier(cell="gru", learning_rate_init=5e-3, max_iter=15, random_state=0),
        X_train,
        y_train,
        param_name="hidden_layer_sizes",
        param_range=sizes,
        cv=3,
    )

fig, ax = plt.subplots(figsize=(7, 4))
for scores, label in [(train_scores, "training"), (valid_scores, "cross-validation")]:
    mean, std = scores.mean(axis=1), scores.std(axis=1)
    ax.plot(sizes, mean, "o-", label=label)
    ax.fill_between(sizes, mean - std, mean + std, alpha=0.2)
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(s) for s in sizes])
ax.set_xlabel("hidden units (hidden_layer_sizes)")
ax.set_ylabel("accuracy")
ax.set_title("Validation curve, 3-fold cross-validation")
ax.legend()
fig.tight_layout()
for size, v in zip(sizes, valid_scores.mean(axis=1)):
    print(f"{size:3d} units: cross-validated accuracy {v:.3f}")
