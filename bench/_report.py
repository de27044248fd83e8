"""Markdown rendering of a benchmark result (the dict that ``run.py`` writes as JSON)."""

import math
from collections import defaultdict
from statistics import median

#: The issue's training-step targets (float32): minimum speedup over PyTorch per cell and
#: hidden size, for 1 and 2 threads.
TRAIN_TARGETS = {
    1: {
        "rnn": {32: 5.0, 128: 2.0, 512: 1.0},
        "gru": {32: 5.0, 128: 2.0, 512: 1.0},
        "lstm": {32: 3.0, 128: 1.3, 512: 1.0},
    },
    2: {
        "rnn": {32: 5.0, 128: 2.0, 512: 1.0},
        "gru": {32: 5.0, 128: 2.0, 512: 1.0},
        "lstm": {32: 3.0, 128: 1.3, 512: 0.8},
    },
}
FLOAT64_TARGET = 2.0  # at hidden <= 128
GRID_GEOMEAN_TARGET = 2.5
BLAS_SHARE_TARGET = 0.85  # at hidden 512
STREAM_TARGET = 10.0
FIT_TARGET = 2.0  # at hidden 64
FIT_OUTSIDE_TARGET = 0.10
FIT_MEMORY_TARGET = 1.5


def _ms(times, scale=1e3):
    return f"{scale * median(times):.3g} ({scale * min(times):.3g}–{scale * max(times):.3g})"


def _x(ratio):
    return f"{ratio:.2f}x"


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _speedup(rec, peer, stat=median):
    """How many times faster crnn is than ``peer`` (ratio of medians, or of ``stat``), or None."""
    t = rec["times"]
    return stat(t[peer]) / stat(t["crnn"]) if peer in t and "crnn" in t else None


def _fmt(value, fmt=_x):
    return "–" if value is None else fmt(value)


def _check(rec):
    check = rec["check"]
    if check["agree"] is None:
        return "–"
    worst = max(check["errors"].values(), default=0.0)
    return f"{'yes' if check['agree'] else '**NO**'} ({worst:.0e})"


def _where(rec):
    return f"B={rec['B']} T={rec['T']} I={rec['I']} {rec['loss']}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _peers(records):
    present = {name for rec in records for name in rec["times"]}
    return [name for name in ("crnn", "torch", "numpy") if name in present]


def _train_section(records):
    peers = _peers(records)
    header = ["cell", "dtype", "loss", "B", "T", "I", "H"] + [f"{p} ms" for p in peers]
    header += ["vs torch", "vs numpy", "crnn GFLOP/s", "BLAS GFLOP/s", "of BLAS", "agree"]
    rows = []
    for rec in records:
        crnn_gflops = (
            rec["flops"] / median(rec["times"]["crnn"]) / 1e9 if "crnn" in rec["times"] else None
        )
        blas_gflops = rec["flops"] / rec["blas"]["seconds"] / 1e9
        rows.append(
            [rec["cell"], rec["dtype"], rec["loss"], rec["B"], rec["T"], rec["I"], rec["H"]]
            + [_ms(rec["times"][p]) for p in peers]
            + [
                _fmt(_speedup(rec, "torch")),
                _fmt(_speedup(rec, "numpy")),
                _fmt(crnn_gflops, "{:.1f}".format),
                f"{blas_gflops:.1f}",
                _fmt(None if crnn_gflops is None else crnn_gflops / blas_gflops, "{:.0%}".format),
                _check(rec),
            ]
        )
    return (
        "Times per training step in ms: median (min–max). `vs torch` / `vs numpy`: how many times "
        "faster crnn is (ratio of medians). GFLOP/s count the GEMMs only; `BLAS GFLOP/s` is "
        "SciPy's BLAS on the same GEMM shapes, each in its faster orientation, and `of BLAS` is "
        "crnn's share of it. `agree`: loss and every gradient match the reference "
        "(largest relative difference).\n\n" + _table(header, rows)
    )


