"""Does crnn learn well with default settings? crnn against the baselines a user tries first.

For every task of ``_accuracy_tasks.py`` and several seeds: crnn's estimators with default
settings (only what a user must say: the random seed), 1-nearest-neighbour, a flat MLP,
a no-skill predictor, and a PyTorch model of the same size. Run from the repository root::

    nice -n 10 python bench/accuracy.py                 # the full profile, ~15 min
    python bench/accuracy.py --quick                    # a smoke test, seconds
    python bench/accuracy.py --crnn noscale='{"scale_inputs": false}'   # candidate settings

Each ``--crnn NAME=JSON`` adds a column: crnn with those parameters over the defaults
(``{"clf": {...}, "reg": {...}}`` gives parameters to one estimator only).
Writes ``--out`` (default ``bench/results/accuracy[-quick].json``) and prints the Markdown
tables that ``bench/ACCURACY.md`` holds.

The baselines:

- **1-NN**: ``KNeighborsClassifier(1)`` (Euclidean) on the flattened input, the UCR
  archive's convention: each sequence z-normalized (per feature) for classification; the
  better of that and the flat input standardized by ``StandardScaler`` is reported, so the
  bar is the higher of the two. For regression, standardized flat input only (per-sequence
  z-normalization would erase the level that the targets measure).
- **MLP**: ``StandardScaler`` then ``MLPClassifier`` / ``MLPRegressor`` with default
  settings on the flattened input (the MLP predicts all steps at once for seq2seq).
- **no skill**: the majority class / the training mean; for seq2seq also persistence (the
  next value is the current one).
- **torch**: ``nn.LSTM`` (crnn's default cell) of crnn's default hidden size and a linear
  head on the last state (on every state for seq2seq), Adam at crnn's learning rate, the
  same batch size and as many epochs as crnn's default fit ran, on inputs (and regression
  targets) standardized per feature, as a careful hand-written loop would. Skipped
  without torch.

Accuracy for classification; RMSE in the target's units (and R^2) for regression, over
every step for seq2seq. Fit times are wall-clock on whatever machine runs it.
"""

import argparse
import json
import math
import os
import sys
import time
import warnings
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _accuracy_tasks import TASKS

METHODS = ("crnn", "1-NN", "MLP", "no skill", "persistence", "torch")


def _flat(X):
    X = np.asarray(X)
    return X.reshape(len(X), -1)


def _znorm(X):
    """Each sequence z-normalized per feature over its steps (the UCR convention)."""
    X = np.asarray(X, dtype=float)
    X = X[..., None] if X.ndim == 2 else X
    sd = X.std(axis=1, keepdims=True)
    return _flat((X - X.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1))


def _score(kind, y_true, y_pred):
    """Accuracy, or (RMSE, R^2) over every value."""
    if kind == "clf":
        return {"accuracy": float(np.mean(y_true == y_pred))}
    y_true, y_pred = np.ravel(y_true), np.ravel(y_pred)
    rmse = float(np.sqrt(np.mean((y_true - y_pred) ** 2)))
    r2 = 1 - np.sum((y_true - y_pred) ** 2) / np.sum((y_true - y_true.mean()) ** 2)
    return {"rmse": rmse, "r2": float(r2)}


def _crnn(task, seed, params, quick):
    from crnn import RNNClassifier, RNNRegressor

    cls = RNNClassifier if task.kind == "clf" else RNNRegressor
    # {"clf": {...}, "reg": {...}} holds parameters for one of the estimators only.
    per_kind = params.get("clf" if task.kind == "clf" else "reg", {})
    params = {**{k: v for k, v in params.items() if k not in ("clf", "reg")}, **per_kind}
    model = cls(random_state=seed, **params)
    if quick:
        model.set_params(max_iter=3)
    start = time.perf_counter()
    model.fit(task.X_train, task.y_train)
    seconds = time.perf_counter() - start
    epochs = model.n_iter_
    per_epoch = model.t_ / max(epochs, 1)  # training sequences per epoch (after any split)
    batch = min(32, int(per_epoch)) if model.batch_size == "auto" else model.batch_size
    result = _score(task.kind, task.y_test, model.predict(task.X_test))
    result.update(seconds=seconds, epochs=epochs, updates=epochs * math.ceil(per_epoch / batch))
    return result, model


