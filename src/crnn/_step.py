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
from .functional import _batch_parts, _dropout_mask

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
    """

    def __init__(self, est, network, n_threads, params=None):
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
        x, lengths, dec_x, y, weights = self._inputs(batch)
        parts = self._parts(lengths)
        masks = self._masks(x, dec_x, parts)
        lr = self.est._optimizer.step_size()
        if parts[0] is None:
            return self.kernel.step(x, lengths, y, weights, batch_weight, lr, dec_x, *masks[0])
        # The weights are the whole batch's: the parts' losses and gradients add up.
        per_step = self.pattern.per_step

        def run(index, part, part_masks):
            take = _taker(part)
            return self.kernel.gradient(
                index,
                take(x),
                lengths[part],
                take(y) if per_step else y[part],
                take(weights) if per_step else weights[part],
                batch_weight,
                None if dec_x is None else take(dec_x),
                *part_masks,
            )

        losses = map_parts(run, range(len(parts)), parts, masks)
        return self.kernel.update(len(parts), float(sum(losses)), lr)

    def gradient(self, batch, batch_weight, grad):
        """The loss of a minibatch (without the L2 penalty); its gradient into ``grad``
        unless the loss is not finite. No update; the batch runs in one part."""
        x, lengths, dec_x, y, weights = self._inputs(batch)
        masks = self._masks(x, dec_x, [None])[0]
        loss = self.kernel.gradient(0, x, lengths, y, weights, batch_weight, dec_x, *masks)
        if np.isfinite(loss):
            grad[:] = self.kernel.grads[0]
        return loss

    def _inputs(self, batch):
        x, lengths, dec_x = self.pattern.train_inputs(self.network, self.head, batch)
        lengths = lengths.astype(np.intc, copy=False)
        weights = np.asarray(batch.weights, dtype=np.float64)
        return x, lengths, dec_x, batch.y, weights

    def _parts(self, lengths):
        """The batch's parts (``[None]``: one), split as ``functional.forward`` splits."""
        if self.n_threads == 1:
            return [None]
        return _batch_parts(lengths, self.n_threads, self.network.encoder)

    def _masks(self, x, dec_x, parts):
        """Each part's ``(input_mask, rec_mask, drop_mask)``: the dropout masks, flat and back
        to back as the kernel takes them (None where off), drawn as the functional API's
        forward of the encoder, then of the decoder, draws them."""
        est = self.est
        p_in, p_rec, p_drop = est.input_dropout, est.recurrent_dropout, est.dropout
        if max(p_in, p_rec, p_drop) == 0:
            return [(None, None, None)] * len(parts)
        rng = est._random_state
        dtype = np.dtype(x.dtype)
        B = x.shape[1]
        steps = [x.shape[0]] + ([dec_x.shape[0]] if dec_x is not None else [])
        seeds, input_mask, recurrent = [], None, []
        for i, layout in enumerate(self.layouts):
            seeds.append(rng.randint(2**31 - 1, size=len(parts)) if p_drop > 0 else None)
            if p_in > 0 and i == 0:  # input dropout is the encoder's (X)
                input_mask = _dropout_mask(rng, (B, layout.input_size), p_in, dtype)
            if p_rec > 0:
                recurrent += [
                    _dropout_mask(rng, (layout.num_directions, B, H), p_rec, dtype)
                    for H in layout.hidden_sizes
                ]
        out = []
        for index, part in enumerate(parts):
            take = _taker(part)
            rec = np.concatenate([take(m).reshape(-1) for m in recurrent]) if recurrent else None
            drop = None
            if p_drop > 0:
                size = B if part is None else len(part)
                drop = [
                    _dropout_mask(check_random_state(s[index]), (T, size, D_H), p_drop, dtype)
                    for layout, s, T in zip(self.layouts, seeds, steps)
                    for D_H in (layout.num_directions * H for H in layout.hidden_sizes[:-1])
                ]
                drop = np.concatenate([m.reshape(-1) for m in drop]) if drop else None
            part_input = None
            if input_mask is not None:
                part_input = input_mask if part is None else input_mask[part]
            out.append((part_input, rec, drop))
        return out


def _taker(part):
    """Sequences ``part`` of a batch-on-axis-1 array (the whole array for None)."""
    if part is None:
        return lambda a: a
    return lambda a: np.take(a, part, axis=1)
