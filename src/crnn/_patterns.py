"""The sequence patterns: what feeds the output layer, and how targets are laid out.

A fitted estimator is one flat parameter array, ``params_``, cut into views
(:class:`Network`; all of them trained by one optimizer update per minibatch)::

    params_ = [ encoder | decoder (pattern "encdec" only) | readout | W_out | b_out ]

The encoder is a stack of recurrent layers (see :mod:`crnn.functional`) with
``output_size = num_directions * hidden_layer_sizes[-1]`` features; the output
layer (the head, :mod:`crnn._heads`) is dense, ``W_out`` of shape
``(output_size, n_outputs_)``. The readout's parameters are those of seq2vec's
``readout="attention"`` (``functional.init_readout_params``: ``W_a (F, A)``,
``b_a (A)``, ``v (A)``, ``F = output_size``, ``A = max(1, F // 4)``), empty otherwise.
What feeds the head is the pattern's business, one class each:

=========  =============================================================
seq2vec    one vector per sequence from the last layer (``readout``): its
           final state (the state after each sequence's own last step,
           ``[forward | reverse]`` when bidirectional), or the mean, the
           max or attention pooling of its outputs over the real steps
seq2seq    the last layer's output at every step
vec2seq    the same, the input vector being fed at every step
encdec     a decoder's output at every step. The decoder is a one-way
           stack with ``num_directions * hidden_layer_sizes[l]`` units per
           layer, started from the encoder's final states; its input is
           the previous target (one-hot for labels) and a start flag:
           the true one while training (teacher forcing), its own
           previous output when predicting.
=========  =============================================================

With ``pool_steps=k`` (seq2vec and encdec, whose encoders read the whole input) the
encoder reads the input averaged over blocks of k steps (``functional.pool_steps``).

A pattern lays out and validates the targets (:meth:`~_Pattern.targets`), gives the
output lengths, the inputs of a training minibatch's compiled step
(:meth:`~_Pattern.train_inputs`, :attr:`~_Pattern.net_kind`; crnn._step) and the outputs
of prediction (:meth:`~_Pattern.outputs`; the encoder-decoder's decoding in C). Patterns
hold no state; :func:`get_pattern` gives the one of a name. Adding a pattern touches this
file only.
"""

import numpy as np

from . import _kernels
from ._data import (
    as_sequence_list,
    check_sequences,
    check_step_weights,
    check_vectors,
    gather_time_major,
    is_ragged,
    is_step_weights,
    pad_targets,
)
from .functional import (
    forward,
    pool_steps,
    readout_forward,
    readout_params_size,
)

__all__ = ["PATTERNS", "Network", "get_pattern", "infer_pattern"]

PATTERNS = ("seq2vec", "seq2seq", "vec2seq", "encdec")
# Prediction runs over chunks of sequences whose largest buffer (steps x batch x gate
# units) stays near this many values, sorted by length so that chunks carry little padding.
_PREDICT_CHUNK_VALUES = 1 << 22
# The most steps the kernels run (they count in C ints).
_MAX_STEPS = 2**31 - 1