def _baselines(task, seed, quick):
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = task.kind == "clf"
    Xtr, Xte = _flat(task.X_train), _flat(task.X_test)
    ytr = task.y_train if task.kind != "seq2seq" else _flat(task.y_train)
    out = {}
    knn = KNeighborsClassifier(1) if clf else KNeighborsRegressor(1)
    candidates = [(Xtr, Xte)] + ([(_znorm(task.X_train), _znorm(task.X_test))] if clf else [])
    scores = []
    for a, b in candidates:
        pipe = make_pipeline(StandardScaler(), knn) if a is Xtr else knn
        scores.append(_score(task.kind, task.y_test, pipe.fit(a, ytr).predict(b)))
    key = "accuracy" if clf else "rmse"
    out["1-NN"] = max(scores, key=lambda s: s[key] if clf else -s[key])
    mlp = MLPClassifier(random_state=seed) if clf else MLPRegressor(random_state=seed)
    if quick:
        mlp.set_params(max_iter=5)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), mlp).fit(Xtr, ytr)
    seconds = time.perf_counter() - start
    pred = pipe.predict(Xte)
    out["MLP"] = _score(task.kind, task.y_test, pred.reshape(np.shape(task.y_test)))
    out["MLP"].update(seconds=seconds, epochs=mlp.n_iter_)
    dummy = DummyClassifier() if clf else DummyRegressor()
    pred = dummy.fit(Xtr, _flat(ytr) if task.kind == "seq2seq" else ytr).predict(Xte)
    if task.kind == "seq2seq":  # the training mean of all steps
        pred = np.full(np.shape(task.y_test), np.mean(task.y_train))
    out["no skill"] = _score(task.kind, task.y_test, pred)
    if task.kind == "seq2seq":
        out["persistence"] = _score(task.kind, task.y_test, task.X_test)
    return out