def _target_row(what, target, items, met_by_mean=False):
    """A targets row over ``(speedup, best-time speedup, record)`` items."""
    worst, _, worst_rec = min(items, key=lambda item: item[0])
    geo = _geomean([r for r, _, _ in items])
    if target is None:
        met = "–"
    else:
        met = "yes" if (geo if met_by_mean else worst) >= target else "no"
    return [
        what,
        _fmt(target),
        _x(geo),
        _x(_geomean([b for _, b, _ in items])),
        f"{_x(worst)} ({worst_rec['cell']} H={worst_rec['H']} {_where(worst_rec)})",
        met,
    ]


def _targets_section(threads, train):
    items = defaultdict(list)
    for rec in train:
        if "crnn" in rec["times"] and "torch" in rec["times"]:
            item = (_speedup(rec, "torch"), _speedup(rec, "torch", min), rec)
            items[rec["dtype"], rec["cell"], rec["H"]].append(item)
    targets = TRAIN_TARGETS.get(threads, TRAIN_TARGETS[2])
    rows = [
        _target_row(f"train {cell} H={H} vs torch", targets[cell].get(H), group)
        for (dtype, cell, H), group in sorted(items.items())
        if dtype == "float32"
    ]
    grid = [item for (dtype, _, _), group in items.items() if dtype == "float32" for item in group]
    if grid:
        what = "train float32, all shapes"
        rows.append(_target_row(what, GRID_GEOMEAN_TARGET, grid, met_by_mean=True))
    f64 = [
        item
        for (dtype, _, H), group in items.items()
        if dtype == "float64" and H <= 128
        for item in group
    ]
    if f64:
        rows.append(_target_row("train float64 H≤128 vs torch", FLOAT64_TARGET, f64))
    shares = [
        r["blas"]["seconds"] / median(r["times"]["crnn"])
        for r in train
        if r["dtype"] == "float32" and r["H"] == 512 and "crnn" in r["times"]
    ]
    if shares:
        met = "yes" if min(shares) >= BLAS_SHARE_TARGET else "no"
        need = f"{BLAS_SHARE_TARGET:.0%}"
        rows.append(
            [
                "train H=512: share of the BLAS rate",
                need,
                f"{median(shares):.0%} (median)",
                "–",
                f"{min(shares):.0%}",
                met,
            ]
        )
    if not rows:
        return ""
    header = ["target", "needed", "geomean", "geomean of best times", "worst shape", "met"]
    return (
        "Training step: how many times faster crnn is than torch, from the medians and (to see "
        "through a loaded machine) from each side's best time. `met`: every shape reaches the "
        "target on medians (in the all-shapes row: the geometric mean does).\n\n"
        + _table(header, rows)
    )


def _infer_section(records, unit, scale, what):
    peers = _peers(records)
    # Streaming: the estimator's stream() against functional.Stream ("crnn").
    estimator = all("crnn_estimator" in r["times"] and "crnn" in r["times"] for r in records)
    header = (
        ["cell", "B", "T", "I", "H"]
        + [f"{p} {unit}" for p in peers]
        + ([f"estimator {unit}", "estimator / crnn"] if estimator else [])
        + ["vs torch", "vs numpy", "agree"]
    )
    rows = [
        [r["cell"], r["B"], r["T"], r["I"], r["H"]]
        + [_ms(r["times"][p], scale) for p in peers]
        + (
            [
                _ms(r["times"]["crnn_estimator"], scale),
                f"{median(r['times']['crnn_estimator']) / median(r['times']['crnn']):.2f}",
            ]
            if estimator
            else []
        )
        + [_fmt(_speedup(r, "torch")), _fmt(_speedup(r, "numpy")), _check(r)]
        for r in records
    ]
    return what + "\n\n" + _table(header, rows)


def _varlen_section(records):
    rows = []
    for r in records:
        t = r["times"]
        scale = {p: median(t[p]) / median(t[f"{p}_full"]) for p in ("crnn", "torch") if p in t}
        rows.append(
            [r["cell"], r["B"], r["T"], r["I"], r["H"], f"{r['real_fraction']:.2f}"]
            + [_fmt(scale.get(p), "{:.2f}".format) for p in ("crnn", "torch")]
            + [_ms(t[p]) if p in t else "–" for p in ("crnn", "torch")]
            + [_fmt(_speedup(r, "torch")), _check(r)]
        )
    header = [
        "cell",
        "B",
        "T",
        "I",
        "H",
        "real steps / padded",
        "crnn time ratio",
        "torch time ratio",
        "crnn ms",
        "torch ms",
        "vs torch",
        "agree",
    ]
    return (
        "Seq-to-vector training step on lengths spread from 10% to 100% of T. `time ratio`: "
        "time on the variable-length batch over time on the same batch at full length; it "
        "should follow `real steps / padded`.\n\n" + _table(header, rows)
    )


