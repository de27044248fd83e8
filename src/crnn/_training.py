"""The training loop of the estimators: epochs of minibatches until a stopping rule says so.

:class:`Trainer` runs ``fit`` and ``partial_fit``: it draws minibatches from a data
source (:class:`crnn._data.TrainingData`, or anything with ``__len__``, ``weights``,
``permutation(rng)`` and ``take(idx, time_major=True)``, such as
:class:`crnn._chunked.ChunkedTrainingData`). Each minibatch runs in one compiled call
(:class:`crnn._step.MinibatchStep`): the network's loss and gradient, the L2 penalty,
clipping and the optimizer's update of the flat parameters, in place. After each epoch it
records the losses, evaluates the validation set, and asks the stopping rule; on a plateau
the optimizer decides (:meth:`crnn._optim.SGD.trigger_stopping`): a smaller learning rate,
or a stop.

The stopping rule fits small data sets as well as large ones: an epoch improves when its
monitored loss falls below ``(1 - tol)`` times the best so far (relative, so the same
``tol`` serves a loss near 1e-3 and one near 1e3), and a stop needs more than
``n_iter_no_change`` epochs *and* at least :data:`MIN_UPDATES_NO_CHANGE` optimizer
updates without improvement: on 36 sequences in minibatches of 32 an epoch is two
updates, and ten of them are too few to leave the first plateau.

A copy of the weights after each finished epoch (``last_good``) is the fallback when a
loss, gradient or weight becomes non-finite, or on Ctrl-C. The estimator's ``callback``
sees each finished epoch and may stop training there.
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._step import MinibatchStep

__all__ = ["Trainer", "evaluate", "split_validation", "uses_validation"]

# The fewest updates without improvement before a stop: what n_iter_no_change=10 epochs
# give 50 minibatches an epoch (1600 sequences); smaller data sets get more epochs.
MIN_UPDATES_NO_CHANGE = 500
# early_stopping="auto" holds out a validation set from this many training sequences on
# (bench/ACCURACY.md: below it the held-out sequences are worth more as training data).
AUTO_EARLY_STOPPING_MIN_SEQUENCES = 1000


def uses_validation(est, n_sequences):
    """Whether a fit on ``n_sequences`` holds out a validation set (None: partial_fit,
    where only ``early_stopping=True`` asks for one, to be refused)."""
    if isinstance(est.early_stopping, str):  # "auto"
        return n_sequences is not None and n_sequences >= AUTO_EARLY_STOPPING_MIN_SEQUENCES
    return bool(est.early_stopping)


# With verbose, the least time between two progress lines within an epoch, in seconds: an
# epoch shorter than this prints only its summary line.
PROGRESS_INTERVAL = 5.0


class _Diverged(Exception):
    """The loss or the gradient of a minibatch is not finite."""


def split_validation(est, data):
    """Hold out ``validation_fraction`` of ``data``; returns ``(train, validation)``."""
    n = len(data)
    stratify = data.y if est._head.stratify and not est._pattern.per_step else None
    train_idx, val_idx = train_test_split(
        np.arange(n),
        test_size=est.validation_fraction,
        random_state=est._random_state,
        stratify=stratify,
    )
    if len(val_idx) < 2:
        raise ValueError(
            f"The validation set is too small ({len(val_idx)} of {n} sequences). "
            "Increase validation_fraction or the number of sequences, or set "
            "early_stopping=False."
        )
    return data.take(np.sort(train_idx)), data.take(np.sort(val_idx))


def evaluate(est, network, data):
    """Loss and score on validation data, predicting as ``predict`` does."""
    head = est._head
    out, _ = est._outputs(network, data.x, data.x_lengths, data.y_lengths)
    out = out.reshape(-1, network.n_outputs)
    y = data.y.reshape(len(out), *data.y.shape[data.weights.ndim :])
    weights = data.weights.reshape(-1)
    loss, _ = head.loss(out, y, weights / weights.sum())
    return loss, head.score(out, y, weights)


class Trainer:
    """Minibatch training of an estimator's ``params_``, in place.

    Parameters
    ----------
    est : BaseRNN
        The estimator: its hyper-parameters, ``params_``, ``_optimizer``,
        ``_random_state`` and fitted attributes (``loss_curve_``, ``n_iter_``, ...),
        which the loop updates.
    network : crnn._patterns.Network
        The layouts of ``params_``.
    n_threads : int
        Threads for the kernels (see ``crnn.functional.forward``).
    input_scaling : tuple of ndarray or None, default=None
        ``(mean, scale)``: the compiled step standardizes each minibatch's input (the
        training data stay as validated); None for data already standardized.
    """

    def __init__(self, est, network, n_threads, input_scaling=None):
        self.est, self.network, self.n_threads = est, network, n_threads
        self.input_scaling = input_scaling
        self.step = None  # bound to params_ and the optimizer when a run starts

    def run(self, train, validation, epochs, incremental):
        """Train for at most ``epochs`` passes over ``train``.

        With a ``validation`` set, the weights of the epoch with the lowest validation
        loss are restored at the end. ``incremental`` (``partial_fit``) runs without the
        warning that the epochs ran out.
        """
        est = self.est
        params = est.params_
        self.step = MinibatchStep(est, self.network, self.n_threads, None, self.input_scaling)
        last_good = params.copy()
        best = params.copy() if validation is not None else None
        est.callback_stopped_ = False
        epoch = 0
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                for epoch in range(1, epochs + 1):
                    start_time = time.perf_counter()
                    est.loss_, updates = self.epoch(train)
                    last_good[:] = params
                    stop = self.end_epoch(len(train), updates, validation, best, start_time)
                    validating = validation is not None
                    if est.callback is not None and self.ask_callback(
                        start_time, updates, validating
                    ):
                        break
                    if stop:
                        break
                    if epoch == epochs and not incremental:
                        warnings.warn(
                            f"Stochastic optimizer: maximum iterations ({epochs}) reached and "
                            "the optimization hasn't converged yet.",
                            ConvergenceWarning,
                        )
        except _Diverged:
            params[:] = last_good
            del est._optimizer  # its moment estimates hold the non-finite values
            warnings.warn(
                f"Training stopped in epoch {epoch}: the loss, its gradient or the weights "
                "became NaN or infinite (the parameters diverged). The weights after the last "
                "finished epoch were kept. Lower learning_rate_init, set clip_norm, or scale X "
                "(and y for regression).",
                ConvergenceWarning,
            )
        except KeyboardInterrupt:
            params[:] = last_good
            warnings.warn(
                f"Training interrupted by the user in epoch {epoch}; the weights after the "
                "last finished epoch were kept.",
                UserWarning,
            )
        if validation is not None and est.best_validation_score_ is not None:
            params[:] = best

    def minibatches(self, data):
        """The epoch's minibatches of ``data``, time-major, shuffled if asked."""
        est = self.est
        n = len(data)
        batch_size = min(32 if est.batch_size == "auto" else est.batch_size, n)
        order = data.permutation(est._random_state) if est.shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            yield data.take(order[start : start + batch_size], time_major=True)

    def epoch(self, data):
        """One pass over ``data``; returns its weighted mean loss (with the L2 penalty) and
        the number of optimizer updates."""
        est, network = self.est, self.network
        params = est.params_
        n = len(data)
        # The L2 penalty of the whole training set, alpha/2 ||W||^2, shared by its n sequences.
        decay = (est.alpha / n) * network.weight_mask(params.dtype) if est.alpha > 0 else None
        self.step.set_decay(decay)
        epoch_loss = 0.0
        updates = seen = 0
        progress = _Progress(len(est.loss_curve_) + 1, n) if est.verbose else None
        for batch in self.minibatches(data):
            seen += len(batch)
            if progress is not None:
                progress.report(seen - len(batch))
            batch_weight = float(batch.weights.sum())
            if batch_weight == 0:
                continue
            # One compiled call: forward, loss, backward, L2, clipping, the update.
            loss, updated = self.step.train(batch, batch_weight)
            if not updated:
                raise _Diverged
            updates += 1
            epoch_loss += loss * batch_weight
        # An update can overflow the weights although its gradient was finite; the next
        # minibatch's loss would show it, but the epoch's last has no next.
        if not np.isfinite(params).all():
            raise _Diverged
        return epoch_loss / float(data.weights.sum()), updates

    def end_epoch(self, n_train, updates, validation, best, start_time):
        """Record a finished epoch of ``updates`` updates, keep the best weights, ask the
        stopping rule.

        Returns True when training should stop.
        """
        est = self.est
        est.n_iter_ += 1
        est.t_ += n_train
        est.loss_curve_.append(est.loss_)
        message = f"Epoch {len(est.loss_curve_)}, loss = {est.loss_:.6f}"
        monitored = est.loss_
        if validation is not None:
            monitored, score = evaluate(est, self.network, validation)
            est.validation_loss_curve_.append(monitored)
            est.validation_scores_.append(score)
            message += f", validation loss = {monitored:.6f}, validation score = {score:.6f}"
        # tol < 1, so the threshold is inf while best_loss_ is: a first epoch improves.
        if monitored < est.best_loss_ * (1 - est.tol):
            est._no_improvement_count = 0
            est._updates_no_improvement = 0
        else:
            est._no_improvement_count += 1
            est._updates_no_improvement += updates
        if monitored < est.best_loss_:
            est.best_loss_ = monitored
            if validation is not None:
                best[:] = est.params_
                est.best_validation_score_ = score
        if est.verbose:
            print(f"{message} ({time.perf_counter() - start_time:.2f} s)")
        return self.should_stop(validation is not None)

    def ask_callback(self, start_time, updates, validating):
        """Call the estimator's callback on the epoch just recorded; True if it says stop."""
        est = self.est
        info = {
            "epoch": len(est.loss_curve_),
            "loss": est.loss_,
            "validation_loss": est.validation_loss_curve_[-1] if validating else None,
            "validation_score": est.validation_scores_[-1] if validating else None,
            "learning_rate": est._optimizer.learning_rate,
            "time": time.perf_counter() - start_time,
            "updates": updates,
        }
        if not est.callback(est, info):
            return False
        est.callback_stopped_ = True
        if est.verbose:
            print(f"Training stopped by the callback after epoch {info['epoch']}.")
        return True

    def should_stop(self, validating):
        """The stopping rule: a plateau of more than ``n_iter_no_change`` epochs, then the
        optimizer's plateau rule: a smaller learning rate, or a stop, which also waits for
        ``MIN_UPDATES_NO_CHANGE`` updates without improvement."""
        est = self.est
        optimizer = est._optimizer
        if est._no_improvement_count <= est.n_iter_no_change:
            return False
        if not optimizer.slows_down() and est._updates_no_improvement < MIN_UPDATES_NO_CHANGE:
            return False
        what = "Validation" if validating else "Training"
        reason = (
            f"{what} loss did not improve by more than tol={est.tol} times its best value "
            f"for {est._no_improvement_count} consecutive epochs "
            f"({est._updates_no_improvement} updates)."
        )
        if optimizer.trigger_stopping(reason, est.verbose):
            return True
        est._no_improvement_count = est._updates_no_improvement = 0
        return False


class _Progress:
    """Progress lines within a long epoch, at most one per ``PROGRESS_INTERVAL`` seconds."""

    def __init__(self, epoch, n):
        self.epoch, self.n = epoch, n
        self.start = self.last = time.perf_counter()

    def report(self, done):
        """Say how far the epoch is after ``done`` of its ``n`` sequences, if it is time."""
        now = time.perf_counter()
        if done == 0 or now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / done * (self.n - done)
        print(
            f"Epoch {self.epoch}: {done}/{self.n} sequences ({done / self.n:.0%}), "
            f"{elapsed:.0f} s, ETA {left:.0f} s"
        )