def _torch(task, seed, epochs, crnn_model):
    """The same-size PyTorch LSTM trained for ``epochs`` epochs (see the module docstring)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    hidden = crnn_model._hidden_sizes()[-1]
    lr = crnn_model.learning_rate_init

    def as3d(X):
        X = np.asarray(X, dtype=np.float32)
        return X[..., None] if X.ndim == 2 else X

    Xtr, Xte = as3d(task.X_train), as3d(task.X_test)
    mean = Xtr.reshape(-1, Xtr.shape[2]).mean(axis=0)
    sd = Xtr.reshape(-1, Xtr.shape[2]).std(axis=0)
    sd = np.where(sd > 0, sd, 1)
    Xtr, Xte = torch.tensor((Xtr - mean) / sd), torch.tensor((Xte - mean) / sd)
    if task.kind == "clf":
        classes, codes = np.unique(task.y_train, return_inverse=True)
        ytr, n_out, loss_fn = torch.tensor(codes), len(classes), nn.CrossEntropyLoss()
    else:
        y = np.asarray(task.y_train, dtype=np.float32)
        y_mean, y_sd = y.mean(), y.std()
        ytr, n_out, loss_fn = torch.tensor((y - y_mean) / y_sd), 1, nn.MSELoss()
    lstm = nn.LSTM(Xtr.shape[2], hidden, batch_first=True)
    head = nn.Linear(hidden, n_out)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=lr)

    def forward(X):
        Y, (h, _) = lstm(X)
        return head(Y).squeeze(-1) if task.kind == "seq2seq" else head(h[-1]).squeeze(-1)

    n = len(Xtr)
    batch = min(32, n)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(max(epochs, 1)):
        for idx in torch.randperm(n, generator=generator).split(batch):
            optimizer.zero_grad()
            loss_fn(forward(Xtr[idx]), ytr[idx]).backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        out = forward(Xte).numpy()
    pred = classes[out.argmax(axis=1)] if task.kind == "clf" else out * y_sd + y_mean
    result = _score(task.kind, task.y_test, pred)
    result.update(seconds=seconds, epochs=epochs, updates=epochs * math.ceil(n / batch))
    return result


def _job(args):
    name, seed, variants, quick, with_torch, with_baselines = args
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    task = TASKS[name][0](seed, quick=quick)
    record = {"task": name, "seed": seed, "kind": task.kind, "n_train": len(task.y_train)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the capped fits
        results = {}
        for label, params in variants.items():
            results[label], model = _crnn(task, seed, params, quick)
            if label == "crnn":
                default_model = model
        if with_baselines:
            results.update(_baselines(task, seed, quick))
        if with_torch and "crnn" in results:
            results["torch"] = _torch(task, seed, results["crnn"]["epochs"], default_model)
    record["results"] = results
    print(
        f"  {name} seed {seed}: "
        + ", ".join(f"{k} {_main_metric(record['kind'], v):.3f}" for k, v in results.items()),
        flush=True,
    )
    return record


def _main_metric(kind, result):
    return result["accuracy"] if kind == "clf" else result["rmse"]


def _cell(values, kind):
    values = np.asarray(values)
    if kind == "clf":
        return f"{values.mean():.3f} ± {values.std():.3f}"
    return f"{values.mean():.3g} ± {values.std():.2g}"


def render(records, columns):
    """The Markdown tables: the score of every method, then crnn's and torch's cost."""
    tasks = list(dict.fromkeys(r["task"] for r in records))
    present = [c for c in columns if any(c in r["results"] for r in records)]
    lines = [
        "Accuracy (classification, higher is better) or RMSE in the target's units "
        "(regression, lower is better), mean ± sd over seeds.",
        "",
        "| task | n_train | seeds | " + " | ".join(present) + " |",
        "|---|---|---|" + "---|" * len(present),
    ]
    for task in tasks:
        rows = [r for r in records if r["task"] == task]
        kind = rows[0]["kind"]
        cells = []
        for c in present:
            vals = [_main_metric(kind, r["results"][c]) for r in rows if c in r["results"]]
            cells.append(_cell(vals, kind) if vals else "")
        metric = "acc" if kind == "clf" else "RMSE"
        lines.append(
            f"| {task} ({metric}) | {rows[0]['n_train']} | {len(rows)} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "Fit cost, mean over seeds: seconds / epochs / optimizer updates.",
        "",
    ]
    costly = [c for c in present if c not in ("1-NN", "no skill", "persistence")]
    lines += ["| task | " + " | ".join(costly) + " |", "|---|" + "---|" * len(costly)]
    for task in tasks:
        rows = [r for r in records if r["task"] == task]
        cells = []
        for c in costly:
            rs = [r["results"][c] for r in rows if c in r["results"]]
            if not rs:
                cells.append("")
                continue
            s = np.mean([x["seconds"] for x in rs])
            e = np.mean([x["epochs"] for x in rs])
            u = [x["updates"] for x in rs if "updates" in x]
            cells.append(f"{s:.1f} s / {e:.0f}" + (f" / {np.mean(u):.0f}" if u else ""))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one seed")
    parser.add_argument(
        "--crnn",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an extra crnn column with these parameters",
    )
    parser.add_argument("--tasks", nargs="*", help="only these tasks (substring match)")
    parser.add_argument("--seeds", type=int, help="seeds per task (default: per task)")
    parser.add_argument("--jobs", type=int, default=2, help="processes (at most 2)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument(
        "--only-crnn", action="store_true", help="only the --crnn columns (no baselines)"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--render",
        nargs="+",
        metavar="[LABEL=]JSON",
        help="only print the tables of JSON files, merging the columns of each task and seed; "
        "LABEL= takes only a file's crnn column, renamed (e.g. main=accuracy-main.json)",
    )
    args = parser.parse_args(argv)
    if args.render:
        merged, columns = {}, []
        for spec in args.render:
            label, _, path = spec.rpartition("=")
            data = json.loads(Path(path).read_text())
            # A labelled file gives only its crnn column, renamed: crnn of another version.
            keep = {"crnn": f"crnn {label}"} if label else {c: c for c in data["columns"]}
            columns += [c for c in keep.values() if c not in columns]
            for record in data["records"]:
                key = (record["task"], record["seed"])
                results = {keep[k]: v for k, v in record["results"].items() if k in keep}
                merged.setdefault(key, {**record, "results": {}})["results"].update(results)
        print(render(list(merged.values()), columns))
        return
    variants = {} if args.only_crnn else {"crnn": {}}
    for spec in args.crnn:
        label, _, params = spec.partition("=")
        variants[f"crnn {label}"] = json.loads(params)
    try:
        import torch  # noqa: F401

        with_torch = not args.no_torch
    except ImportError:
        with_torch = False
    names = [n for n in TASKS if not args.tasks or any(t in n for t in args.tasks)]
    jobs = []
    for name in names:
        seeds = 1 if args.quick else (args.seeds or TASKS[name][1])
        jobs += [
            (name, seed, variants, args.quick, with_torch, not args.only_crnn)
            for seed in range(seeds)
        ]
    start = time.perf_counter()
    n_jobs = max(1, min(args.jobs, 2))
    if n_jobs == 1:
        records = [_job(j) for j in jobs]
    else:
        with get_context("spawn").Pool(n_jobs) as pool:
            records = pool.map(_job, jobs, chunksize=1)
    columns = [*variants, *METHODS[1:]]
    out = args.out or Path(__file__).parent / "results" / (
        "accuracy-quick.json" if args.quick else "accuracy.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    from crnn import __version__

    out.write_text(
        json.dumps(
            {
                "columns": columns,
                "variants": variants,
                "records": records,
                "seconds": time.perf_counter() - start,
                "crnn": __version__,
                "cpus": os.cpu_count(),
            },
            indent=1,
        )
    )
    print(render(records, columns))
    print(f"({time.perf_counter() - start:.0f} s; results in {out})")


if __name__ == "__main__":
    main()