def _fit_section(records):
    peers = ("crnn", "torch", "jax")
    rows = []
    for r in records:
        t = r["times"]
        rate = {p: [r["epochs"] / s for s in t[p]] for p in peers if p in t}
        row = [r["cell"], r["dtype"], r["N"], r["T"], r["I"], r["H"], r["B"], r["epochs"]]
        row += [_ms(rate[p], 1) if p in rate else "–" for p in peers]
        row += [_fmt(_speedup(r, "torch")), _fmt(_speedup(r, "jax")), _check(r)]
        if "kernel_seconds" in r:
            row += [
                f"{1 - r['kernel_seconds'] / r['fit_seconds']:.0%}",
                f"{r['peak_bytes'] / 1e6:.1f}",
                f"{r['needed_bytes'] / 1e6:.1f}",
                f"{r['peak_bytes'] / r['needed_bytes']:.2f}x",
            ]
        else:
            row += ["–"] * 4
        rows.append(row)
    header = [
        "cell",
        "dtype",
        "N",
        "T",
        "I",
        "H",
        "batch",
        "epochs",
        "crnn epochs/s",
        "torch epochs/s",
        "jax epochs/s",
        "vs torch",
        "vs jax",
        "jax agrees",
    ]
    header += ["crnn time outside kernels", "crnn peak MB", "needed MB", "peak / needed"]
    return (
        "`RNNRegressor.fit` (Adam, seq-to-vector, no L2, clipping, dropout or early stopping) against "
        "hand-written PyTorch and JAX loops (JAX: `lax.scan`, `optax.adam`, one jitted call per "
        "minibatch, compiled before timing) with the same model, optimizer, learning rate, "
        "batch size and epochs: epochs per second, median (min–max). `vs torch` / `vs jax`: "
        "their time over crnn's (ratio of medians; above 1: crnn faster). `jax agrees`: the "
        "JAX loop's loss, gradients and loss after one Adam step against the PyTorch loop's "
        "from the same weights (largest relative difference). `time outside kernels`: share of "
        "one `fit()` not spent in crnn's compiled minibatch calls (`_kernels.TrainStep`: "
        "layers, loss, backward, update). `peak`: tracemalloc's "
        "peak (NumPy allocations) over making the data and fitting; `needed`: the data, "
        "parameters with gradient and two Adam moments, and one batch of activations.\n\n"
        + _table(header, rows)
    )


def _fit_targets(fit):
    lines = []
    speedups = [_speedup(r, "torch") for r in fit if r["H"] == 64]
    speedups = [s for s in speedups if s is not None]
    if speedups:
        met = "yes" if min(speedups) >= FIT_TARGET else "no"
        worst = _x(min(speedups))
        lines.append(
            f"fit() at hidden 64 ≥ {_x(FIT_TARGET)} the PyTorch loop: worst {worst}, met: {met}."
        )
    outside = [1 - r["kernel_seconds"] / r["fit_seconds"] for r in fit if "kernel_seconds" in r]
    if outside:
        met = "yes" if max(outside) <= FIT_OUTSIDE_TARGET else "no"
        need, worst = f"{FIT_OUTSIDE_TARGET:.0%}", f"{max(outside):.0%}"
        lines.append(f"fit() time outside the kernels ≤ {need}: worst {worst}, met: {met}.")
        memory = [r["peak_bytes"] / r["needed_bytes"] for r in fit]
        met = "yes" if max(memory) <= FIT_MEMORY_TARGET else "no"
        worst = _x(max(memory))
        lines.append(
            f"fit() peak memory ≤ {_x(FIT_MEMORY_TARGET)} the need: worst {worst}, met: {met}."
        )
    return "".join(f"\n{line}\n" for line in lines)


