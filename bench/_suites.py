"""The benchmarks: each runs one case with every implementation and returns a JSON-ready record.

Before a case is timed, every implementation's results (loss and all gradients, or the final
hidden state) are compared with the NumPy reference's (or PyTorch's where NumPy does not take
part): a record says how far apart they were and whether that is within tolerance, so a fast
but wrong kernel cannot pass unnoticed.
"""

from dataclasses import asdict, dataclass
from statistics import median

import numpy as np

import _blas_rate
from _problem import gemm_flops, make_problem, spread_lengths, training_gemms
from _timing import interleaved

#: Relative difference (Frobenius norm) beyond which two implementations disagree.
TOLERANCE = {"float32": 1e-3, "float64": 1e-8}


@dataclass(frozen=True)
class Settings:
    """How hard to sample: see :func:`_timing.interleaved`."""

    repeats: int
    min_time: float
    max_time: float


def _rel_err(a, b):
    if isinstance(b, dict):
        return max(_rel_err(a[k], b[k]) for k in b)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(np.float64).tiny))


def _check(results, dtype):
    """Relative difference of each implementation's results from the reference's."""
    ref = next((name for name in ("numpy", "torch") if name in results), None)
    if ref is None:
        return {"reference": None, "errors": {}, "agree": None}
    errors = {name: _rel_err(res, results[ref]) for name, res in results.items() if name != ref}
    if not errors:
        return {"reference": ref, "errors": {}, "agree": None}
    return {
        "reference": ref,
        "errors": errors,
        "agree": all(e <= TOLERANCE[dtype] for e in errors.values()),
    }


def _sample(fns, settings, impls):
    """Sample ``fns``, those of an implementation (``crnn``, ``crnn_full``, ...) in its
    context."""
    contexts = {
        name: impls[name.partition("_")[0]].context
        for name in fns
        if name.partition("_")[0] in impls
    }
    return interleaved(
        fns, settings.repeats, settings.min_time, settings.max_time, contexts=contexts
    )


def train(impls, shape, loss, settings):
    """One training step (forward, loss, BPTT) and the BLAS time of its GEMMs."""
    problem = make_problem(shape, loss)
    steps, grads = {}, {}
    for name, impl in impls.items():
        steps[name], grads[name] = impl.train(problem)
    gemms = training_gemms(shape)
    # The step's GEMMs alone on the BLAS, sampled in turn with the implementations.
    steps["blas"], per_gemm = _blas_rate.step_runner(gemms, shape.dtype, settings.min_time)
    samples, losses = _sample(steps, settings, impls)
    blas_samples = samples.pop("blas")
    results = {name: {**grads[name](), "loss": losses[name]} for name in impls}
    return {
        "bench": "train",
        **asdict(shape),
        "loss": loss,
        "flops": gemm_flops(gemms),
        "times": samples,
        "check": _check(results, shape.dtype),
        "blas": {"seconds": median(blas_samples), "samples": blas_samples, "gemms": per_gemm},
    }


def infer(impls, shape, settings):
    """A forward pass over a whole batch, nothing kept for backward."""
    problem = make_problem(shape)
    samples, outputs = _sample(
        {name: impl.infer(problem) for name, impl in impls.items()}, settings, impls
    )
    return {
        "bench": "infer",
        **asdict(shape),
        "times": samples,
        "check": _check(outputs, shape.dtype),
    }


def stream(impls, shape, settings):
    """``shape.T`` calls of one step each, the state carried; times are per step.

    With crnn, also ``crnn_estimator``: a fitted estimator's ``stream()``, whose steps add
    the output layer and the prediction to ``functional.Stream``'s.
    """
    problem = make_problem(shape)
    fns = {name: impl.stream(problem) for name, impl in impls.items()}
    if "crnn" in impls:
        fns["crnn_estimator"] = impls["crnn"].stream_estimator(problem)
    samples, outputs = _sample(fns, settings, impls)
    per_step = {name: [t / shape.T for t in times] for name, times in samples.items()}
    return {
        "bench": "stream",
        **asdict(shape),
        "times": per_step,
        "check": _check(outputs, shape.dtype),
    }


def varlen(impls, shape, settings):
    """A seq-to-vector training step on lengths spread over 10%..100% of T, and on full lengths.

    Implementations without variable-length support (the NumPy reference) are left out.
    """
    lengths = spread_lengths(shape.T, shape.B)
    padded = make_problem(shape, "s2v", lengths=lengths)
    full = make_problem(shape, "s2v")
    impls = {name: impl for name, impl in impls.items() if name != "numpy"}
    steps, grads = {}, {}
    for name, impl in impls.items():
        steps[name], grads[name] = impl.train(padded)
        steps[f"{name}_full"], _ = impl.train(full)
    samples, losses = _sample(steps, settings, impls)
    results = {name: {**grads[name](), "loss": losses[name]} for name in impls}
    return {
        "bench": "varlen",
        **asdict(shape),
        "real_fraction": float(lengths.sum() / (shape.T * shape.B)),
        "times": samples,
        "check": _check(results, shape.dtype),
    }
