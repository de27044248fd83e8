"""One training minibatch of an estimator, in one compiled call.

:class:`MinibatchStep` binds the network (:meth:`crnn._patterns.Network.compiled`), the
flat parameters and the optimizer's state to a ``_kernels.TrainStep`` once per fit; each
minibatch then costs one C call (``crnn_net_grad`` and ``crnn_train_update`` in
``include/crnn/crnn.h``) that runs the stacked layers forward, the head and its loss, the
backward pass, the L2 penalty, clipping and the optimizer's update, the GIL released.
Python picks the sequences (the pattern's :meth:`~crnn._patterns._Pattern.train_inputs`)
and draws the dropout masks, in the order and from the random state
:func:`crnn.functional.forward` draws them, so that a fit's masks do not depend on the path.

A batch whose recurrent products are large enough (:func:`crnn.functional._batch_parts`)
runs in parts on ``n_threads`` threads, each part's gradient in its own buffer, then one
update over their sum.
"""

import numpy as np
from sklearn.utils import check_random_state

from . import _kernels
from ._parallel import map_parts
from .functional import _batch_parts, _dropout_mask, _take_batch

__all__ = ["MinibatchStep"]


class MinibatchStep:
    """The compiled training step of an estimator's network.

    Parameters
    ----------
    est : BaseRNN
        Its hyper-parameters (dropout, clipping, truncation), ``params_``, ``_optimizer``,
        ``_random_state``, ``_pattern`` and ``_head``.
    network : crnn._patterns.Network
        The layouts of ``params_``.
    n_threads : int
        Threads for a batch run in parts.
    params : ndarray, default=None
        The parameters to train (``est.params_``); others only for :meth:`gradient`.
    input_scaling : tuple of ndarray or None, default=None
        ``(mean, scale)`` to standardize each minibatch's input with, in the kernel.
    """

    def __init__(self, est, network, n_threads, params=None, input_scaling=None):
        self.est, self.network, self.n_threads = est, network, n_threads
        self.pattern, self.head = est._pattern, est._head
        params = est.params_ if params is None else params
        self.net = network.compiled(
            self.pattern.net_kind, self.head.kernel_head, est.truncate_bptt
        )
        # Without an optimizer (gradient only) the step has no state to update.
        optimizer = getattr(est, "_optimizer", None) if params is est.params_ else None
        state = optimizer.kernel_state() if optimizer is not None else dict(solver="sgd")
        self.kernel = _kernels.TrainStep(self.net, params, clip_norm=est.clip_norm, **state)
        if input_scaling is not None:
            self.kernel.set_input_scaling(*input_scaling)
        self.layouts = [network.encoder] + ([network.decoder] if network.decoder else [])

    def set_decay(self, decay):
        """The L2 penalty's factor of each parameter, or None (see ``Trainer.epoch``)."""
        self.kernel.set_decay(decay)

    def train(self, batch, batch_weight):
        """Train on one time-major minibatch (its weights sum to ``batch_weight`` > 0).

        Returns ``(loss, updated)``: the weighted mean loss with the L2 penalty, and whether
        the parameters moved (False: the loss or the gradient was not finite, and nothing
        changed).
        """
        inputs = self._inputs(batch)
        parts = self._parts(inputs[1])
        masks = self._masks(inputs[0], inputs[4], parts)
        lr = self.est._optimizer.step_size()
        if parts[0] is None:
            x, lengths, y, weights, *rest = self._call_args(inputs, masks[0], None)
            return self.kernel.step(x, lengths, y, weights, batch_weight, lr, *rest)

        # The weights are the whole batch's: the parts' losses and gradients add up.
        def run(index, part, part_masks):
            x, lengths, y, weights, *rest = self._call_args(inputs, part_masks, part)
            return self.kernel.gradient(index, x, lengths, y, weights, batch_weight, *rest)

        losses = map_parts(run, range(len(parts)), parts, masks)
        return self.kernel.update(len(parts), float(sum(losses)), lr)

    def gradient(self, batch, batch_weight, grad):
        """The loss of a minibatch (without the L2 penalty); its gradient into ``grad``
        unless the loss is not finite. No update; the batch runs in one part."""
        inputs = self._inputs(batch)
        masks = self._masks(inputs[0], inputs[4], [None])[0]
        x, lengths, y, weights, *rest = self._call_args(inputs, masks, None)
        loss = self.kernel.gradient(0, x, lengths, y, weights, batch_weight, *rest)
        if np.isfinite(loss):
            grad[:] = self.kernel.grads[0]
        return loss

    def _inputs(self, batch):
        """``(x, lengths, y, weights, dec)``: dec is encdec's ``(dec_x, dec_lengths)``."""
        x, lengths, dec_x = self.pattern.train_inputs(self.network, self.head, batch)
        lengths = lengths.astype(np.intc, copy=False)
        weights = np.asarray(batch.weights, dtype=np.float64)
        dec = None if dec_x is None else (dec_x, batch.y_lengths.astype(np.intc))
        return x, lengths, batch.y, weights, dec

    def _parts(self, lengths):
        """The batch's parts (``[None]``: one), split as ``functional.forward`` splits."""
        if self.n_threads == 1:
            return [None]
        return _batch_parts(lengths, self.n_threads, self.network.encoder)

    def _call_args(self, inputs, masks, part):
        """The kernel's arguments for sequences ``part`` of the batch (None: all):
        ``(x, lengths, y, weights, dec, input_mask, rec_mask, drop_mask)``, the decoder's
        side (y, weights, its masks) in the decoder's order, by decreasing target length."""
        x, lengths, y, weights, dec = inputs
        input_mask, enc_rec, dec_rec, drop = masks
        if part is not None:
            x, lengths = _take(x, part), lengths[part]
            if self.pattern.per_step:
                y, weights = _take(y, part), _take(weights, part)
            else:
                y, weights = y[part], weights[part]
            if dec is not None:
                dec = (_take(dec[0], part), dec[1][part])
        if dec is not None:
            dec_x, dec_lengths = dec
            order = None
            if (dec_lengths[1:] > dec_lengths[:-1]).any():
                order = np.argsort(-dec_lengths, kind="stable").astype(np.intc)
                dec_x, dec_lengths = dec_x[:, order], dec_lengths[order]
                y, weights = y[:, order], weights[:, order]
                dec_rec = [m[:, order] for m in dec_rec]
            dec = (dec_x, dec_lengths, order)
        rec = enc_rec + dec_rec
        if len(rec) == 1:
            rec = rec[0]  # the kernel reads it flat: no copy
        elif rec:
            rec = np.concatenate([m.reshape(-1) for m in rec])
        else:
            rec = None
        return x, lengths, y, weights, dec, input_mask, rec, drop

    def _masks(self, x, dec, parts):
        """Each part's dropout masks, ``(input_mask, encoder_rec, decoder_rec, drop_mask)``
        (None or empty where off), drawn as ``functional.forward`` of the encoder, then of
        the decoder, draws them: recurrent masks per layer ``(D, B_part, H)``, in the
        batch's order; between-layer masks flat, back to back, each stack's in the order
        it runs (the decoder's by decreasing target length)."""
        est = self.est
        p_in, p_rec, p_drop = est.input_dropout, est.recurrent_dropout, est.dropout
        if max(p_in, p_rec, p_drop) == 0:
            return [(None, [], [], None)] * len(parts)
        rng = est._random_state
        dtype = np.dtype(x.dtype)
        B = x.shape[1]
        steps = [x.shape[0]] + ([dec[0].shape[0]] if dec is not None else [])
        seeds, input_mask, recurrent = [], None, []
        for i, layout in enumerate(self.layouts):
            seeds.append(rng.randint(2**31 - 1, size=len(parts)) if p_drop > 0 else None)
            if p_in > 0 and i == 0:  # input dropout is the encoder's (X)
                input_mask = _dropout_mask(rng, (B, layout.input_size), p_in, dtype)
            recurrent.append(
                [
                    _dropout_mask(rng, (layout.num_directions, B, H), p_rec, dtype)
                    for H in layout.hidden_sizes
                ]
                if p_rec > 0
                else []
            )
        dec_rec = recurrent[1] if len(recurrent) > 1 else []
        if parts == [None] and p_drop == 0:  # the common case, without the per-part work
            return [(input_mask, recurrent[0], dec_rec, None)]
        out = []
        for index, part in enumerate(parts):
            drop = None
            if p_drop > 0:
                size = B if part is None else len(part)
                drop = [
                    _dropout_mask(rng_part, (T, size, layout.num_directions * H), p_drop, dtype)
                    for layout, s, T in zip(self.layouts, seeds, steps)
                    for rng_part in [check_random_state(s[index])]
                    for H in layout.hidden_sizes[:-1]
                ]
                drop = np.concatenate([m.reshape(-1) for m in drop]) if drop else None
            part_input = None
            if input_mask is not None:
                part_input = input_mask if part is None else input_mask[part]
            out.append(
                (
                    part_input,
                    [_take(m, part) for m in recurrent[0]],
                    [_take(m, part) for m in dec_rec],
                    drop,
                )
            )
        return out


def _take(a, part):
    """Sequences ``part`` of a batch-on-axis-1 array (the whole array for None)."""
    return a if part is None else _take_batch(a, part)
