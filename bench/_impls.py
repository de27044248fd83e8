"""The three implementations under test, each behind the same small interface.

For a :class:`~_problem.Problem`, each implementation builds

- ``train(problem) -> (step, grads)``: ``step()`` runs forward, loss and BPTT once and returns
  the loss; ``grads()`` returns the gradients of the last step as a dict with the parameter
  names of :mod:`_numpy_ref` plus ``W_o``, ``b_o`` (the head) and ``X`` (the input);
- ``infer(problem) -> run``: a forward pass over the whole batch, nothing kept for backward;
- ``stream(problem) -> run``: the batch fed one step at a time (one call per step), the
  state carried from call to call;

the last two return the final hidden state ``(B, H)`` as a NumPy array. ``context()`` gives
the context the callables are timed in (see :func:`_timing.interleaved`).

Each implementation is built for the worker's thread count ``threads``. The worker limits
every thread pool to ``threads`` and calls ``torch.set_num_threads(threads)``; crnn alone runs
its multi-thread mode differently: the batch split over ``threads`` parallel parts
(``n_threads``), each with one BLAS thread, because BLAS's own threads stall on the small
per-step products when another process holds a core.

JAX (:class:`JaxImpl`) takes part in the ``fit`` suite only (its loop is in :mod:`_fit`) and
is optional: without it, the worker leaves it out with a note.
"""

import os
import warnings
from contextlib import nullcontext

import numpy as np

import _numpy_ref
from _problem import head_loss

#: Names of the implementations, crnn first.
NAMES = ("crnn", "torch", "numpy", "jax")

#: Implementations left out, with this note, when their library cannot be imported.
OPTIONAL = {"jax": 'install it with `pip install "jax[cpu]==0.10.2" optax`'}


def load(name, threads):
    """Import implementation ``name`` (its library is imported here, not at module import)."""
    impls = {"crnn": CrnnImpl, "torch": TorchImpl, "numpy": NumpyImpl, "jax": JaxImpl}
    return impls[name](threads)


def _loss_input(problem, Y, h_n):
    """What the head looks at: the final state (seq-to-vector) or every step (seq-to-seq)."""
    return h_n if problem.loss == "s2v" else Y


class _Impl:
    """What the implementations share: the thread count and the default timing context."""

    #: The suites the implementation takes part in; None: every one.
    suites = None

    def __init__(self, threads):
        self.threads = threads

    def context(self):
        """The worker's thread-pool limits as they are."""
        return nullcontext()


class NumpyImpl(_Impl):
    """:mod:`_numpy_ref` with the NumPy head (full-length sequences only)."""

    def train(self, problem):
        if problem.lengths is not None:
            raise ValueError("the NumPy reference runs full-length sequences only")
        cell, w = problem.shape.cell, problem.weights
        out = {}

        def step():
            Y, h_n, _, cache = _numpy_ref.forward(cell, w, problem.X)
            loss, dZ, head_grads = head_loss(
                _loss_input(problem, Y, h_n), w["W_o"], w["b_o"], problem.target
            )
            if problem.loss == "s2v":
                dX, _, _, grads = _numpy_ref.backward(cache, dh_n=dZ)
            else:
                dX, _, _, grads = _numpy_ref.backward(cache, dY=dZ)
            out.update(grads, X=dX, **head_grads)
            return loss

        return step, lambda: out

    def infer(self, problem):
        return lambda: _numpy_ref.forward(problem.shape.cell, problem.weights, problem.X)[1]

    def stream(self, problem):
        cell, w = problem.shape.cell, problem.weights
        steps = np.split(problem.X, problem.shape.T)

        def run():
            h = c = None
            for x in steps:
                _, h, c, _ = _numpy_ref.forward(cell, w, x, h0=h, c0=c)
            return h

        return run


