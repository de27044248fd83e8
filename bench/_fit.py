"""``fit()`` end to end: crnn's estimator against a hand-written PyTorch training loop.

Both train the same model (one recurrent layer and a linear head on the last step, mean
squared error) with Adam at the same learning rate, the same batch size and number of epochs,
reshuffling every epoch. crnn's L2 penalty, gradient clipping, recurrent dropout and early
stopping (with its validation split) are off, as they are absent from the PyTorch loop; its
input and target scaling stay on (once per fit). Besides the time per epoch, the record holds the share
of crnn's ``fit()`` spent outside its C kernels and its peak NumPy memory against the least
the training needs.

The JAX peer (optional, like the PyTorch one) is the loop a JAX user would write: the same
model over ``jax.lax.scan``, ``optax.adam``, one jitted call per minibatch. Before timing, its
loss, gradients and loss after one Adam step are checked against the PyTorch loop's from the
same initial weights (the record's ``check``).
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
        early_stopping=False,
        recurrent_dropout=0.0,
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
    """A ``_kernels.TrainStep`` whose compiled calls add their wall time to ``clock`` (a few
    hundred nanoseconds a call, counted outside the kernels)."""

    def __init__(self, kernel, clock):
        self._kernel, self._clock = kernel, clock
        self.grads = kernel.grads

    def _timed(self, method, *args):
        clock = self._clock
        with clock["lock"]:
            if clock["running"] == 0:
                clock["since"] = time.perf_counter()
            clock["running"] += 1
        try:
            return method(*args)
        finally:
            with clock["lock"]:
                clock["running"] -= 1
                if clock["running"] == 0:
                    clock["spent"] += time.perf_counter() - clock["since"]

    def step(self, *args):
        return self._timed(self._kernel.step, *args)

    def gradient(self, *args):
        return self._timed(self._kernel.gradient, *args)

    def update(self, *args):
        return self._timed(self._kernel.update, *args)

    def set_decay(self, decay):
        self._kernel.set_decay(decay)


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
    """Time ``fit()`` of crnn, the PyTorch and the JAX loops; crnn's kernel share and peak memory.

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
    if "jax" in impls:
        jax, optax = impls["jax"].jax, impls["jax"].optax
        jax_model = _jax_model(jax, optax, case)
        runs["jax"] = _jax_fit(jax, jax_model, case, X, y)
        if "torch" in impls:  # before the timing, so that a wrong model is not timed unseen
            jax_check = _jax_check(impls["torch"].torch, jax, jax_model, case, X, y)
    samples, final_losses = interleaved(runs, settings.repeats, 0.0, settings.max_time)
    record = {"bench": "fit", **asdict(case), "times": samples, "final_loss": final_losses}
    record["check"] = {"reference": None, "errors": {}, "agree": None}
    if "jax" in impls and "torch" in impls:
        record["check"] = jax_check
    if "crnn" in impls:
        record["n_jobs"] = n_jobs
        record["kernel_seconds"], record["fit_seconds"] = _kernel_seconds(runs["crnn"])
        record["peak_bytes"], record["needed_bytes"] = _peak_bytes(case, n_jobs)
    return record


def _torch_modules(torch, case):
    """The PyTorch loop's model and optimizer, made as ``_torch_fit``'s ``run()`` makes them."""
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[case.cell]
    dtype = getattr(torch, case.dtype)
    torch.manual_seed(0)
    rnn = cls(case.I, case.H, batch_first=True, dtype=dtype)
    head = torch.nn.Linear(case.H, 1, dtype=dtype)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=LEARNING_RATE)
    return rnn, head, opt


@dataclass(frozen=True)
class _JaxModel:
    """The JAX loop's pieces: ``init(rng)`` of the parameters, the jitted ``step`` and
    ``loss``, the optax ``optimizer``."""

    init: object
    step: object
    loss: object
    optimizer: object


