"""Recurrent layers on NumPy arrays: parameters, forward pass and backpropagation through time.

This is the layer the estimators are built on, and the one to use for a training loop of your
own. Arrays are **time-major**: a batch of ``B`` sequences of ``T`` steps with ``I`` features is
``X`` of shape ``(T, B, I)``.

Parameters live in one flat array (``init_params``), laid out layer by layer and, within a
layer, direction by direction (forward, then reverse)::

    W_x (I_l, G*H_l)    input weights, gate blocks side by side
    W_h (H_l, G*H_l)    recurrent weights
    b   (G*H_l,)        bias
    b_hn (H_l,)         GRU only: the recurrent bias of the candidate, scaled by the reset gate

with ``I_0 = input_size`` and ``I_l = num_directions * H_(l-1)``. ``RNNLayout.views`` gives named
views into such an array, so the gradient array that ``backward`` returns reads the same way.

Cells (gate blocks in column order; ``sig`` is the logistic sigmoid)::

    rnn   h' = act(x W_x + h W_h + b)                      act = tanh or relu
    lstm  [i, f, g, o] = [sig, sig, tanh, sig](x W_x + h W_h + b)
          c' = f * c + i * g,   h' = o * tanh(c')
    gru   [r, z] = sig(x W_x[:, :2H] + h W_h[:, :2H] + b[:2H])
          n = tanh(x W_x[:, 2H:] + b[2H:] + r * (h W_h[:, 2H:] + b_hn))
          h' = (1 - z) * n + z * h

These are PyTorch's ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``. To copy a PyTorch layer ``l``
(suffix ``""`` or ``"_reverse"``): ``W_x = weight_ih_l{l}.T``, ``W_h = weight_hh_l{l}.T``;
``b = bias_ih + bias_hh`` for rnn and lstm; for the GRU ``b = bias_ih + [bias_hh[:2H], 0]`` and
``b_hn = bias_hh[2H:]``.

Threads: the per-step matrix products are small, and BLAS's own threads cost more than they
give on them (on a busy machine, many times more). Run the calls with BLAS on one thread,
``with threadpoolctl.threadpool_limits(1, user_api="blas"):`` (the estimators do), and use
``n_threads`` to spread a batch over cores instead.

Example
-------
>>> import numpy as np
>>> from crnn.functional import RNNLayout, init_params, forward, backward
>>> layout = RNNLayout("lstm", input_size=3, hidden_sizes=(8,))
>>> params = init_params(layout, random_state=0)
>>> X = np.random.default_rng(0).normal(size=(5, 2, 3))       # (T, B, I)
>>> Y, (h_n, c_n), cache = forward(layout, params, X, lengths=[5, 3])
>>> dX, dh0, dc0, grad = backward(cache, dY=np.ones_like(Y))
>>> Y.shape, h_n[0].shape, grad.shape == params.shape
((5, 2, 8), (1, 2, 8), True)
"""

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from . import _kernels
from ._parallel import map_parts as _map