class CrnnImpl(_Impl):
    """``crnn.functional.forward`` / ``backward`` with the NumPy head, ``Stream`` for streaming.

    With ``threads`` > 1: ``n_threads=threads`` and BLAS limited to one thread.
    """

    def __init__(self, threads):
        super().__init__(threads)
        from crnn import functional

        self.F = functional
        self._pools = None  # a ThreadpoolController, made once when first needed (~10 ms)

    @property
    def mode(self):
        """How crnn uses the worker's threads, for the report."""
        if self.threads == 1:
            return "1 thread"
        n = self.threads
        return (
            f"batch split over {n} threads, 1-thread BLAS (`n_threads={n}`, fit: `n_jobs={n}`; "
            "a single streamed sequence is not split)"
        )

    def context(self):
        """BLAS on one thread in the multi-thread mode; the kernels' threads do the rest."""
        if self.threads == 1:
            return nullcontext()
        if self._pools is None:
            from threadpoolctl import ThreadpoolController

            self._pools = ThreadpoolController()
        return self._pools.limit(limits=1, user_api="blas")

    def _layout_params(self, problem):
        s = problem.shape
        layout = self.F.RNNLayout(cell=s.cell, input_size=s.I, hidden_sizes=(s.H,))
        params = np.zeros(layout.n_params, dtype=s.dtype)
        for name, view in layout.views(params)[0][0].items():
            view[...] = problem.weights[name]
        return layout, params

    def train(self, problem):
        F, w = self.F, problem.weights
        layout, params = self._layout_params(problem)
        out = {}

        def step():
            Y, (h_n, _), cache = F.forward(
                layout, params, problem.X, lengths=problem.lengths, n_threads=self.threads
            )
            loss, dZ, head_grads = head_loss(
                _loss_input(problem, Y, h_n[0][0]), w["W_o"], w["b_o"], problem.target
            )
            if problem.loss == "s2v":
                dX, _, _, grad = F.backward(cache, None, dh_n=[dZ[None]])
            else:
                dX, _, _, grad = F.backward(cache, dZ)
            out.update(layout.views(grad)[0][0], X=dX, **head_grads)
            return loss

        return step, lambda: out

    def infer(self, problem):
        layout, params = self._layout_params(problem)

        def run():
            _, (h_n, _), _ = self.F.forward(
                layout, params, problem.X, keep_cache=False, n_threads=self.threads
            )
            return h_n[0][0]

        return run

    def stream(self, problem):
        stream = self.F.Stream(*self._layout_params(problem), batch_size=problem.shape.B)

        def run():
            stream.reset()
            for x in problem.X:
                h = stream.step(x)
            return h

        return run

    def stream_estimator(self, problem):
        """``RNNRegressor.stream()``: ``Stream`` plus the output layer (one target) and the
        estimator's prediction; returns the final hidden state, as ``stream`` does."""
        from crnn import RNNRegressor

        s = problem.shape
        layout, params = self._layout_params(problem)
        X = problem.X.swapaxes(0, 1)[:, :2]  # a tiny fit sets up the fitted attributes
        # Unscaled: the problem's weights act on the problem's inputs, as in ``stream``.
        reg = RNNRegressor(
            cell=s.cell,
            hidden_layer_sizes=(s.H,),
            max_iter=1,
            dtype=s.dtype,
            scale_inputs=False,
            scale_targets=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge
            reg.fit(X, X[:, :, 0])
        reg.params_[: layout.n_params] = params
        stream = reg.stream(batch_size=s.B)

        def run():
            stream.reset()
            for x in problem.X:
                stream.step(x)
            return stream.state[0][0][0]

        return run


def _torch_final_h(state):
    """The last hidden state ``(B, H)``: nn.LSTM returns ``(h_n, c_n)``, the others ``h_n``."""
    return (state[0] if isinstance(state, tuple) else state)[0]


class TorchImpl(_Impl):
    """``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` (time-major) and ``nn.Linear`` + ``mse_loss``."""

    def __init__(self, threads):
        super().__init__(threads)
        import torch

        self.torch = torch

    def _modules(self, problem):
        torch, s, w = self.torch, problem.shape, problem.weights
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[s.cell]
        dtype = getattr(torch, s.dtype)
        rnn = cls(s.I, s.H, dtype=dtype)
        head = torch.nn.Linear(s.H, w["W_o"].shape[1], dtype=dtype)
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.from_numpy(w["W_x"].T))
            rnn.weight_hh_l0.copy_(torch.from_numpy(w["W_h"].T))
            rnn.bias_ih_l0.copy_(torch.from_numpy(w["b"]))
            rnn.bias_hh_l0.zero_()
            if s.cell == "gru":
                rnn.bias_hh_l0[2 * s.H :] = torch.from_numpy(w["b_hn"])
            head.weight.copy_(torch.from_numpy(w["W_o"].T))
            head.bias.copy_(torch.from_numpy(w["b_o"]))
        return rnn, head

    def train(self, problem):
        torch, s = self.torch, problem.shape
        rnn, head = self._modules(problem)
        params = [*rnn.parameters(), *head.parameters()]
        # dX is computed by every implementation, so torch is asked for it too.
        X = torch.from_numpy(problem.X).requires_grad_()
        target = torch.from_numpy(problem.target)
        lengths = None if problem.lengths is None else torch.from_numpy(problem.lengths)
        pack = torch.nn.utils.rnn.pack_padded_sequence

        def step():
            for p in params:
                p.grad = None
            X.grad = None
            inp = X if lengths is None else pack(X, lengths, enforce_sorted=False)
            Y, state = rnn(inp)
            Z = head(_torch_final_h(state)) if problem.loss == "s2v" else head(Y)
            loss = torch.nn.functional.mse_loss(Z, target)
            loss.backward()
            return loss.item()

        def grads():
            H = s.H
            g = {
                "W_x": rnn.weight_ih_l0.grad.T,
                "W_h": rnn.weight_hh_l0.grad.T,
                "b": rnn.bias_ih_l0.grad,
                "W_o": head.weight.grad.T,
                "b_o": head.bias.grad,
                "X": X.grad,
            }
            if s.cell == "gru":
                g["b_hn"] = rnn.bias_hh_l0.grad[2 * H :]
            return {k: v.numpy() for k, v in g.items()}

        return step, grads

    def infer(self, problem):
        torch = self.torch
        rnn, _ = self._modules(problem)
        X = torch.from_numpy(problem.X)

        def run():
            with torch.inference_mode():
                return _torch_final_h(rnn(X)[1]).numpy()

        return run

    def stream(self, problem):
        torch = self.torch
        rnn, _ = self._modules(problem)
        steps = torch.from_numpy(problem.X).split(1)

        def run():
            with torch.inference_mode():
                state = None
                for x in steps:
                    _, state = rnn(x, state)
                return _torch_final_h(state).numpy()

        return run


