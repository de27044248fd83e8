"""Benchmark crnn against PyTorch CPU, a plain NumPy implementation and (fit) a JAX loop.

Usage (from the repository root)::

    python bench/run.py                  # the quick profile, 1 and 2 threads
    nice -n 10 python bench/run.py --profile full

Each thread count runs in a fresh worker process in which every library gets that many
threads: the BLAS libraries through the environment and threadpoolctl, PyTorch through
``torch.set_num_threads``, JAX's XLA (at one thread) through its environment; crnn alone,
with several threads, splits its batches over them and keeps BLAS on one thread (see
``_impls``). The results are written to ``bench/results/<profile>.json`` and
``bench/results/<profile>.md``. See bench/README.md for what is measured and how.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from _impls import NAMES
from _profiles import PROFILES

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SUITES = ("train", "infer", "stream", "varlen", "fit")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="thread counts, one worker each"
    )
    parser.add_argument(
        "--impls", nargs="+", choices=NAMES, default=list(NAMES), help="implementations to run"
    )
    parser.add_argument(
        "--suites", nargs="+", choices=SUITES, default=list(SUITES), help="benchmarks to run"
    )
    parser.add_argument(
        "--repeats", type=int, help="timing samples per case (default: the profile's)"
    )
    parser.add_argument(
        "--min-time", type=float, help="seconds per sample at least (default: the profile's)"
    )
    parser.add_argument(
        "--max-time",
        type=float,
        help="seconds of sampling per case at most (default: the profile's)",
    )
    parser.add_argument(
        "--out", default=os.path.join(BENCH_DIR, "results"), help="directory for the results"
    )
    parser.add_argument(
        "--render", metavar="JSON", help="only rewrite the Markdown of a results file"
    )
    # Internal: the JSON file a worker writes.
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.threads):
        parser.error("--threads must be positive")
    profile = PROFILES[args.profile]()
    args.repeats = args.repeats or profile.repeats
    args.min_time = profile.min_time if args.min_time is None else args.min_time
    args.max_time = profile.max_time if args.max_time is None else args.max_time
    if args.repeats < 1 or args.min_time < 0 or args.max_time < 0:
        parser.error("--repeats must be positive, --min-time and --max-time not negative")
    return args


def _versions(impls):
    import numpy
    import scipy
    import threadpoolctl

    versions = {
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "threadpoolctl": threadpoolctl.__version__,
    }
    if "crnn" in impls:
        import crnn

        versions["crnn"] = getattr(crnn, "__version__", "unknown")
    if "torch" in impls:
        versions["torch"] = impls["torch"].torch.__version__
    if "jax" in impls:
        import jaxlib

        versions["jax"] = impls["jax"].jax.__version__
        versions["jaxlib"] = jaxlib.__version__
        versions["optax"] = impls["jax"].optax.__version__
    return versions


def _describe(rec):
    t = rec["times"]
    medians = ", ".join(
        f"{name} {1e3 * statistics.median(times):.3g} ms" for name, times in t.items()
    )
    agree = rec["check"]["agree"]
    flag = "" if agree in (True, None) else f"  DISAGREE {rec['check']['errors']}"
    shape = " ".join(f"{k}={rec[k]}" for k in ("B", "T", "I", "H"))
    what = f"{rec['bench']} {rec['cell']} {rec['dtype']} {shape} {rec.get('loss', '')}"
    return f"{what}: {medians}{flag}"


def _settle_malloc():
    """Put glibc's malloc where a process that has handled some data has it, for every case.

    glibc maps blocks above its mmap threshold (128 KiB at start) afresh on every allocation
    and raises the threshold, up to 32 MiB, each time such a block is freed. Until then, the
    MB-sized arrays of every training step fault in their pages again on each use: 1.4-2 us a
    4 KiB page on this VM, which doubled crnn's RNN step at B=128, T=100, I=64, H=32 (6.9 ms
    against 3.2) and slowed torch's steps as much. Which cases ran earlier then decided which
    ones paid. One block of 30 MiB, allocated and freed here, settles the threshold for all.
    """
    import numpy as np

    np.ones(30 << 20, dtype=np.uint8)


def worker(args):
    """Run the suites with ``args.threads[0]`` threads and write the records as JSON."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import _fit
    import _impls
    import _suites

    n = args.threads[0]
    _settle_malloc()
    # Import every library before limiting, so that threadpoolctl sees all their pools.
    impls, skipped = {}, {}
    for name in args.impls:
        try:
            impls[name] = _impls.load(name, n)
        except ImportError as exc:
            if name not in _impls.OPTIONAL:
                raise
            skipped[name] = f"{name} is left out ({exc}); {_impls.OPTIONAL[name]}"
            print(f"[{n} thr] {skipped[name]}", file=sys.stderr, flush=True)
    limiter = threadpool_limits(limits=n)  # noqa: F841 (in force while it lives)
    if "torch" in impls:
        impls["torch"].torch.set_num_threads(n)
    settings = _suites.Settings(args.repeats, args.min_time, args.max_time)
    profile = PROFILES[args.profile]()
    loadavg = [round(os.getloadavg()[0], 2)]
    benches = {
        "infer": _suites.infer,
        "stream": _suites.stream,
        "varlen": _suites.varlen,
        "fit": _fit.fit,
    }
    records = []
    for suite in args.suites:
        # Only the implementations that take part in the suite (JAX: fit).
        taking_part = {
            name: impl
            for name, impl in impls.items()
            if impl.suites is None or suite in impl.suites
        }
        for case in getattr(profile, suite):
            if suite == "train":
                rec = _suites.train(taking_part, *case, settings)
            else:
                rec = benches[suite](taking_part, case, settings)
            print(f"[{n} thr] {_describe(rec)}", file=sys.stderr, flush=True)
            records.append(rec)
    loadavg.append(round(os.getloadavg()[0], 2))
    run = {
        "threads": n,
        "threadpools": threadpool_info(),
        "torch_threads": impls["torch"].torch.get_num_threads() if "torch" in impls else None,
        "crnn_mode": impls["crnn"].mode if "crnn" in impls else None,
        "jax_settings": impls["jax"].settings if "jax" in impls else None,
        "skipped": skipped,
        "versions": _versions(impls),
        "loadavg": loadavg,
        "records": records,
    }
    with open(args.worker, "w") as f:
        json.dump(run, f)