__all__ = [
    "RNNLayout",
    "Stream",
    "init_params",
    "forward",
    "backward",
    "readout_params_size",
    "init_readout_params",
    "readout_forward",
    "readout_backward",
    "pool_steps",
]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# The kernels index rows and gate columns with C ints (as BLAS does).
_INT_MAX = 2**31 - 1
# The least work (multiply-adds of one step's recurrent product) that gets a batch part a
# thread of its own with n_threads (see forward).
_MIN_PART_WORK = 1 << 18
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class RNNLayout:
    """Shapes of a stack of recurrent layers and the layout of its flat parameter array.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
        The recurrent cell.
    input_size : int
        Number of features of each step of the input.
    hidden_sizes : int or tuple of int
        Hidden units of each stacked layer, first layer first.
    bidirectional : bool, default=False
        Run every layer forward and backward in time and concatenate the two outputs.
    nonlinearity : {"tanh", "relu"}, default="tanh"
        Activation of the vanilla ``"rnn"`` cell (ignored by the gated cells).

    Attributes
    ----------
    n_params : int
        Length of the flat parameter array (see ``init_params`` and ``views``).
    """

    def __init__(self, cell, input_size, hidden_sizes, bidirectional=False, nonlinearity="tanh"):
        if cell not in _GATES:
            raise ValueError(f"cell must be one of {sorted(_GATES)}, got {cell!r}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        if isinstance(hidden_sizes, Integral):
            hidden_sizes = (hidden_sizes,)
        hidden_sizes = tuple(hidden_sizes)
        if not hidden_sizes or not all(_is_positive_int(h) for h in hidden_sizes):
            raise ValueError(
                "hidden_sizes must be a positive int or a non-empty sequence of "
                f"positive ints, got {hidden_sizes!r}"
            )
        if not _is_positive_int(input_size):
            raise ValueError(f"input_size must be a positive int, got {input_size!r}")
        D = 2 if bidirectional else 1
        if input_size > _INT_MAX or max(hidden_sizes) * max(_GATES[cell], D) > _INT_MAX:
            raise ValueError(
                f"input_size and hidden_sizes must keep every weight matrix "
                f"within {_INT_MAX} columns (the kernels' C int), got "
                f"input_size={input_size}, hidden_sizes={hidden_sizes}"
            )
        self.cell = cell
        self.input_size = int(input_size)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.bidirectional = bool(bidirectional)
        self.nonlinearity = nonlinearity
        self._entries, self.n_params = self._build_entries()

    @property
    def gates(self):
        """Number of gate blocks G of the cell (rnn 1, lstm 4, gru 3)."""
        return _GATES[self.cell]

    @property
    def num_layers(self):
        """Number of stacked layers."""
        return len(self.hidden_sizes)

    @property
    def num_directions(self):
        """Directions of every layer: 2 if bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def output_size(self):
        """Features of each step of the output: num_directions * hidden_sizes[-1]."""
        return self.num_directions * self.hidden_sizes[-1]

    def layer_input_size(self, layer):
        """Give the features of each step of the input of a layer.

        Parameters
        ----------
        layer : int
            The layer, 0 for the first.

        Returns
        -------
        size : int
            ``input_size`` for the first layer, else the previous layer's output size.
        """
        if layer == 0:
            return self.input_size
        return self.num_directions * self.hidden_sizes[layer - 1]

    @property
    def _kernel_cell(self):
        name = f"rnn_{self.nonlinearity}" if self.cell == "rnn" else self.cell
        return _kernels.CELLS[name]

    def _build_entries(self):
        """[(layer, direction, name, start, stop, shape)] in flat order, and the total size."""
        entries, offset = [], 0
        for layer, H in enumerate(self.hidden_sizes):
            I, GH = self.layer_input_size(layer), self.gates * H
            shapes = [("W_x", (I, GH)), ("W_h", (H, GH)), ("b", (GH,))]
            if self.cell == "gru":
                shapes.append(("b_hn", (H,)))
            for direction in range(self.num_directions):
                for name, shape in shapes:
                    size = int(np.prod(shape))
                    entries.append((layer, direction, name, offset, offset + size, shape))
                    offset += size
        return entries, offset

    def views(self, params):
        """Named views into a flat parameter (or gradient) array.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
            A flat array in this layout: parameters, or their gradient.

        Returns
        -------
        views : list of list of dict
            ``views[layer][direction][name]`` is an array view sharing memory with ``params``;
            names are ``"W_x"``, ``"W_h"``, ``"b"`` and, for the GRU, ``"b_hn"``.
        """
        return self._views(_check_params(self, params, check_finite=False))

    def _views(self, params):
        """views() of an array already checked (1-D, C-contiguous, n_params long)."""
        out = [[{} for _ in range(self.num_directions)] for _ in range(self.num_layers)]
        for layer, direction, name, start, stop, shape in self._entries:
            out[layer][direction][name] = params[start:stop].reshape(shape)
        return out

    def __repr__(self):
        return (
            f"RNNLayout(cell={self.cell!r}, input_size={self.input_size}, "
            f"hidden_sizes={self.hidden_sizes}, bidirectional={self.bidirectional}, "
            f"nonlinearity={self.nonlinearity!r})"
        )

    def __eq__(self, other):
        return isinstance(other, RNNLayout) and repr(self) == repr(other)

    def __hash__(self):
        return hash(repr(self))


def init_params(
    layout, random_state=None, dtype=np.float64, recurrent_init="orthogonal", forget_bias=1.0
):
    """A freshly initialised flat parameter array.

    Input weights are Glorot-uniform per gate block, U(-a, a) with ``a = sqrt(6 / (I + H))``.
    Recurrent weights are, per gate block, a random orthogonal matrix (``"orthogonal"``: keeps
    the norm of the state through many steps at the start, a remedy for vanishing and exploding
    gradients) or PyTorch's U(-1/sqrt(H), 1/sqrt(H)) (``"uniform"``). Biases are zero, except
    the LSTM forget gate's, set to ``forget_bias`` so that the cell remembers by default.

    Parameters
    ----------
    layout : RNNLayout
        The layers to initialise.
    random_state : int, RandomState instance or None, default=None
        Draws the weights; an int makes them reproducible.
    dtype : {np.float32, np.float64}, default=np.float64
        The dtype of the result.
    recurrent_init : {"orthogonal", "uniform"}, default="orthogonal"
        How the recurrent weights are drawn (see above).
    forget_bias : float, default=1.0
        The LSTM forget gate's bias.

    Returns
    -------
    params : ndarray of shape (layout.n_params,)
        The parameters in the flat layout of ``layout.views``.
    """
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    if recurrent_init not in ("orthogonal", "uniform"):
        raise ValueError(
            f"recurrent_init must be 'orthogonal' or 'uniform', got {recurrent_init!r}"
        )
    if not np.isfinite(forget_bias):
        raise ValueError(f"forget_bias must be finite, got {forget_bias!r}")
    rng = check_random_state(random_state)
    params = np.zeros(layout.n_params, dtype=np.float64)
    G = layout.gates
    for layer_views in layout.views(params):
        for v in layer_views:
            I, GH = v["W_x"].shape
            H = GH // G
            limit = np.sqrt(6.0 / (I + H))
            v["W_x"][...] = rng.uniform(-limit, limit, size=(I, GH))
            for g in range(G):
                block = v["W_h"][:, g * H : (g + 1) * H]
                if recurrent_init == "orthogonal":
                    q, r = np.linalg.qr(rng.normal(size=(H, H)))
                    block[...] = q * np.where(np.diag(r) < 0, -1.0, 1.0)
                else:
                    block[...] = rng.uniform(-1 / np.sqrt(H), 1 / np.sqrt(H), size=(H, H))
            if layout.cell == "lstm":
                v["b"][H : 2 * H] = forget_bias
    return params.astype(dtype)


class _Cache:
    """What backward needs from a forward call: the parts of the batch it ran (one unless
    ``n_threads`` > 1) and each part's own cache."""

    __slots__ = ("layout", "params", "lengths", "parts", "used", "concurrent")


def forward(
    layout,
    params,
    X,
    lengths=None,
    h0=None,
    c0=None,
    dropout=0.0,
    random_state=None,
    keep_cache=True,
    check_finite=True,
    n_threads=1,
    recurrent_dropout=0.0,
    input_dropout=0.0,
):
    """Run the stacked recurrent layers over a batch of sequences.

    Parameters
    ----------
    layout : RNNLayout
        The layers to run.
    params : ndarray of shape (layout.n_params,), float32 or float64
        The flat parameters; X, h0 and c0 must have the same dtype.
    X : ndarray of shape (T, B, layout.input_size)
        The sequences, time-major. Steps past a sequence's length are never read (they may
        hold anything, NaN included).
    lengths : array-like of int of shape (B,), default=None
        Steps of each sequence, in ``[1, T]``, in any order; None means every sequence has T.
        The kernels take the batch sorted by decreasing length, and skip the padding: a batch
        in another order is copied into that order and the results back (for a small layer
        those copies can cost more than the padding saves), so sort batches once up front
        where you can, as the estimators do.
    h0, c0 : list of ndarray of shape (num_directions, B, H_l), default=None
        Initial hidden (and, for the LSTM, cell) state of every layer; None means zeros.
    dropout : float in [0, 1), default=0.0
        Probability of zeroing each unit of a layer's output before the next layer reads it
        (inverted dropout, between stacked layers only). Use 0 at prediction time.
    random_state : int, RandomState instance or None, default=None
        Draws the dropout masks (``backward`` takes them from the cache).
    keep_cache : bool, default=True
        Keep what ``backward`` needs; False saves memory at prediction time.
    check_finite : bool, default=True
        Refuse NaN or infinite values in params, h0, c0 and X within each sequence's length
        (ValueError). Turning it off saves a pass over the data; non-finite values then
        propagate to the outputs.
    n_threads : int >= 1, default=1
        Split the batch into up to this many interleaved parts and run them in parallel
        threads (the kernels release the GIL); ``backward`` uses the same split and sums
        the gradients. A part is only made if its per-step recurrent product keeps at least
        2**18 multiply-adds (batch/parts * G*H*H): smaller parts lose more to threading than
        they gain (measured on 2 cores: LSTM B=32 H=128 1.5x faster with 2 parts, B=32 H=32
        slower). A bidirectional batch that is not split runs the two directions of each
        layer in two threads instead (B=32 T=50 H=64 GRU, 2 cores: 2x faster). Meant for
        BLAS limited to one thread (``threadpoolctl``): the per-step products are too small
        for BLAS's own threads. Results match ``n_threads=1`` to rounding; ``dropout``
        masks depend on the split (``recurrent_dropout`` and ``input_dropout`` masks do not).
    recurrent_dropout : float in [0, 1), default=0.0
        Variational dropout of the recurrent state (Gal and Ghahramani, 2016): each layer and
        direction draws one mask per sequence over its hidden units, zeroing each with this
        probability and scaling the others by 1/(1-p), and multiplies ``h(t-1)`` by it at
        every step before the recurrent product (the LSTM's cell state, the GRU's ``z * h``
        and the layer's outputs are not masked). Applied in the kernels' step loops.
    input_dropout : float in [0, 1), default=0.0
        Variational dropout of the input features: one mask per sequence over the
        ``input_size`` features, the same at every step (a feature dropped for a sequence is
        dropped at all its steps, as Gal and Ghahramani do; a fresh mask per step would let
        the recurrence average the noise away over the steps), inverted scaling.

    Returns
    -------
    Y : ndarray of shape (T, B, layout.output_size)
        The last layer's state at every step, forward and reverse directions concatenated on
        the last axis; zero at steps past a sequence's length.
    (h_n, c_n) : tuple
        ``h_n`` is a list with one array per layer, of shape (num_directions, B, H_l): the
        state after each sequence's own last step (for the reverse direction, after step 0).
        ``c_n`` is the same for the LSTM's cell state, None for other cells.
    cache : object or None
        Pass it to ``backward`` (once). None if ``keep_cache`` is False.
    """
    params = _check_params(layout, params, check_finite)
    dtype = params.dtype
    X = _check_array(X, "X", 3, dtype, check_finite=False)
    T, B, I = X.shape
    if T == 0 or B == 0:
        raise ValueError(
            f"X must hold at least one sequence of at least one step, got shape "
            f"{X.shape} (T, B, I)"
        )
    if I != layout.input_size:
        raise ValueError(
            f"X has {I} features per step but the layout expects input_size={layout.input_size}"
        )
    if T * B > _INT_MAX:
        raise ValueError(
            f"X has T * B = {T * B} (step, sequence) rows; the kernels take at "
            f"most {_INT_MAX}: split the batch"
        )
    lengths = _check_lengths(lengths, T, B)
    if check_finite:
        _check_finite_steps(X, lengths, "X")
    h0 = _check_states(layout, h0, "h0", B, dtype, check_finite)
    if c0 is not None and layout.cell != "lstm":
        raise ValueError(f"c0 is the LSTM's cell state; a {layout.cell!r} cell has none")
    c0 = _check_states(layout, c0, "c0", B, dtype, check_finite)
    for name, p in (
        ("dropout", dropout),
        ("recurrent_dropout", recurrent_dropout),
        ("input_dropout", input_dropout),
    ):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p!r}")
    if not _is_positive_int(n_threads):
        raise ValueError(f"n_threads must be a positive int, got {n_threads!r}")

    parts = _batch_parts(lengths, n_threads, layout)
    # An unsplit batch still gives a bidirectional layer two independent jobs.
    concurrent = n_threads > 1 and len(parts) == 1 and layout.num_directions == 2
    rng = (
        check_random_state(random_state)
        if max(dropout, recurrent_dropout, input_dropout) > 0
        else None
    )
    seeds = [None] * len(parts) if dropout == 0 else rng.randint(2**31 - 1, size=len(parts))
    # One mask per sequence, drawn for the whole batch (so the same for any split).
    input_mask = recurrent_masks = None
    if input_dropout > 0:
        input_mask = _dropout_mask(rng, (1, B, I), input_dropout, dtype)
    if recurrent_dropout > 0:
        recurrent_masks = [
            _dropout_mask(rng, (layout.num_directions, B, H), recurrent_dropout, dtype)
            for H in layout.hidden_sizes
        ]
    views = layout._views(params)

    def run(part, seed):
        take = (lambda a: a) if part is None else (lambda a: _take_batch(a, part))
        masks = _Masks()
        masks.between = None if seed is None else check_random_state(seed)
        masks.recurrent = None if recurrent_masks is None else [take(m) for m in recurrent_masks]
        masks.input = None if input_mask is None else take(input_mask)
        x = take(X)
        if masks.input is not None:  # one copy of X: take's, masked in place, or the product
            x = x * masks.input if part is None else np.multiply(x, masks.input, out=x)
        return _forward_part(
            layout,
            views,
            x,
            lengths if part is None else lengths[part],
            None if h0 is None else [take(h) for h in h0],
            None if c0 is None else [take(c) for c in c0],
            dropout,
            masks,
            keep_cache,
            concurrent,
        )

    results = _map(run, parts, seeds)
    cache = None
    if keep_cache:
        cache = _Cache()
        cache.layout, cache.params, cache.lengths, cache.used = layout, params, lengths, False
        cache.parts = [(part, result[3]) for part, result in zip(parts, results)]
        cache.concurrent = concurrent
    Y, h_n, c_n = _merge(parts, [r[:3] for r in results], B)
    return Y, (h_n, c_n if layout.cell == "lstm" else None), cache