def _jax_model(jax, optax, case):
    """One recurrent layer over ``jax.lax.scan`` and a linear head on the final state.

    PyTorch's conventions, the weights transposed (``x @ w_ih``): LSTM gates ``[i, f, g, o]``;
    GRU gates ``[r, z, n]``, the reset gate applied to the recurrent product plus the n part
    of ``b_hh``. ``step(params, opt_state, xb, yb) -> (params, opt_state, loss)`` is the one
    jitted call per minibatch: forward, mean squared error, ``value_and_grad``, Adam update.
    """
    jnp, sigmoid = jax.numpy, jax.nn.sigmoid
    # float64 needs JAX's 64-bit mode, which a float32 user leaves off. Set per case before
    # anything is traced: the check and the timed loop of a case run in the same mode.
    jax.config.update("jax_enable_x64", case.dtype == "float64")
    G, H, lstm = GATES[case.cell], case.H, case.cell == "lstm"

    def cell(p, carry, gx):
        """One step; ``gx`` is the step's input projection ``x_t @ w_ih + b_ih``."""
        h = carry[0] if lstm else carry
        gh = h @ p["w_hh"] + p["b_hh"]
        if case.cell == "rnn":
            return jnp.tanh(gx + gh)
        if lstm:
            i, f, g, o = jnp.split(gx + gh, 4, axis=-1)
            c = sigmoid(f) * carry[1] + sigmoid(i) * jnp.tanh(g)
            return sigmoid(o) * jnp.tanh(c), c
        xr, xz, xn = jnp.split(gx, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        return (1 - z) * n + z * h

    def predict(p, xb):
        # Time-major for scan; the input projection of all steps in one product.
        gx = jnp.swapaxes(xb, 0, 1) @ p["w_ih"] + p["b_ih"]
        h0 = jnp.zeros((xb.shape[0], H), xb.dtype)
        carry, _ = jax.lax.scan(lambda c, g: (cell(p, c, g), None), (h0, h0) if lstm else h0, gx)
        h = carry[0] if lstm else carry
        return (h @ p["w_o"] + p["b_o"])[:, 0]

    def loss(p, xb, yb):
        return jnp.mean((predict(p, xb) - yb) ** 2)

    optimizer = optax.adam(LEARNING_RATE)

    @jax.jit
    def step(p, opt_state, xb, yb):
        value, grads = jax.value_and_grad(loss)(p, xb, yb)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, value

    def init(rng):
        # PyTorch's initialisation: uniform on +-1/sqrt(H), the layer and the head alike.
        def u(*shape):
            return rng.uniform(-(H**-0.5), H**-0.5, shape).astype(case.dtype)

        return {
            "w_ih": u(case.I, G * H),
            "w_hh": u(H, G * H),
            "b_ih": u(G * H),
            "b_hh": u(G * H),
            "w_o": u(H, 1),
            "b_o": u(1),
        }

    return _JaxModel(init, step, jax.jit(loss), optimizer)


def _jax_fit(jax, model, case, X, y):
    """The training loop a JAX user would write around ``model.step``.

    A fresh permutation every epoch, minibatches gathered by NumPy indexing. The ragged last
    batch (``N % B`` sequences) is kept, as the PyTorch loop and crnn keep it, at the cost of
    one more compiled shape: dropping it would train on fewer sequences per epoch, padding it
    would need a mask and compute on more. Every shape is compiled here, outside the timing.
    """
    params = model.init(np.random.default_rng(0))
    state = model.optimizer.init(params)
    for n in {case.B, case.N % case.B} - {0}:
        jax.block_until_ready(model.step(params, state, X[:n], y[:n]))

    def run():
        rng = np.random.default_rng(0)
        params = model.init(rng)
        opt_state = model.optimizer.init(params)
        for _ in range(case.epochs):
            perm = rng.permutation(case.N)
            losses, sizes = [], []
            for start in range(0, case.N, case.B):
                idx = perm[start : start + case.B]
                params, opt_state, loss = model.step(params, opt_state, X[idx], y[idx])
                losses.append(loss)
                sizes.append(len(idx))
            # Read once an epoch, not every step: with asynchronous dispatch (at more than one
            # thread, see _impls.JaxImpl) Python then gathers the next batch during a step.
            total = float(np.dot(jax.device_get(losses), sizes))
        jax.block_until_ready(params)
        return total / case.N

    return run


def _jax_check(torch, jax, model, case, X, y):
    """The JAX loop's model against the PyTorch loop's, on the case's first minibatch.

    From the PyTorch loop's initial weights, copied into JAX: the loss, the gradient of every
    parameter and the loss after one Adam step (``model.step``, the call that is timed),
    compared as the other suites compare (:func:`_suites._check`).
    """
    from _suites import _check

    xb, yb = X[: case.B], y[: case.B]
    rnn, head, opt = _torch_modules(torch, case)
    Xt, yt = torch.from_numpy(xb), torch.from_numpy(yb)

    def torch_loss():
        _, state = rnn(Xt)
        h_n = state[0] if isinstance(state, tuple) else state
        return torch.nn.functional.mse_loss(head(h_n[0])[:, 0], yt)

    # The JAX loop's names -> PyTorch's tensors and whether to transpose (JAX does x @ w).
    tensors = {
        "w_ih": (rnn.weight_ih_l0, True),
        "w_hh": (rnn.weight_hh_l0, True),
        "b_ih": (rnn.bias_ih_l0, False),
        "b_hh": (rnn.bias_hh_l0, False),
        "w_o": (head.weight, True),
        "b_o": (head.bias, False),
    }

    def numpy(t, transpose):
        return (t.T if transpose else t).detach().numpy().copy()

    params = {k: numpy(t, tr) for k, (t, tr) in tensors.items()}
    opt.zero_grad()
    loss = torch_loss()
    loss.backward()
    results = {"torch": {k: numpy(t.grad, tr) for k, (t, tr) in tensors.items()}}
    opt.step()
    with torch.no_grad():
        results["torch"].update(loss=loss.item(), loss_after_step=torch_loss().item())

    value, grads = jax.value_and_grad(model.loss)(params, xb, yb)
    stepped, _, _ = model.step(params, model.optimizer.init(params), xb, yb)
    results["jax"] = {k: np.asarray(g) for k, g in grads.items()}
    results["jax"].update(loss=float(value), loss_after_step=float(model.loss(stepped, xb, yb)))
    return _check(results, case.dtype)
