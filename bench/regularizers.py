"""What the readouts and the dropouts of issue 12 cost against the step loop.

One training step of a one-layer network (``functional.forward`` + ``backward`` without the
input gradient, as the estimators run it), float32, BLAS on one thread, with:
  - the readout of each sequence (``"last"``: the final states, the estimators' path through
    ``dh_n``; ``"mean"``, ``"max"``, ``"attention"``: ``readout_forward`` + ``readout_backward``
    + the gradient back through ``dY``),
  - recurrent dropout, input dropout (p = 0.25),
and prints a Markdown table of the medians and the ratios (of medians, and of best times) to
the plain step (readout ``"last"``, no dropout). Usage: ``python bench/regularizers.py [--quick]``.
"""
import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved  # noqa: E402

from crnn import functional as F  # noqa: E402


def step_fns(cell, T, B, I, H, dtype=np.float32):
    """name -> callable running one forward + backward."""
    rng = np.random.default_rng(0)
    layout = F.RNNLayout(cell, I, (H,))
    params = F.init_params(layout, random_state=0, dtype=dtype)
    X = rng.normal(size=(T, B, I)).astype(dtype)
    lengths = np.full(B, T)
    dfeat = rng.normal(size=(B, H)).astype(dtype)
    attention = F.init_readout_params("attention", H, random_state=0, dtype=dtype)

    def plain(**dropout):
        def run():
            _, (h_n, _), cache = F.forward(layout, params, X, lengths, random_state=0,
                                           check_finite=False, **dropout)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, short samples")
    args = parser.parse_args()
    shapes = [("lstm", 100, 32, 16, 64), ("lstm", 100, 32, 16, 128), ("gru", 100, 32, 16, 64),
              ("gru", 100, 32, 16, 128), ("rnn", 200, 32, 1, 32)]
    if args.quick:
        shapes = shapes[:1]
    print("| cell | T | B | I | H | variant | ms (median) | ratio (median) | ratio (best) |")
    print("|---|---|---|---|---|---|---|---|---|")
    with threadpool_limits(1, user_api="blas"):
        for shape in shapes:
            fns = step_fns(*shape)
            samples, _ = interleaved(fns, repeats=7 if not args.quick else 3,
                                     min_time=0.05 if args.quick else 0.2,
                                     max_time=10 if args.quick else 40)
            base = samples["last (plain step)"]
            for name, times in samples.items():
                t = statistics.median(times)
                print(f"| {' | '.join(map(str, shape))} | {name} | {1e3 * t:.2f} | "
                      f"{t / statistics.median(base):.2f} | {min(times) / min(base):.2f} |")


if __name__ == "__main__":
    main()