def _machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        )
        flags = next(line for line in info.splitlines() if line.startswith("flags")).split()
        cpu += " (" + ", ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) + ")"
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _git_commit():
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    from _report import render

    if args.render:
        with open(args.render) as f:
            result = json.load(f)
        with open(os.path.splitext(args.render)[0] + ".md", "w") as f:
            f.write(render(result))
        return 0
    started = time.perf_counter()
    git = _git_commit()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.threads:
            path = os.path.join(tmp, f"threads{n}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", path, "--threads", str(n)]
            cmd += ["--profile", args.profile, "--impls", *args.impls, "--suites", *args.suites]
            cmd += [
                "--repeats",
                str(args.repeats),
                "--min-time",
                str(args.min_time),
                "--max-time",
                str(args.max_time),
            ]
            env = {**os.environ, **{var: str(n) for var in THREAD_VARS}}
            if subprocess.run(cmd, env=env).returncode != 0:
                print(f"the {n}-thread worker failed (see above)", file=sys.stderr)
                return 1
            with open(path) as f:
                runs.append(json.load(f))
    result = {
        "profile": args.profile,
        "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "git": git,
        "machine": _machine(),
        "settings": {"repeats": args.repeats, "min_time": args.min_time, "max_time": args.max_time},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, args.profile)
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(render(result))
    disagree = [
        rec for run in result["runs"] for rec in run["records"] if rec["check"]["agree"] is False
    ]
    print(f"wrote {stem}.json and {stem}.md in {result['wall_seconds']} s", file=sys.stderr)
    if disagree:
        print(
            f"{len(disagree)} case(s) where the implementations disagree: see the 'agree' columns",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