def _batch_parts(lengths, n_parts, layout):
    """The batch split into parts of original sequence indices, each sorted by decreasing
    length (as the kernels need); ``[None]`` for the whole batch already in that order.

    At most ``n_parts``, and none whose per-step recurrent product (G*H*H multiply-adds per
    sequence for the widest layer) falls below _MIN_PART_WORK. Parts interleave the sorted
    sequences so that each gets a similar mix of lengths.
    """
    n_parts = min(n_parts, len(lengths))
    if n_parts > 1:
        work = max(layout.gates * H * H for H in layout.hidden_sizes)
        while n_parts > 1 and (len(lengths) // n_parts) * work < _MIN_PART_WORK:
            n_parts -= 1
    if n_parts == 1 and not (lengths[1:] > lengths[:-1]).any():
        return [None]
    order = np.argsort(-lengths, kind="stable")
    return [order[p::n_parts] for p in range(n_parts)]


def _take_batch(a, part):
    """Sequences ``part`` of batch-on-axis-1 ``a``, C-contiguous. (``a[:, part]`` comes out
    strided, and making it contiguous took 4.5 ms for a (100, 128, 64) float32 array, against
    0.13 ms for ``np.take``.)"""
    return np.take(a, part, axis=1)


def _merge(parts, results, B):
    """Per-part results (tuples of batch-on-axis-1 arrays, or lists of them, or None) put
    back together in the original batch order."""
    if parts[0] is None:
        return results[0]
    merged = []
    for pieces in zip(*results):
        if pieces[0] is None:
            merged.append(None)
        elif isinstance(pieces[0], list):
            merged.append([_merge_array(parts, layer, B) for layer in zip(*pieces)])
        else:
            merged.append(_merge_array(parts, pieces, B))
    return tuple(merged)


def _merge_array(parts, pieces, B):
    if len(parts) == 1:  # one part, reordered: gathering is faster than scattering
        return np.take(pieces[0], np.argsort(parts[0]), axis=1)
    out = np.empty((pieces[0].shape[0], B, *pieces[0].shape[2:]), dtype=pieces[0].dtype)
    for part, piece in zip(parts, pieces):
        out[:, part] = piece
    return out


class _Masks:
    """The dropout of one part of a forward call: ``between`` the RandomState drawing the
    masks between layers (None without), ``recurrent`` one (num_directions, B, H_l) mask per
    layer, ``input`` the (1, B, I) mask X was multiplied with (None without either)."""

    __slots__ = ("between", "recurrent", "input")


def _dropout_mask(rng, shape, p, dtype):
    """Inverted dropout: 0 with probability p, else 1/(1-p)."""
    return _kernels.dropout_mask(rng.random_sample(shape).reshape(-1), p, dtype).reshape(shape)


class _PartCache:
    """What backward needs from one part of a forward call (sequences sorted by length)."""

    __slots__ = (
        "inputs",
        "calls",
        "masks",
        "dropout",
        "workspace",
    )


def _forward_part(
    layout, views, X, lengths, h0, c0, dropout, dropout_masks, keep_cache, concurrent
):
    """forward on sequences sorted by decreasing length: (Y, h_n, c_n, part cache). With
    ``concurrent``, the two directions of each layer run in parallel threads. X is already
    multiplied by ``dropout_masks.input``."""
    T, B = X.shape[:2]
    dtype = X.dtype
    X = np.ascontiguousarray(X)
    h0 = None if h0 is None else [np.ascontiguousarray(h) for h in h0]
    c0 = None if c0 is None else [np.ascontiguousarray(c) for c in c0]
    cell = layout._kernel_cell
    recurrent = dropout_masks.recurrent
    workspace_size = _workspace_size(layout, T, B, recurrent is not None)
    workspaces = [np.empty(workspace_size, dtype=dtype) for _ in range(2 if concurrent else 1)]
    inputs, calls, masks, h_n, c_n = [], [], [], [], []
    layer_input = X
    # The kernels write every step of every sequence and leave the padding alone: only
    # padding needs zeros (skipping the fill saves ~10% of a small layer's forward).
    padded = lengths[-1] < T
    for layer, H in enumerate(layout.hidden_sizes):
        D = layout.num_directions
        out = (np.zeros if padded else np.empty)((T, B, D * H), dtype=dtype)
        hn = np.empty((D, B, H), dtype=dtype)
        cn = np.empty((D, B, H), dtype=dtype) if layout.cell == "lstm" else None
        reserve_size, _ = _kernels.buffer_sizes(
            cell, T, B, layer_input.shape[2], H, recurrent is not None
        )

        def run(direction):
            # The directions write disjoint halves of out and their own hn, cn and reserve.
            # The call comes back bound to its buffers, for backward.
            v = views[layer][direction]
            reserve = np.empty(reserve_size, dtype=dtype)
            return _kernels.forward(
                cell,
                layer_input,
                lengths,
                v["W_x"],
                v["W_h"],
                v["b"],
                v.get("b_hn"),
                _state(h0, layer, direction),
                _state(c0, layer, direction),
                out,
                direction * H,
                hn[direction],
                None if cn is None else cn[direction],
                reserve,
                workspaces[direction % len(workspaces)],
                direction == 1,
                _state(recurrent, layer, direction),
                keep_cache,
            )

        inputs.append(layer_input)
        calls.append(_map(run, range(D)) if concurrent else [run(d) for d in range(D)])
        h_n.append(hn)
        c_n.append(cn)
        layer_input = out
        if dropout > 0 and layer + 1 < layout.num_layers:
            mask = _dropout_mask(dropout_masks.between, out.shape, dropout, dtype)
            masks.append(mask)
            layer_input = out * mask

    cache = None
    if keep_cache:
        cache = _PartCache()
        cache.inputs, cache.calls, cache.masks = inputs, calls, masks
        cache.dropout, cache.workspace = dropout_masks, workspace_size
    return out, h_n, c_n if layout.cell == "lstm" else None, cache


def backward(
    cache, dY=None, dh_n=None, dc_n=None, truncate=None, check_finite=True, input_grad=True
):
    """Backpropagation through time for one ``forward`` call.

    Parameters
    ----------
    cache : object
        The cache returned by ``forward`` (usable once: the kernels overwrite it).
    dY : ndarray of shape (T, B, layout.output_size), default=None
        Gradient of the loss with respect to ``Y``; values at padded steps are ignored.
        None means zero.
    dh_n, dc_n : list of ndarray of shape (num_directions, B, H_l), default=None
        Gradients with respect to the final states (``dc_n``: LSTM only). None means zero.
    truncate : int >= 1, default=None
        Truncated BPTT: each direction propagates through only the last ``truncate`` steps it
        processed for each sequence (the reverse direction's last steps are times
        ``truncate-1 .. 0``); earlier steps and the initial states get no gradient.
    check_finite : bool, default=True
        Refuse NaN or infinity in dh_n, dc_n and dY within each sequence's length.
    input_grad : bool, default=True
        Compute dX. False returns None instead and skips the first layer's input-gradient
        product (as large as its input projection), for training on inputs that are data.

    Returns
    -------
    dX : ndarray of shape (T, B, layout.input_size) or None
        Gradient with respect to ``X``, zero at padded steps; None if not ``input_grad``.
    dh0 : list of ndarray of shape (num_directions, B, H_l)
        Gradients with respect to the initial hidden states.
    dc0 : list of ndarray of shape (num_directions, B, H_l) or None
        Gradients with respect to the initial cell states (LSTM), else None.
    grad : ndarray of shape (layout.n_params,)
        Gradient with respect to params, in the same flat layout (see ``RNNLayout.views``).
    """
    if not isinstance(cache, _Cache):
        raise TypeError("cache must be the third value returned by forward(..., keep_cache=True)")
    if cache.used:
        raise ValueError(
            "this cache was already used by backward (the kernels overwrite it); run forward again"
        )
    layout, params, lengths = cache.layout, cache.params, cache.lengths
    dtype = params.dtype
    T, B = len(cache.parts[0][1].inputs[0]), len(lengths)
    if truncate is not None and not _is_positive_int(truncate):
        raise ValueError(f"truncate must be None or a positive int, got {truncate!r}")
    if truncate is None or truncate >= T:
        truncate = 0  # the kernels' "no truncation"
    if dY is not None:
        dY = _check_array(dY, "dY", 3, dtype, check_finite=False)
        if dY.shape != (T, B, layout.output_size):
            raise ValueError(
                f"dY must have Y's shape {(T, B, layout.output_size)}, got {dY.shape}"
            )
        if check_finite:
            _check_finite_steps(dY, lengths, "dY")
    dh_n = _check_states(layout, dh_n, "dh_n", B, dtype, check_finite)
    if dc_n is not None and layout.cell != "lstm":
        raise ValueError(
            f"dc_n is the LSTM's cell state gradient; a {layout.cell!r} cell has none"
        )
    dc_n = _check_states(layout, dc_n, "dc_n", B, dtype, check_finite)
    cache.used = True

    def run(part, part_cache):
        take = (lambda a: a) if part is None else (lambda a: _take_batch(a, part))
        return _backward_part(
            layout,
            part_cache,
            None if dY is None else take(dY),
            None if dh_n is None else [take(h) for h in dh_n],
            None if dc_n is None else [take(c) for c in dc_n],
            truncate,
            cache.concurrent,
            input_grad,
        )

    parts = [part for part, _ in cache.parts]
    results = _map(run, parts, [part_cache for _, part_cache in cache.parts])
    grad = results[0][3]
    for result in results[1:]:
        grad += result[3]
    dX, dh0, dc0 = _merge(parts, [r[:3] for r in results], B)
    return dX, dh0, dc0, grad


def _backward_part(layout, cache, dY, dh_n, dc_n, truncate, concurrent, input_grad):
    """backward for one part of a forward call: (dX, dh0, dc0, grad); dX is None unless
    ``input_grad``. With ``concurrent``, the two directions of each layer run in parallel
    threads."""
    T, B = cache.inputs[0].shape[:2]
    dtype = cache.inputs[0].dtype
    dY = None if dY is None else np.ascontiguousarray(dY)
    dh_n = None if dh_n is None else [np.ascontiguousarray(h) for h in dh_n]
    dc_n = None if dc_n is None else [np.ascontiguousarray(c) for c in dc_n]
    grad = np.zeros(layout.n_params, dtype=dtype)
    grads = layout._views(grad)
    workspaces = [np.empty(cache.workspace, dtype=dtype) for _ in range(2 if concurrent else 1)]
    is_lstm = layout.cell == "lstm"
    dh0 = [np.zeros((layout.num_directions, B, H), dtype=dtype) for H in layout.hidden_sizes]
    dc0 = [np.zeros_like(h) for h in dh0] if is_lstm else None
    d_out = dY
    for layer in reversed(range(layout.num_layers)):
        layer_input = cache.inputs[layer]
        # Both directions add into dX: in parallel, each into its own, summed afterwards.
        # (calloc'd zeros: no separate zeroing pass)
        if layer > 0 or input_grad:
            d_ins = [np.zeros(layer_input.shape, dtype=dtype) for _ in workspaces]
        else:
            d_ins = [None]

        def run(direction):
            g = grads[layer][direction]
            _kernels.backward(
                cache.calls[layer][direction],  # forward's buffers, checked there
                workspace=workspaces[direction % len(workspaces)],
                dy=d_out,
                dhn=_state(dh_n, layer, direction),
                dcn=_state(dc_n, layer, direction),
                truncate=truncate,
                dx=d_ins[direction % len(d_ins)],
                dh0=dh0[layer][direction],
                dc0=dc0[layer][direction] if is_lstm else None,
                dW_x=g["W_x"],
                dW_h=g["W_h"],
                db=g["b"],
                db_hn=g.get("b_hn"),
            )

        if concurrent:
            _map(run, range(layout.num_directions))
        else:
            for direction in range(layout.num_directions):
                run(direction)
        d_in = d_ins[0]
        for other in d_ins[1:]:
            d_in += other
        if layer > 0 and cache.masks:
            d_in *= cache.masks[layer - 1]
        elif layer == 0 and d_in is not None and cache.dropout.input is not None:
            d_in *= cache.dropout.input
        d_out = d_in
    return d_out, dh0, dc0, grad


class Stream:
    """Run a one-way recurrent stack one step at a time, carrying its state between calls.

    For online prediction with low latency: everything ``forward`` checks and allocates per
    call is done once here, so a step costs little more than its arithmetic. Feeding a
    sequence step by step gives the same outputs as ``forward`` on the whole sequence.
    Keep BLAS on one thread around the steps (see the module's notes on threads): a step's
    products are far too small for BLAS threads.

    Parameters
    ----------
    layout : RNNLayout
        Must not be bidirectional: a reverse direction needs the whole sequence.
    params : ndarray of shape (layout.n_params,)
        Copied: later changes to the array do not affect the stream.
    batch_size : int, default=1
        Number of independent streams advanced together.
    h0, c0 : list of ndarray of shape (1, batch_size, H_l), default=None
        Initial states, as in ``forward``; None means zeros.
    check_finite : bool, default=True
        Refuse NaN or infinity in params, the initial states and every step's input.
    head : tuple of ndarray (W, b), default=None
        A dense output layer, ``W`` of shape ``(layout.output_size, n_outputs)`` and ``b``
        of shape ``(n_outputs,)``, of params' dtype (copied): ``step`` then returns
        ``y @ W + b``, computed in the same C call as the recurrent layers.

    Examples
    --------
    >>> layout = RNNLayout("gru", input_size=2, hidden_sizes=(4,))
    >>> stream = Stream(layout, init_params(layout, random_state=0))
    >>> for x in np.ones((3, 1, 2)):      # three steps of one stream
    ...     y = stream.step(x)               # (batch_size, output_size)
    >>> y.shape, stream.state[0][0].shape
    ((1, 4), (1, 1, 4))
    """

    def __init__(
        self, layout, params, batch_size=1, h0=None, c0=None, check_finite=True, head=None
    ):
        if not isinstance(layout, RNNLayout):
            raise TypeError(f"layout must be an RNNLayout, got {type(layout).__name__}")
        if layout.bidirectional:
            raise ValueError(
                "a bidirectional stack cannot run step by step (its reverse "
                "direction needs the whole sequence); use forward()"
            )
        if not _is_positive_int(batch_size):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        params = _check_params(layout, params, check_finite).copy()
        self.layout, self.batch_size, self.check_finite = layout, int(batch_size), check_finite
        self._dtype = params.dtype
        self._cell = layout._kernel_cell
        self._views = [v[0] for v in layout.views(params)]
        self._lengths = np.ones(self.batch_size, dtype=np.intc)
        self._x = np.empty((1, self.batch_size, layout.input_size), dtype=self._dtype)
        self._y = [
            np.zeros((1, self.batch_size, H), dtype=self._dtype) for H in layout.hidden_sizes
        ]
        self._h = [np.zeros((self.batch_size, H), dtype=self._dtype) for H in layout.hidden_sizes]
        self._c = (
            [np.zeros_like(h) for h in self._h]
            if layout.cell == "lstm"
            else [None] * layout.num_layers
        )
        sizes = [
            _kernels.buffer_sizes(
                self._cell, 1, self.batch_size, layout.layer_input_size(layer), H
            )
            for layer, H in enumerate(layout.hidden_sizes)
        ]
        workspace = np.empty(max(w for _, w in sizes), dtype=self._dtype)
        layers = [
            (
                v["W_x"],
                v["W_h"],
                v["b"],
                v.get("b_hn"),
                h,
                c,
                y,
                np.empty(reserve, dtype=self._dtype),
            )
            for v, h, c, y, (reserve, _) in zip(self._views, self._h, self._c, self._y, sizes)
        ]
        self._out = self._y[-1][0]
        if head is not None:
            head = self._check_head(head)
            self._out = np.empty((self.batch_size, head[0].shape[1]), dtype=self._dtype)
            head = (*head, self._out)
        kernel = _kernels.StepKernel(self._cell, self._x, self._lengths, layers, workspace, head)
        self._run = kernel.run_f32 if self._dtype == np.float32 else kernel.run_f64
        self.reset(h0, c0)

    def _check_head(self, head):
        try:
            W, b = head
        except (TypeError, ValueError):
            raise ValueError("head must be a pair (W, b) of arrays") from None
        W = _check_array(W, "head W", 2, self._dtype, self.check_finite).copy()
        b = _check_array(b, "head b", 1, self._dtype, self.check_finite).copy()
        if W.shape[0] != self.layout.output_size or b.shape != W.shape[1:]:
            raise ValueError(
                f"head W must have shape ({self.layout.output_size}, n_outputs) "
                f"and b (n_outputs,); got {W.shape} and {b.shape}"
            )
        return W, b

    def reset(self, h0=None, c0=None):
        """Start over from the given initial states.

        Parameters
        ----------
        h0, c0 : list of ndarray of shape (num_directions, batch_size, H_l), default=None
            Initial hidden (and, LSTM, cell) state of every layer; None means zeros.
        """
        layout, B = self.layout, self.batch_size
        h0 = _check_states(layout, h0, "h0", B, self._dtype, self.check_finite)
        if c0 is not None and layout.cell != "lstm":
            raise ValueError(f"c0 is the LSTM's cell state; a {layout.cell!r} cell has none")
        c0 = _check_states(layout, c0, "c0", B, self._dtype, self.check_finite)
        for layer in range(layout.num_layers):
            self._h[layer][...] = 0 if h0 is None else h0[layer][0]
            if self._c[layer] is not None:
                self._c[layer][...] = 0 if c0 is None else c0[layer][0]

    @property
    def state(self):
        """The current state ``(h, c)``, valid as ``h0``/``c0`` of ``forward`` or ``reset``.

        Lists with one ``(1, batch_size, H_l)`` array per layer (``c``: LSTM, else None),
        copies.
        """
        h = [x[None].copy() for x in self._h]
        c = [x[None].copy() for x in self._c] if self.layout.cell == "lstm" else None
        return h, c

    def step(self, x, copy=True):
        """Advance every stream by one step.

        Parameters
        ----------
        x : ndarray of shape (batch_size, layout.input_size)
            The next input of every stream.
        copy : bool, default=True
            False returns the stream's own buffer, which the next step overwrites: one copy
            less, for a caller that is done with the result by then.

        Returns
        -------
        y : ndarray of shape (batch_size, layout.output_size) or (batch_size, n_outputs)
            The last layer's new state, or with ``head`` the output layer's values.
        """
        if type(x) is not np.ndarray or x.dtype != self._dtype:
            x = _check_array(x, "x", 2, self._dtype, check_finite=False)
        if x.shape != self._x.shape[1:]:
            if x.ndim != 2:
                raise ValueError(f"x must have 2 dimensions, got shape {x.shape}")
            raise ValueError(
                f"x must have shape {self._x.shape[1:]} (batch_size, input_size), got {x.shape}"
            )
        # One call copies x in, checks it and runs every layer (the kernel bound in __init__).
        if not self._run(x, self.check_finite):
            raise ValueError("x contains NaN or infinity")
        return self._out.copy() if copy else self._out


# ------------------------------------------------------------------------------ readouts

# The kinds of readout_forward.
READOUTS = ("last", "mean", "max", "attention")


def _check_readout_kind(kind):
    if kind not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {kind!r}")


def _default_attention_size(num_features):
    return max(1, num_features // 4)


def readout_params_size(kind, num_features, attention_size=None):
    """Number of parameters of a sequence-to-vector readout.

    Parameters
    ----------
    kind : {"last", "mean", "max", "attention"}
        The readout (see ``readout_forward``).
    num_features : int
        Features F of each step of Y.
    attention_size : int, default=None
        Scoring units A of ``"attention"``; None means ``max(1, F // 4)``.

    Returns
    -------
    size : int
        ``(F + 2) * A`` for ``"attention"``, 0 for the others.
    """
    _check_readout_kind(kind)
    if not _is_positive_int(num_features):
        raise ValueError(f"num_features must be a positive int, got {num_features!r}")
    if kind != "attention":
        return 0
    A = _default_attention_size(num_features) if attention_size is None else attention_size
    if not _is_positive_int(A):
        raise ValueError(f"attention_size must be None or a positive int, got {A!r}")
    return (num_features + 2) * A


def init_readout_params(
    kind, num_features, attention_size=None, random_state=None, dtype=np.float64
):
    """Fresh parameters of a readout (an empty array for the kinds without any).

    The attention layout is ``[W_a (F, A) row-major | b_a (A) | v (A)]`` for scores
    ``s_t = v . tanh(y_t W_a + b_a)``. ``W_a`` is Glorot-uniform, ``b_a`` and ``v`` are zero:
    the scores start equal, so attention starts as mean pooling and learns where to look
    (``v`` gets a gradient at once; ``W_a`` once ``v`` is non-zero).

    Parameters
    ----------
    kind : {"last", "mean", "max", "attention"}
        The readout (see ``readout_forward``).
    num_features : int
        Features F of each step of Y (``RNNLayout.output_size``).
    attention_size : int, default=None
        Scoring units A; None means ``max(1, F // 4)``: with A = F the scoring layer's three
        products cost as much as a second input projection (LSTM, H=64, T=100, B=32: 15% of
        a training step; A = F/4, 5%).
    random_state : int, RandomState instance or None, default=None
        Draws ``W_a``.
    dtype : {np.float32, np.float64}, default=np.float64
        The parameters' dtype (that of Y).

    Returns
    -------
    params : ndarray of shape (readout_params_size(kind, num_features, attention_size),)
        The flat parameters.
    """
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    n = readout_params_size(kind, num_features, attention_size)
    params = np.zeros(n, dtype=np.float64)
    if n:
        F = num_features
        A = n // (F + 2)
        limit = np.sqrt(6.0 / (F + A))
        params[: F * A] = check_random_state(random_state).uniform(-limit, limit, size=F * A)
    return params.astype(dtype)


class _ReadoutCache:
    """What readout_backward needs from readout_forward (batch sorted by length)."""

    __slots__ = ("kind", "Y", "lengths", "num_directions", "params", "reserve", "order", "used")


def readout_forward(kind, Y, lengths=None, params=None, num_directions=1, check_finite=True):
    """One vector per sequence from a layer's outputs (sequence-to-vector readout).

    Parameters
    ----------
    kind : {"last", "mean", "max", "attention"}
        ``"last"``: each direction's final state (the forward direction's at the sequence's
        last step, the reverse direction's at step 0). ``"mean"``, ``"max"``: over the
        sequence's own steps (padding never counts; the max's gradient goes to the first
        step holding it). ``"attention"``: additive attention pooling, ``sum_t a_t y_t``
        with ``a = softmax_t(v . tanh(y_t W_a + b_a))`` over the sequence's steps.
        Pooling runs over both directions' concatenated states.
    Y : ndarray of shape (T, B, F)
        The outputs of ``forward``, time-major; values past a sequence's length are not read.
    lengths : array-like of int of shape (B,), default=None
        As in ``forward``; None means every sequence has T steps.
    params : ndarray of shape (readout_params_size(...),), default=None
        The attention parameters (``init_readout_params``), Y's dtype; None for the others.
    num_directions : {1, 2}, default=1
        Directions whose states Y holds side by side (``"last"`` needs it).
    check_finite : bool, default=True
        Refuse NaN or infinity in Y within the sequences' lengths and in params.

    Returns
    -------
    features : ndarray of shape (B, F)
        One vector per sequence.
    cache : object
        Pass it to ``readout_backward`` (once).
    """
    _check_readout_kind(kind)
    Y = _check_array(Y, "Y", 3, None, check_finite=False)
    T, B, F = Y.shape
    if T == 0 or B == 0 or F == 0:
        raise ValueError(
            f"Y must hold at least one sequence of at least one step and one "
            f"feature, got shape {Y.shape} (T, B, F)"
        )
    if num_directions not in (1, 2) or F % num_directions:
        raise ValueError(
            f"num_directions must be 1 or 2 and divide Y's {F} features, got {num_directions!r}"
        )
    lengths = _check_lengths(lengths, T, B)
    if check_finite:
        _check_finite_steps(Y, lengths, "Y")
    if kind == "attention":
        if params is None:
            raise ValueError("the attention readout needs params (init_readout_params)")
        params = np.ascontiguousarray(_check_array(params, "params", 1, Y.dtype, check_finite))
        if params.shape[0] == 0 or params.shape[0] % (F + 2):
            raise ValueError(
                f"attention params over {F} features hold (F + 2) * A values "
                f"for A scoring units, got {params.shape[0]}; make them with "
                f"init_readout_params('attention', {F}, attention_size)"
            )
    elif params is not None and np.size(params):
        raise ValueError(f"the {kind!r} readout has no parameters; pass params=None")
    else:
        params = None
    order = None
    if (lengths[1:] > lengths[:-1]).any():  # the kernels take the batch sorted by length
        order = np.argsort(-lengths, kind="stable")
        Y, lengths = np.take(Y, order, axis=1), lengths[order]
    Y = np.ascontiguousarray(Y)
    _, reserve_size = _kernels.readout_sizes(
        _kernels.READOUTS[kind],
        T,
        B,
        num_directions,
        F // num_directions,
        0 if params is None else len(params) // (F + 2),
    )
    reserve = np.empty(reserve_size, dtype=Y.dtype) if reserve_size else None
    features = np.empty((B, F), dtype=Y.dtype)
    _kernels.readout_forward(
        _kernels.READOUTS[kind], Y, lengths, num_directions, params, features, reserve
    )
    cache = _ReadoutCache()
    cache.kind, cache.Y, cache.lengths, cache.num_directions = kind, Y, lengths, num_directions
    cache.params, cache.reserve, cache.order, cache.used = params, reserve, order, False
    if order is not None:
        features = features[np.argsort(order)]
    return features, cache


def readout_backward(cache, dfeatures, check_finite=True):
    """Gradient of ``readout_forward``.

    Parameters
    ----------
    cache : object
        The cache returned by ``readout_forward`` (usable once).
    dfeatures : ndarray of shape (B, F)
        Gradient of the loss with respect to ``features``.
    check_finite : bool, default=True
        Refuse NaN or infinity in dfeatures.

    Returns
    -------
    dY : ndarray of shape (T, B, F)
        Gradient with respect to Y; zero past each sequence's length.
    dparams : ndarray or None
        Gradient with respect to params (of their shape); None for the kinds without.
    """
    if not isinstance(cache, _ReadoutCache):
        raise TypeError("cache must be the second value returned by readout_forward")
    if cache.used:
        raise ValueError(
            "this cache was already used by readout_backward; run readout_forward again"
        )
    Y = cache.Y
    T, B, F = Y.shape
    dfeatures = _check_array(dfeatures, "dfeatures", 2, Y.dtype, check_finite)
    if dfeatures.shape != (B, F):
        raise ValueError(f"dfeatures must have shape {(B, F)}, got {dfeatures.shape}")
    cache.used = True
    if cache.order is not None:
        dfeatures = dfeatures[cache.order]
    dfeatures = np.ascontiguousarray(dfeatures)
    dY = np.zeros_like(Y)
    dparams = None if cache.params is None else np.zeros_like(cache.params)
    _kernels.readout_backward(
        _kernels.READOUTS[cache.kind],
        Y,
        cache.lengths,
        cache.num_directions,
        cache.params,
        cache.reserve,
        dfeatures,
        dY,
        dparams,
    )
    if cache.order is not None:
        dY = np.take(dY, np.argsort(cache.order), axis=1)
    return dY, dparams


def pool_steps(X, k, lengths=None, mode="mean"):
    """Shorten sequences k-fold: average (or take one of) every k steps.

    For long sequences, before the first layer. A sequence of length L becomes
    ``ceil(L / k)`` steps; with ``"mean"`` its last, partial block is averaged over its real
    steps only (padding is never read).

    Parameters
    ----------
    X : ndarray of shape (T, B, I)
        Time-major sequences (float32 or float64).
    k : int >= 1
        Steps per block.
    lengths : array-like of int of shape (B,), default=None
        As in ``forward``; None means every sequence has T steps.
    mode : {"mean", "stride"}, default="mean"
        ``"mean"``: step j is the mean of steps ``jk .. jk+k-1``; ``"stride"``: it is step
        ``jk``.

    Returns
    -------
    X_pooled : ndarray of shape (ceil(T / k), B, I)
        The shortened sequences, zero past each new length.
    lengths_pooled : ndarray of int of shape (B,)
        ``ceil(lengths / k)``.
    """
    if not _is_positive_int(k):
        raise ValueError(f"k must be a positive int, got {k!r}")
    if mode not in ("mean", "stride"):
        raise ValueError(f"mode must be 'mean' or 'stride', got {mode!r}")
    X = _check_array(X, "X", 3, None, check_finite=False)
    T, B, _ = X.shape
    if T == 0 or B == 0:
        raise ValueError(
            f"X must hold at least one sequence of at least one step, got shape "
            f"{X.shape} (T, B, I)"
        )
    lengths = _check_lengths(lengths, T, B)
    steps = -(-T // k)
    new_lengths = (-(-lengths // k)).astype(np.intc)
    real = np.arange(T)[:, None] < lengths  # (T, B)
    if mode == "stride":
        return np.ascontiguousarray(np.where(real[::k, :, None], X[::k], 0)), new_lengths
    # One pass: the real steps, zero elsewhere, summed per block of k (the last one padded).
    blocks = np.zeros((steps * k, *X.shape[1:]), dtype=X.dtype)
    np.copyto(blocks[:T], X, where=real[:, :, None])
    counts = np.clip(lengths - np.arange(steps)[:, None] * k, 0, k)  # real steps per block
    out = blocks.reshape(steps, k, *X.shape[1:]).sum(axis=1)
    out /= np.maximum(counts, 1)[:, :, None].astype(X.dtype)
    return out, new_lengths


def _is_positive_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def _state(states, layer, direction):
    return None if states is None else states[layer][direction]


def _workspace_size(layout, T, B, masked=False):
    cell = layout._kernel_cell
    return max(
        _kernels.buffer_sizes(cell, T, B, layout.layer_input_size(layer), H, masked)[1]
        for layer, H in enumerate(layout.hidden_sizes)
    )


def _check_params(layout, params, check_finite):
    if not isinstance(layout, RNNLayout):
        raise TypeError(f"layout must be an RNNLayout, got {type(layout).__name__}")
    params = _check_array(params, "params", 1, None, check_finite)
    if params.shape[0] != layout.n_params:
        raise ValueError(
            f"params has {params.shape[0]} values but {layout!r} needs {layout.n_params}"
        )
    return np.ascontiguousarray(params)


def _check_array(a, name, ndim, dtype, check_finite):
    """An ndarray of a float dtype (equal to ``dtype`` if given) with ``ndim`` dimensions."""
    a = np.asarray(a)
    if a.dtype.kind == "f" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {a.dtype}; "
            f"convert it with .astype(np.float32) or .astype(np.float64)"
        )
    if dtype is not None and a.dtype != dtype:
        raise TypeError(
            f"{name} is {a.dtype} but params are {dtype}; convert one of them "
            f"(e.g. {name}.astype(np.{dtype}))"
        )
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if check_finite and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return a


def _check_finite_steps(a, lengths, name):
    """Refuse NaN or inf at the steps a sequence has; padding may hold anything (NaN too)."""
    if lengths.min() == a.shape[0]:
        finite = np.isfinite(a).all()
    else:
        finite = np.isfinite(a[np.arange(a.shape[0])[:, None] < lengths]).all()
    if not finite:
        raise ValueError(f"{name} contains NaN or infinity within the sequences' lengths")


def _check_lengths(lengths, T, B):
    if lengths is None:
        return np.full(B, T, dtype=np.intc)
    lengths = np.asarray(lengths)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), one per sequence, got {lengths.shape}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(
            f"every length must be in [1, T={T}], got min {lengths.min()} and max {lengths.max()}"
        )
    return lengths.astype(np.intc)


def _check_states(layout, states, name, B, dtype, check_finite):
    """None, or a list with one (num_directions, B, H_l) array per layer."""
    if states is None:
        return None
    if isinstance(states, np.ndarray) or len(states) != layout.num_layers:
        raise ValueError(
            f"{name} must be a list with one array per layer "
            f"({layout.num_layers}), each of shape (num_directions, B, H_l)"
        )
    checked = []
    for layer, (s, H) in enumerate(zip(states, layout.hidden_sizes)):
        s = _check_array(s, f"{name}[{layer}]", 3, dtype, check_finite)
        if s.shape != (layout.num_directions, B, H):
            raise ValueError(
                f"{name}[{layer}] must have shape {(layout.num_directions, B, H)}, got {s.shape}"
            )
        checked.append(s)
    return checked