class Network:
    """The layouts of a fitted estimator and the slices of its flat parameter array.

    ``readout`` is the seq2vec readout (``"last"`` for the other patterns), ``pool_steps``
    the k of the encoder's step pooling or None.
    """

    def __init__(self, encoder, decoder, n_outputs, readout="last", pool_steps=None):
        self.encoder, self.decoder, self.n_outputs = encoder, decoder, n_outputs
        self.readout, self.pool_steps = readout, pool_steps
        width = encoder.output_size
        self.readout_size = readout_params_size(readout, width)
        sizes = [
            encoder.n_params,
            decoder.n_params if decoder else 0,
            self.readout_size,
            width * n_outputs,
        ]
        self.bounds = np.cumsum([0, *sizes, n_outputs])
        self.n_params = int(self.bounds[-1])
        self.head_shape = (width, n_outputs)

    def split(self, flat):
        """Views ``(encoder, decoder, W_out, b_out)`` into a flat array."""
        enc, dec, _, W, b = (flat[lo:hi] for lo, hi in zip(self.bounds[:-1], self.bounds[1:]))
        return enc, dec, W.reshape(self.head_shape), b

    def readout_params(self, flat):
        """The view of the readout's parameters in a flat array (empty but for attention)."""
        return flat[self.bounds[2] : self.bounds[3]]

    def pool(self, x, lengths):
        """The encoder's input ``(T, B, F)`` and lengths after step pooling, if any."""
        if self.pool_steps is None:
            return x, lengths
        return pool_steps(x, self.pool_steps, lengths)

    def readout_forward(self, flat, Y, lengths, h_n):
        """The seq2vec features ``(B, output_size)`` and the readout's cache (None for
        "last", read from the final states ``h_n``)."""
        if self.readout == "last":
            return _final_features(h_n), None
        return readout_forward(
            self.readout,
            Y,
            lengths,
            self.readout_params(flat) if self.readout_size else None,
            self.encoder.num_directions,
            check_finite=False,
        )

    def compiled(self, kind, head, truncate=None):
        """The network's shape for the compiled minibatch step (``_kernels.Net``): ``kind``
        the pattern's :attr:`~_Pattern.net_kind`, ``head`` the head's ``kernel_head``."""
        encoder = self.encoder
        F = encoder.output_size
        return _kernels.Net(
            kind,
            encoder._kernel_cell,
            encoder.input_size,
            encoder.hidden_sizes,
            encoder.num_directions,
            _kernels.READOUTS[self.readout],
            self.readout_size // (F + 2),
            head,
            self.n_outputs,
            min(truncate or 0, _MAX_STEPS),  # at least every step: full BPTT
        )

    def weight_mask(self, dtype):
        """1 for weights, 0 for biases: the entries the L2 penalty applies to."""
        mask = np.ones(self.n_params, dtype=dtype)
        if self.readout_size:  # attention: W_a, v are weights, b_a a bias
            F = self.encoder.output_size
            A = self.readout_size // (F + 2)
            self.readout_params(mask)[F * A : F * A + A] = 0
        enc, dec, _, b = self.split(mask)
        for layout, flat in ((self.encoder, enc), (self.decoder, dec)):
            if layout is None:
                continue
            for directions in layout.views(flat):
                for v in directions:
                    v["b"][:] = 0
                    if "b_hn" in v:
                        v["b_hn"][:] = 0
        b[:] = 0
        return mask


def _final_features(h_n):
    """The last layer's final state ``(num_directions, B, H)`` as ``(B, num_directions * H)``."""
    last = h_n[-1]
    return last[0] if len(last) == 1 else np.concatenate(last, axis=1)


