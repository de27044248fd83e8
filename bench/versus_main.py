"""``fit()`` of this checkout against another build of crnn (the previous main), same run.

Usage (from the repository root; the other checkout built in place, e.g. with
``git worktree add ../base <rev> && (cd ../base && python setup.py build_ext --inplace)``)::

    python bench/versus_main.py --baseline ../base            # the fit cases, 1 and 2 threads

Both builds train the same cases as the ``fit`` suite (``_fit.FitCase``, the estimator of
``_fit._crnn_fit``), each in its own worker process (two builds of one package cannot share
a process), the workers alternating so that a slow phase of the shared machine hits both
alike. It prints, per case, the seconds per epoch of each (min of the samples) and their
ratio, and writes them to ``bench/results/versus_main.json``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)


def cases():
    from _fit import FitCase

    small = [FitCase(c, "float32", N=2000, T=10, I=4, H=16, B=32, epochs=3) for c in ("lstm", "gru")]
    h64 = [
        FitCase(c, "float32", N=2048, T=50, I=8, H=64, B=64, epochs=1) for c in ("rnn", "lstm", "gru")
    ]
    return small + h64


def worker(case, threads, repeats):
    """Seconds per epoch of each of ``repeats`` fits (after one warm-up fit)."""
    from threadpoolctl import threadpool_limits

    from _fit import _crnn_fit, _data

    X, y = _data(case)
    run = _crnn_fit(case, X, y, threads if threads > 1 else None)
    times = []
    with threadpool_limits(1):  # crnn keeps BLAS on one thread itself; also for the old build
        run()
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) / case.epochs)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a checkout with crnn built in place")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="worker pairs per case")
    parser.add_argument("--repeats", type=int, default=3, help="fits per worker")
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        from _fit import FitCase

        case = FitCase(**spec["case"])
        print(json.dumps(worker(case, spec["threads"], spec["repeats"])))
        return
    builds = {"this": os.path.join(ROOT, "src"), "baseline": os.path.join(args.baseline, "src")}
    records = []
    for threads in args.threads:
        for case in [c for c in cases() if c.cell in args.cells and c.H in args.hidden]:
            samples = {name: [] for name in builds}
            for r in range(args.rounds):
                for name in list(builds)[r % 2 :] + list(builds)[: r % 2]:
                    spec = dict(case=asdict(case), threads=threads, repeats=args.repeats)
                    env = {**os.environ, "PYTHONPATH": builds[name] + os.pathsep + BENCH_DIR}
                    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                        env[var] = "1"
                    out = subprocess.run(
                        [sys.executable, __file__, "--baseline", args.baseline, "--worker",
                         json.dumps(spec)],
                        env=env, capture_output=True, text=True, check=True,
                    )
                    samples[name] += json.loads(out.stdout.strip().splitlines()[-1])
            best = {name: min(s) for name, s in samples.items()}
            record = {
                **asdict(case), "threads": threads, "samples": samples,
                "speedup": best["baseline"] / best["this"],
            }
            records.append(record)
            print(
                f"{case.cell:4} H={case.H:3} N={case.N} T={case.T} B={case.B} threads={threads}: "
                f"this {best['this'] * 1e3:7.1f} ms/epoch, baseline "
                f"{best['baseline'] * 1e3:7.1f} ms/epoch, speedup {record['speedup']:.2f}x",
                flush=True,
            )
    os.makedirs(os.path.join(BENCH_DIR, "results"), exist_ok=True)
    with open(os.path.join(BENCH_DIR, "results", "versus_main.json"), "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "cases": records}, f,
                  indent=1)


if __name__ == "__main__":
    sys.path.insert(0, BENCH_DIR)
    main()