def _stream_targets(stream):
    ratios = [_speedup(r, "torch") for r in stream]
    ratios = [r for r in ratios if r is not None]
    if not ratios:
        return ""
    met = "yes" if min(ratios) >= STREAM_TARGET else "no"
    need, worst = _x(STREAM_TARGET), _x(min(ratios))
    return f"\nStreaming latency ≥ {need} lower than torch's: worst {worst}, met: {met}.\n"


def _slower_than_torch(train):
    slow = [(_speedup(r, "torch"), _speedup(r, "torch", min), r) for r in train]
    slow = sorted(
        (item for item in slow if item[0] is not None and item[0] < 1.0), key=lambda item: item[0]
    )
    if not slow:
        return ""
    lines = ["\n**Training steps where crnn is slower than torch** (medians; best times):\n"]
    lines += [
        f"- {r['cell']} {r['dtype']} H={r['H']} {_where(r)}: {_x(ratio)}; {_x(best)}"
        for ratio, best, r in slow
    ]
    return "\n".join(lines) + "\n"


def _threads_line(run):
    pools = ", ".join(
        f"{p['internal_api']} {p.get('version') or ''} ({p['prefix']}): {p['num_threads']}"
        for p in run["threadpools"]
    )
    torch_threads = run.get("torch_threads")
    jax = run.get("jax_settings")
    if jax is not None:
        jax = "; JAX: " + ", ".join(f"{k}=`{v}`" for k, v in jax.items() if v is not None)
    skipped = "".join(f" {note}." for note in run.get("skipped", {}).values())
    return (
        f"Threads: {pools}"
        + ("" if torch_threads is None else f"; torch.get_num_threads() = {torch_threads}")
        + (jax or "")
        + "."
        + skipped
    )


def _heading(title, note):
    return f"\n### {title}\n{note}\n"


def render(result):
    """The Markdown report of a result dict."""
    m = result["machine"]
    first = result["runs"][0]
    versions = ", ".join(f"{k} {v}" for k, v in first["versions"].items())
    out = [
        f"# crnn benchmark: profile `{result['profile']}`\n",
        f"Command: `{result['command']}` ({result['date']}, git {result['git']})\n",
        f"Machine: {m['cpu']}, {m['cpu_count']} logical CPUs, {m['platform']}, "
        f"Python {m['python']}; {versions}.\n",
        f"Settings: {result['settings']}.\n",
    ]
    for run in result["runs"]:
        by_bench = defaultdict(list)
        for rec in run["records"]:
            by_bench[rec["bench"]].append(rec)
        n = run["threads"]
        out.append(f"\n## {n} thread{'s' if n > 1 else ''}\n")
        out.append(
            _threads_line(run)
            + f" Load average before / after: {run['loadavg'][0]} / {run['loadavg'][1]}.\n"
        )
        # crnn runs several threads differently from its peers: every table says how.
        mode = run.get("crnn_mode") if n > 1 else None
        note = f"\n**crnn's {n}-thread mode: {mode}.**\n" if mode else ""

        targets = _targets_section(n, by_bench["train"]) + _stream_targets(by_bench["stream"])
        targets += _fit_targets(by_bench["fit"]) + _slower_than_torch(by_bench["train"])
        if targets:
            out.append(_heading("Targets", note) + targets)
        if by_bench["train"]:
            out.append(_heading("Training step", note) + _train_section(by_bench["train"]))
        if by_bench["infer"]:
            out.append(
                _heading("Inference", note)
                + _infer_section(
                    by_bench["infer"], "ms", 1e3, "Forward pass over the whole batch, ms."
                )
            )
        if by_bench["stream"]:
            out.append(
                _heading("Streaming", note)
                + _infer_section(
                    by_bench["stream"],
                    "µs/step",
                    1e6,
                    "One sequence, one call per step with the state carried: µs per step.",
                )
            )
        if by_bench["varlen"]:
            out.append(
                _heading("Variable-length batches", note) + _varlen_section(by_bench["varlen"])
            )
        if by_bench["fit"]:
            out.append(_heading("fit() end to end", note) + _fit_section(by_bench["fit"]))
    return "".join(out)
