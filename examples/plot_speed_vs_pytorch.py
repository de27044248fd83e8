"""
=========================
Speed against PyTorch CPU
=========================

How many times faster crnn's training step and streamed step are than PyTorch's on the
CPU, read from the benchmark results committed with the source
(``bench/results/full.json``, written by ``python bench/run.py --profile full``). Nothing
is timed here: the figures show that one recorded run, on the 2-core machine described in
``bench/RESULTS.md``, one thread, float32, PyTorch 2.13 in the same run. Run the benchmark
on your own machine for figures that describe it.
"""

import json
from pathlib import Path
from statistics import median

import matplotlib.pyplot as plt
import numpy as np

# The documentation build runs each example in its own directory, without __file__.
examples = Path(__file__).parent if "__file__" in globals() else Path.cwd()
results = examples.resolve().parent / "bench" / "results" / "full.json"
bench = json.loads(results.read_text())
run = next(r for r in bench["runs"] if r["threads"] == 1)
print(
    f"run of {bench['date']} at commit {bench['git']}: {bench['machine']['cpu']}, "
    f"{bench['machine']['cpu_count']} CPUs, {run['crnn_mode']}"
)
print("versions:", ", ".join(f"{k} {v}" for k, v in run["versions"].items()))


def speedup(record):
    """torch's median time over crnn's (above 1: crnn is faster)."""
    return median(record["times"]["torch"]) / median(record["times"]["crnn"])


cells, hidden = ["rnn", "gru", "lstm"], [32, 128, 512]

# %%
# The training step
# -----------------
# One forward pass, a linear head with a squared-error loss and backpropagation through
# time, over a grid of 16 shapes per cell and hidden size (batch 32 and 128, 20 and 100
# steps, 8 and 64 input features, the loss on the last step or on every step). Each bar
# (and its label) is the geometric mean of the 16 ratios; the dots are the single shapes.

train = [r for r in run["records"] if r["bench"] == "train" and r["dtype"] == "float32"]
fig, ax = plt.subplots(figsize=(7, 4))
width = 0.27
for i, cell in enumerate(cells):
    for j, H in enumerate(hidden):
        ratios = [speedup(r) for r in train if r["cell"] == cell and r["H"] == H]
        mean = float(np.exp(np.mean(np.log(ratios))))
        x = j + (i - 1) * width
        ax.bar(x, mean, width, color=f"C{i}", label=cell.upper() if j == 0 else None)
        ax.plot(np.full(len(ratios), x), ratios, "k.", alpha=0.4, ms=4)
        ax.text(
            x,
            0.15,
            f"{mean:.1f}x",
            ha="center",
            va="bottom",
            fontsize=8,
            color="white",
            fontweight="bold",
        )
ax.axhline(1, color="k", lw=0.8)
ax.set_xticks(range(len(hidden)), [f"hidden size {H}" for H in hidden])
ax.set_ylabel("speedup over PyTorch (x)")
ax.set_title("Training step, 1 thread, float32")
ax.legend()
fig.tight_layout()

# %%
# The streamed step
# -----------------
# One sequence fed one step per call with the state carried:
# :class:`crnn.functional.Stream` against calling the PyTorch module once per step.
# The latency is per step, in microseconds, on a logarithmic scale.

stream = {(r["cell"], r["H"]): r for r in run["records"] if r["bench"] == "stream"}
fig, axes = plt.subplots(1, len(cells), figsize=(9, 3.4), sharey=True)
for ax, cell in zip(axes, cells):
    for k, (impl, label) in enumerate([("crnn", "crnn Stream"), ("torch", "PyTorch")]):
        us = [1e6 * median(stream[cell, H]["times"][impl]) for H in hidden]
        bars = ax.bar(
            np.arange(len(hidden)) + (k - 0.5) * 0.4, us, 0.4, color=f"C{k + 3}", label=label
        )
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(hidden)), [str(H) for H in hidden])
    ax.set_xlabel("hidden size")
    ax.set_title(cell.upper())
axes[0].set_ylabel("µs per step")
axes[0].legend(loc="upper left", fontsize=8)
fig.tight_layout()

for cell in cells:
    print(
        cell,
        "stream speedup at hidden 32/128/512:",
        " / ".join(f"{speedup(stream[cell, H]):.1f}x" for H in hidden),
    )

# %%
# ``fit()`` against a PyTorch training loop
# -----------------------------------------
# :class:`~crnn.RNNRegressor` ``.fit`` against a hand-written PyTorch loop training the
# same model (Adam, the same learning rate, batch size and number of epochs; crnn's L2
# penalty, clipping and early stopping off): epochs per second.

for r in (r for r in run["records"] if r["bench"] == "fit"):
    print(
        f"{r['N']} sequences of {r['T']} steps, {r['I']} features, hidden size {r['H']}, "
        f"batch {r['B']}, {r['epochs']} epochs"
    )
    rate = {impl: r["epochs"] / median(t) for impl, t in r["times"].items()}
    print(
        f"{r['cell']}: crnn {rate['crnn']:.1f} epochs/s, PyTorch {rate['torch']:.1f} "
        f"epochs/s, {rate['crnn'] / rate['torch']:.1f}x"
    )
