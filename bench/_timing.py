"""Interleaved timing of several callables: medians with min-max over repeats."""

import gc
import math
import statistics
import time
from contextlib import nullcontext


def interleaved(fns, repeats, min_time, max_time, min_repeats=3, contexts=None):
    """Seconds per call of each callable, sampled in turn.

    Every callable is first called once to warm up (and again to calibrate if that was
    quick). Each sample then runs enough calls to last ``min_time`` seconds. The order of
    the callables rotates from one repeat to the next, so that a slow phase of a shared
    machine hits each of them alike. The garbage collector is off while timing.

    Parameters
    ----------
    fns : dict of str to callable
    repeats : int
        Samples per callable, lowered (not below ``min_repeats``) to keep the sampling of
        all callables within ``max_time`` seconds.
    min_time, max_time : float
    contexts : dict of str to callable, optional
        For some callables, a factory of the context they run in (warm-up and every sample),
        e.g. a thread-pool limit: set once per sample, as a program would set it once, so
        that its cost is not counted.

    Returns
    -------
    samples : dict of str to list of float
    outputs : dict of str to object
        What each callable returned on its warm-up call.
    """
    contexts = {name: (contexts or {}).get(name, nullcontext) for name in fns}
    outputs, calls, per_call = {}, {}, {}
    for name, fn in fns.items():
        with contexts[name]():
            t0 = time.perf_counter()
            outputs[name] = fn()
            first = time.perf_counter() - t0
            if first < 0.1:
                t0 = time.perf_counter()
                fn()
                first = time.perf_counter() - t0
        calls[name] = max(1, math.ceil(min_time / max(first, 1e-9)))
        per_call[name] = first
    round_time = sum(calls[name] * per_call[name] for name in fns)
    repeats = max(min_repeats, min(repeats, int(max_time / max(round_time, 1e-9))))
    names = list(fns)
    samples = {name: [] for name in names}
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                fn, n = fns[name], calls[name]
                with contexts[name]():
                    t0 = time.perf_counter()
                    for _ in range(n):
                        fn()
                    samples[name].append((time.perf_counter() - t0) / n)
    finally:
        gc.enable()
    return samples, outputs


def summary(samples):
    """Median, min and max of a list of timings."""
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}
