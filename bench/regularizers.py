"""What the readouts and the dropouts of issue 12 cost against the step loop.

One training step of a one-layer network (``functional.forward`` + ``backward`` without the
input gradient, as the estimators run it), float32, BLAS on one thread, with:
  - the readout of each sequence (``"last"``: the final states, the estimators' path through
    ``dh_n``; ``"mean"``, ``"max"``, ``"attention"``: ``readout_forward`` + ``readout_backward``
    + the gradient back through ``dY``),
  - recurrent dropout, input dropout (p = 0.25),
and prints a Markdown table of the fastest call of each variant and its ratio to the plain
step's (readout ``"last"``, no dropout), with the ratio of the medians beside it. The variants
are called in turn, one call each, ``--calls`` times: on a loaded machine the fastest of many
interleaved calls is the steadiest statistic (a call that ran undisturbed), and ratios within
one run compare like with like. Usage: ``python bench/regularizers.py [--quick]``.
"""

import argparse
import gc
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from crnn import functional as F


def step_fns(cell, T, B, I, H, dtype=np.float32):
    """name -> callable running one forward + backward."""
    rng = np.random.default_rng(0)
    layout = F.RNNLayout(cell, I, (H,))
    params = F.init_params(layout, random_state=0, dtype=dtype)
    X = rng.normal(size=(T, B, I)).astype(dtype)
    lengths = np.full(B, T)
    dfeat = rng.normal(size=(B, H)).astype(dtype)
    attention = F.init_readout_params("attention", H, random_state=0, dtype=dtype)

    masks = np.random.RandomState(0)  # one generator for every call, as the estimators pass

    def plain(**dropout):
        def run():
            _, (h_n, _), cache = F.forward(
                layout, params, X, lengths, random_state=masks, check_finite=False, **dropout
            )
            dh_n = [dfeat[None]]
            return F.backward(cache, None, dh_n, check_finite=False, input_grad=False)[3]

        return run

    def pooled(kind):
        p = attention if kind == "attention" else None

        def run():
            Y, _, cache = F.forward(layout, params, X, lengths, check_finite=False)
            _, rcache = F.readout_forward(kind, Y, lengths, p, check_finite=False)
            dY, _ = F.readout_backward(rcache, dfeat, check_finite=False)
            return F.backward(cache, dY, check_finite=False, input_grad=False)[3]

        return run

    return {
        "last (plain step)": plain(),
        "mean": pooled("mean"),
        "max": pooled("max"),
        "attention": pooled("attention"),
        "recurrent_dropout=0.25": plain(recurrent_dropout=0.25),
        "input_dropout=0.25": plain(input_dropout=0.25),
    }


def sample(fns, calls):
    """Seconds of each of ``calls`` calls of every callable, called in turn (after one
    warm-up call each), with the garbage collector off."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    gc.disable()
    try:
        for _ in range(calls):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, 5 calls")
    parser.add_argument("--calls", type=int, default=60, help="calls of each variant")
    args = parser.parse_args()
    np.ones(30 << 20, dtype=np.uint8)  # settle glibc's mmap threshold (run.py, _settle_malloc)
    shapes = [
        ("lstm", 100, 32, 16, 64),
        ("lstm", 100, 32, 16, 128),
        ("gru", 100, 32, 16, 64),
        ("gru", 100, 32, 16, 128),
        ("rnn", 200, 32, 1, 32),
    ]
    if args.quick:
        shapes = shapes[:1]
    print("| cell | T | B | I | H | variant | ms (fastest) | ratio (fastest) | ratio (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    with threadpool_limits(1, user_api="blas"):
        for shape in shapes:
            samples = sample(step_fns(*shape), 5 if args.quick else args.calls)
            base = samples["last (plain step)"]
            for name, times in samples.items():
                print(
                    f"| {' | '.join(map(str, shape))} | {name} | {1e3 * min(times):.2f} | "
                    f"{min(times) / min(base):.2f} | "
                    f"{statistics.median(times) / statistics.median(base):.2f} |"
                )


if __name__ == "__main__":
    main()