class JaxImpl(_Impl):
    """JAX and optax, for the ``fit`` suite's jitted training loop (:func:`_fit._jax_model`).

    At one thread, XLA's CPU backend is held to one core before it starts: its thread pool
    through the environment (jaxlib 0.10 sizes it from ``PJRT_NPROC``, else from the CPUs,
    and ignores the Eigen flags, which older jaxlibs honour), and its asynchronous dispatch
    turned off, or each step would run on a pool thread while Python gathers and dispatches
    the next one on the other core (1.2-1.4 CPU seconds a second at hidden 16). At more
    threads XLA keeps its defaults: a pool as large as the machine, asynchronous dispatch.
    """

    suites = ("fit",)
    ONE_THREAD_ENV = {
        "PJRT_NPROC": "1",
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    }

    def __init__(self, threads):
        super().__init__(threads)
        if threads == 1:
            os.environ["PJRT_NPROC"] = self.ONE_THREAD_ENV["PJRT_NPROC"]
            flags = os.environ.get("XLA_FLAGS", "")
            os.environ["XLA_FLAGS"] = f"{flags} {self.ONE_THREAD_ENV['XLA_FLAGS']}".strip()
        import jax
        import optax

        if threads == 1:
            jax.config.update("jax_cpu_enable_async_dispatch", False)
        self.jax, self.optax = jax, optax
        #: How XLA was set up, for the report.
        self.settings = {var: os.environ.get(var) for var in self.ONE_THREAD_ENV}
        self.settings["jax_cpu_enable_async_dispatch"] = jax.config.read(
            "jax_cpu_enable_async_dispatch"
        )
