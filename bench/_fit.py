"""``fit()`` end to end: crnn's estimator against a hand-written PyTorch training loop.

Both train the same model (one recurrent layer and a linear head on the last step, mean
squared error) with Adam at the same learning rate, the same batch size and number of epochs,
reshuffling every epoch. crnn's L2 penalty, gradient clipping and early stopping are off, as
they are absent from the PyTorch loop. Besides the time per epoch, the record holds the share
of crnn's ``fit()`` spent outside its C kernels and its peak NumPy memory against the least
the training needs.
"""

import threading
import time
import tracemalloc
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from _numpy_ref import GATES
from _timing import interleaved

LEARNING_RATE = 1e-3


@dataclass(frozen=True)
class FitCase:
    """``N`` sequences of ``T`` steps and ``I`` features, hidden size ``H``, batches of ``B``."""

    cell: str
    dtype: str
    N: int
    T: int
    I: int  # noqa: E741 (the field's usual name)
    H: int
    B: int
    epochs: int


def _data(case):
    # Drawn in the case's dtype: a float64 draw cast down would put a temporary twice the
    # data's size into the peak memory that _peak_bytes attributes to fit().
    rng = np.random.default_rng(0)
    X = rng.standard_normal((case.N, case.T, case.I), dtype=case.dtype)
    y = X[:, -5:, 0].sum(axis=1) + 0.1 * rng.standard_normal(case.N, dtype=case.dtype)
    return X, y


def _crnn_fit(case, X, y, n_jobs):
    from crnn import RNNRegressor

    est = RNNRegressor(
        cell=case.cell,
        hidden_layer_sizes=(case.H,),
        solver="adam",
        learning_rate_init=LEARNING_RATE,
        batch_size=case.B,
        max_iter=case.epochs,
        shuffle=True,
        alpha=0.0,
        clip_norm=None,
        n_iter_no_change=np.inf,
        random_state=0,
        dtype=case.dtype,
        n_jobs=n_jobs,
    )

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is reached on purpose
            est.fit(X, y)
        return est.loss_curve_[-1]

    return run


def _torch_fit(torch, case, X, y):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[case.cell]
    dtype = getattr(torch, case.dtype)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run():
        torch.manual_seed(0)
        rnn = cls(case.I, case.H, batch_first=True, dtype=dtype)
        head = torch.nn.Linear(case.H, 1, dtype=dtype)
        opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=LEARNING_RATE)
        for _ in range(case.epochs):
            total = 0.0
            for idx in torch.randperm(case.N).split(case.B):
                opt.zero_grad()
                _, state = rnn(Xt[idx])
                h_n = state[0] if isinstance(state, tuple) else state
                loss = torch.nn.functional.mse_loss(head(h_n[0])[:, 0], yt[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
        return total / case.N

    return run


class _TimedKernel:
    """A ``_kernels.TrainStep`` whose compiled calls add their wall time to ``clock``."""

    def __init__(self, kernel, clock):
        self._kernel, self._clock = kernel, clock

    def __getattr__(self, name):
        attr = getattr(self._kernel, name)
        if name not in ("step", "gradient", "update"):
            return attr
        clock = self._clock

        def timed(*args, **kwargs):
            with clock["lock"]:
                if clock["running"] == 0:
                    clock["since"] = time.perf_counter()
                clock["running"] += 1
            try:
                return attr(*args, **kwargs)
            finally:
                with clock["lock"]:
                    clock["running"] -= 1
                    if clock["running"] == 0:
                        clock["spent"] += time.perf_counter() - clock["since"]

        return timed


def _kernel_seconds(run):
    """Seconds in crnn's compiled minibatch calls (``_kernels.TrainStep``: the network's
    forward, loss, backward and update) and in ``run()``.

    With ``n_jobs`` > 1 the calls of a minibatch's parts overlap in threads: the time in
    kernels is then the wall time during which at least one runs.
    """
    from crnn import _step

    clock = {"lock": threading.Lock(), "running": 0, "since": 0.0, "spent": 0.0}
    original = _step.MinibatchStep.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.kernel = _TimedKernel(self.kernel, clock)

    _step.MinibatchStep.__init__ = init
    try:
        t0 = time.perf_counter()
        run()
        total = time.perf_counter() - t0
    finally:
        _step.MinibatchStep.__init__ = original
    return clock["spent"], total


def _peak_bytes(case, n_jobs):
    """Peak traced (NumPy) memory of making the data and fitting, and the least it needs.

    The least: the data, the parameters with their gradient and two Adam moments, and one
    batch of activations (every gate, the output and, for the LSTM, the cell state of every
    step).
    """
    tracemalloc.start()
    try:
        X, y = _data(case)
        _crnn_fit(case, X, y, n_jobs)()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    G, H, itemsize = GATES[case.cell], case.H, np.dtype(case.dtype).itemsize
    n_params = G * H * (case.I + H + 1) + (H if case.cell == "gru" else 0) + H + 1
    activations = case.T * case.B * (G * H + H + (H if case.cell == "lstm" else 0))
    return peak, X.nbytes + y.nbytes + itemsize * (4 * n_params + activations)


def fit(impls, case, settings):
    """Time ``fit()`` of crnn and the PyTorch loop; crnn's kernel share and peak memory.

    With several threads, crnn's estimator gets ``n_jobs`` = that many (it keeps BLAS on one
    thread itself); with one, its default ``n_jobs=None``.
    """
    X, y = _data(case)
    runs = {}
    if "crnn" in impls:
        threads = impls["crnn"].threads
        n_jobs = threads if threads > 1 else None
        runs["crnn"] = _crnn_fit(case, X, y, n_jobs)
    if "torch" in impls:
        runs["torch"] = _torch_fit(impls["torch"].torch, case, X, y)
    samples, final_losses = interleaved(runs, settings.repeats, 0.0, settings.max_time)
    record = {"bench": "fit", **asdict(case), "times": samples, "final_loss": final_losses}
    record["check"] = {"reference": None, "errors": {}, "agree": None}
    if "crnn" in impls:
        record["n_jobs"] = n_jobs
        record["kernel_seconds"], record["fit_seconds"] = _kernel_seconds(runs["crnn"])
        record["peak_bytes"], record["needed_bytes"] = _peak_bytes(case, n_jobs)
    return record