class _Pattern:
    """A per-step pattern with sequence input: seq2seq's behaviour, the others override."""

    name = None
    # Whether X holds one vector per sequence (else sequences).
    vector_input = False
    # Whether targets and predictions are per step (else one per sequence).
    per_step = True
    # Whether the number of output steps is free (n_steps_out), not X's steps.
    free_output_steps = False
    # Whether predict may carry the state from one chunk of a stream to the next.
    streaming = True
    # Whether the encoder reads the whole input before any output (pool_steps allowed).
    whole_input = False
    # Whether training reads the targets as inputs too (teacher forcing), so that a step of
    # weight zero still needs its target.
    reads_targets = False

    # What feeds the head in the compiled minibatch step (crnn_net_kind in crnn.h).
    net_kind = "seq2seq"

    def decoder(self, encoder, n_outputs):
        """The decoder's layout, or None."""
        return None

    def check_inputs(self, X, dtype):
        """``(x, lengths)``: sequences ``(N, T, F)`` and lengths (vectors ``(N, F)``, None)."""
        return check_sequences(X, dtype=dtype)

    def target_lengths(self, x_lengths):
        """The lengths per-step targets must have (None: their own)."""
        return x_lengths

    def targets(self, est, head, y, n, x_lengths, sample_weight, reset, classes):
        """Validate and encode targets; returns ``(y, y_lengths, weights, mask)``.

        ``sample_weight`` is ``(N,)``, or per step (see :func:`check_step_weights`). ``y`` is
        time-major ``(T_y, N)`` codes or ``(T_y, N, k)`` values, ``weights`` ``(T_y, N)``
        (zero at padding), ``mask`` the steps whose targets are read.
        """
        values, y_lengths = pad_targets(
            y, n, lengths=self.target_lengths(x_lengths), nan_padding=head.nan_padding
        )
        mask = np.arange(values.shape[1])[:, np.newaxis] < y_lengths
        if is_step_weights(sample_weight):
            weights = check_step_weights(sample_weight, y_lengths).T
            if not self.reads_targets:
                mask &= weights > 0  # a step of weight zero is masked: its target is not read
        else:
            weights = mask * sample_weight
        y = head.encode_step_targets(est, values.swapaxes(0, 1), mask, reset, classes)
        return y, y_lengths, weights, mask

    def n_steps_out(self, y_lengths):
        """The default number of output steps learned at the first fit (None: X's)."""
        return int(y_lengths.max()) if self.free_output_steps else None

    def output_lengths(self, n_steps_out, n, lengths, default):
        """Number of output steps of each of ``n`` sequences (None for seq2vec)."""
        if not self.free_output_steps:
            if n_steps_out is not None:
                raise ValueError(
                    f"n_steps_out applies to the vec2seq and encdec patterns, not to "
                    f"{self.name!r}, whose outputs follow the input steps."
                )
            return lengths
        if n_steps_out is None:
            return np.full(n, default, dtype=np.intp)
        steps = np.asarray(n_steps_out)
        if steps.ndim == 0:
            steps = np.full(n, steps)
        if steps.shape != (n,) or steps.dtype.kind not in "iu" or (steps < 1).any():
            raise ValueError(
                "n_steps_out must be a positive int or an array of n_sequences="
                f"{n} positive ints, got {n_steps_out!r}."
            )
        if steps.max() > _MAX_STEPS:
            raise ValueError(
                f"n_steps_out must be at most {_MAX_STEPS} (the kernels count steps in C "
                f"ints), got {steps.max()}."
            )
        return steps.astype(np.intp)

    def scoring_lengths(self, x_lengths, y_lengths):
        """The output steps to compare with targets of lengths ``y_lengths``."""
        return x_lengths

    # ------------------------------------------------------------------ training

    def _encoder_input(self, batch):
        """A time-major minibatch's encoder input and its lengths."""
        return batch.x, batch.x_lengths

    def train_inputs(self, network, head, batch):
        """The compiled step's inputs of a time-major minibatch: ``(x, lengths, dec_x)``,
        the encoder's input ``(T, B, F)`` and lengths, and the decoder's teacher inputs
        (encdec) or None."""
        x, lengths = network.pool(*self._encoder_input(batch))
        return x, lengths, None

    # ------------------------------------------------------------------ prediction

    def _output_steps(self, lengths, out_lengths):
        return lengths.max()

    def _allocate(self, n, k, lengths, out_lengths, dtype):
        return np.zeros((self._output_steps(lengths, out_lengths), n, k), dtype=dtype)

    def _chunk_input(self, x, idx, lengths, out_lengths):
        chunk_lengths = lengths[idx]
        return gather_time_major(x, idx, chunk_lengths[0]), chunk_lengths

    def _write(self, out, idx, Y, lengths, h_n, c_n, network, params, head, out_lengths):
        _, _, W, b = network.split(params)
        out[: len(Y), idx] = Y @ W + b

    def outputs(
        self,
        network,
        params,
        head,
        x,
        lengths,
        out_lengths=None,
        state=None,
        return_state=False,
        n_threads=1,
    ):
        """Output-layer values (before any softmax) for validated input.

        Runs over chunks of sequences sorted by length. Returns ``(outputs, state)``:
        outputs ``(N, k)`` for seq2vec, else time-major ``(T_out, N, k)``; state is the
        final ``(h_n, c_n)`` when ``return_state``, else None.
        """
        enc = network.split(params)[0]
        encoder = network.encoder
        key = lengths if lengths is not None else out_lengths
        n = len(key)
        order = np.argsort(-key, kind="stable")
        width = encoder.num_directions * encoder.gates * max(encoder.hidden_sizes)
        chunk = int(np.clip(_PREDICT_CHUNK_VALUES // (key.max() * width), 1, n))
        dtype = params.dtype
        out = self._allocate(n, network.n_outputs, lengths, out_lengths, dtype)
        final = None
        if return_state:
            final = (
                [np.empty((1, n, h), dtype=dtype) for h in encoder.hidden_sizes],
                [np.empty((1, n, h), dtype=dtype) for h in encoder.hidden_sizes]
                if encoder.cell == "lstm"
                else None,
            )
        for start in range(0, n, chunk):
            idx = order[start : start + chunk]
            xc, chunk_lengths = network.pool(*self._chunk_input(x, idx, lengths, out_lengths))
            h0 = c0 = None
            if state is not None:
                h0 = [h[:, idx] for h in state[0]]
                c0 = None if state[1] is None else [c[:, idx] for c in state[1]]
            Y, (h_n, c_n), _ = forward(
                encoder,
                enc,
                xc,
                chunk_lengths,
                h0,
                c0,
                keep_cache=False,
                check_finite=False,
                n_threads=n_threads,
            )
            self._write(out, idx, Y, chunk_lengths, h_n, c_n, network, params, head, out_lengths)
            if final is not None:
                for layer, h in enumerate(h_n):
                    final[0][layer][:, idx] = h
                    if c_n is not None:
                        final[1][layer][:, idx] = c_n[layer]
        return out, final


class Seq2Seq(_Pattern):
    """One output per input step, from the last layer's output at that step."""

    name = "seq2seq"


class Seq2Vec(_Pattern):
    """One output per sequence, from the last layer's final state."""

    name = "seq2vec"
    net_kind = "seq2vec"
    per_step = False
    whole_input = True

    def targets(self, est, head, y, n, x_lengths, sample_weight, reset, classes):
        """Validate and encode targets ``(N,)`` codes or ``(N, k)`` values; weights ``(N,)``."""
        return head.encode_vector_targets(est, y, n, reset, classes), None, sample_weight, None

    def _allocate(self, n, k, lengths, out_lengths, dtype):
        return np.empty((n, k), dtype=dtype)

    def _write(self, out, idx, Y, lengths, h_n, c_n, network, params, head, out_lengths):
        _, _, W, b = network.split(params)
        out[idx] = network.readout_forward(params, Y, lengths, h_n)[0] @ W + b


class Vec2Seq(_Pattern):
    """A vector fed at every step of an output sequence of free length."""

    name = "vec2seq"
    vector_input = True
    free_output_steps = True
    streaming = False

    def check_inputs(self, X, dtype):
        """``(x, None)``: vectors ``(N, F)``."""
        return check_vectors(X, dtype=dtype), None

    def target_lengths(self, x_lengths):
        """None: the targets' own lengths."""
        return None

    def scoring_lengths(self, x_lengths, y_lengths):
        """The targets' lengths."""
        return y_lengths

    def _encoder_input(self, batch):
        lengths = batch.y_lengths
        x = np.broadcast_to(batch.x, (lengths.max(), *batch.x.shape))
        return np.ascontiguousarray(x), lengths

    def _output_steps(self, lengths, out_lengths):
        return out_lengths.max()

    def _chunk_input(self, x, idx, lengths, out_lengths):
        chunk_lengths = out_lengths[idx]
        xc = np.broadcast_to(x[idx], (chunk_lengths[0], len(idx), x.shape[1]))
        return np.ascontiguousarray(xc), chunk_lengths


def _bridge(states):
    """Encoder final states (per layer ``(D, B, H)``) as the decoder's initial states: per
    layer ``(B, D*H)``, the directions side by side, flat and back to back (None: None)."""
    if states is None:
        return None
    return np.concatenate([np.concatenate(s, axis=1).reshape(-1) for s in states])


class EncDec(_Pattern):
    """An encoder over the input, a decoder started from its final states for the output.

    The decoder reads the previous target and a start flag: the true one while training
    (teacher forcing), its own previous output when predicting (:meth:`decode`).
    """

    name = "encdec"
    net_kind = "encdec"
    free_output_steps = True
    streaming = False
    whole_input = True
    reads_targets = True

    def train_inputs(self, network, head, batch):
        """The encoder's input and lengths, and the teacher inputs ``(T_out, B, k + 1)``."""
        x, lengths = network.pool(batch.x, batch.x_lengths)
        return x, lengths, self.teacher_inputs(head, batch.y, network.n_outputs, x.dtype)

    def decoder(self, encoder, n_outputs):
        """A one-way stack with ``num_directions * H`` units per layer, inputs ``k + 1``."""
        return type(encoder)(
            encoder.cell,
            n_outputs + 1,
            tuple(encoder.num_directions * h for h in encoder.hidden_sizes),
            False,
            encoder.nonlinearity,
        )

    def target_lengths(self, x_lengths):
        """None: the targets' own lengths."""
        return None

    def scoring_lengths(self, x_lengths, y_lengths):
        """The targets' lengths."""
        return y_lengths

    @staticmethod
    def teacher_inputs(head, y, n_outputs, dtype):
        """Decoder inputs for teacher forcing: a start flag, then the previous targets."""
        steps, batch = y.shape[:2]
        k = n_outputs
        inputs = np.zeros((steps, batch, k + 1), dtype=dtype)
        inputs[0, :, k] = 1
        inputs[1:, :, :k] = head.decoder_input(y[:-1], k, dtype)
        return inputs

    def _output_steps(self, lengths, out_lengths):
        return out_lengths.max()

    def _write(self, out, idx, Y, lengths, h_n, c_n, network, params, head, out_lengths):
        steps = out_lengths[idx].max()
        out[:steps, idx] = self.decode(network, params, head, h_n, c_n, steps)

    def decode(self, network, params, head, h_n, c_n, steps):
        """Run the decoder on its own outputs for ``steps`` steps from the encoder's final
        states, in one C call (``crnn_net_decode``): ``(steps, B, k)`` outputs."""
        batch = h_n[0].shape[1]
        out = np.empty((steps, batch, network.n_outputs), dtype=params.dtype)
        h0, c0 = _bridge(h_n), _bridge(c_n)
        net = network.compiled(self.net_kind, head.kernel_head)
        _kernels.net_decode(net, params, batch, steps, h0, c0, out)
        return out


_BY_NAME = {pattern.name: pattern for pattern in (Seq2Vec(), Seq2Seq(), Vec2Seq(), EncDec())}


def get_pattern(name):
    """The pattern object of a name in :data:`PATTERNS`."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown pattern {name!r}; expected one of {PATTERNS}.") from None


def infer_pattern(y, x_lengths):
    """The pattern that ``pattern="auto"`` reads from the targets and the input lengths.

    ``n_steps`` is the number of steps of X (of its longest sequence):

    ==================================================  =========
    y                                                    pattern
    ==================================================  =========
    1D ``(n_sequences,)``                                seq2vec
    2D ``(n_sequences, m)``, ``m != n_steps``            seq2vec
    2D ``(n_sequences, n_steps)``                        seq2seq
    3D ``(n_sequences, n_steps, m)``                     seq2seq
    3D ``(n_sequences, t, m)``, ``t != n_steps``         encdec
    list of sequences as long as those of X              seq2seq
    list of sequences of other lengths                   encdec
    ==================================================  =========

    vec2seq is never inferred (its 2D X would read as univariate sequences).
    """
    n_steps = x_lengths.max()
    y = as_sequence_list(y)
    if is_ragged(y):
        y_lengths = [np.shape(item)[0] for item in y]
        return "seq2seq" if np.array_equal(y_lengths, x_lengths) else "encdec"
    shape = np.asarray(y).shape
    if len(shape) <= 1:
        return "seq2vec"
    if len(shape) == 2:
        return "seq2seq" if shape[1] == n_steps else "seq2vec"
    return "seq2seq" if shape[1] == n_steps else "encdec"
