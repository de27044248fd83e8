"""The output layers: a dense layer over the network's features, its loss and gradient.

``outputs = features @ W_out + b_out`` at every position (one per sequence, or one per
step of every sequence), then the head's loss: softmax cross-entropy over class codes
for :class:`SoftmaxHead` (RNNClassifier), half the squared error for :class:`LinearHead`
(RNNRegressor). A head also encodes the targets it is trained on, weighs them (class
weights), scales them (:class:`LinearHead`: standardized values, ``scale_targets``), turns
outputs into predictions, and gives the encoder-decoder's decoder its input (a one-hot
label, or the values). Heads hold no state: the estimator, passed in, holds ``classes_``,
``n_outputs_``, ``class_weight`` and the target statistics.
"""

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from ._loss import softmax_cross_entropy, squared_error
from .preprocessing import standard_scale


def init_dense(W, b, rng):
    """Glorot-uniform weights (as MLPClassifier) and zero bias, in place."""
    fan_in, fan_out = W.shape
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    W[:] = rng.uniform(-bound, bound, size=W.shape)
    b[:] = 0


class SoftmaxHead:
    """Class labels: softmax cross-entropy over class codes, with class weights."""

    # The compiled step's head (crnn_head in crnn.h).
    kernel_head = "softmax"
    # Per-step targets of unequal lengths are padded with zeros (a valid code) not NaN.
    nan_padding = False
    # The validation split of seq2vec classification is stratified.
    stratify = True

    def _encode_labels(self, est, labels, reset, classes):
        """Class codes of ``labels``; sets ``classes_`` on a first ``fit``."""
        check_classification_targets(labels)
        if reset and classes is None:  # partial_fit set classes_ from its classes= already
            est.classes_ = np.unique(labels)
        unknown = ~np.isin(labels, est.classes_)
        if unknown.any():
            raise ValueError(
                f"y contains labels that are not among classes_={est.classes_.tolist()}: "
                f"{np.unique(labels[unknown]).tolist()[:5]}. Pass every class with classes= "
                "on the first call to partial_fit, or refit."
            )
        if reset:
            est.n_outputs_ = len(est.classes_)
        return np.searchsorted(est.classes_, labels)

    def encode_vector_targets(self, est, y, n_sequences, reset, classes):
        """Validate seq2vec targets: ``(N,)`` class codes."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            raise ValueError(
                f"y has shape {y.shape}: RNNClassifier takes one label per sequence, "
                "shape (n_sequences,), or one label per step (y of shape (n_sequences, "
                "n_steps) or a list of label sequences). Multi-output classification is "
                "not supported."
            )
        y = column_or_1d(y, warn=True)
        check_consistent_length(np.empty(n_sequences), y)
        return self._encode_labels(est, y, reset, classes)

    def encode_step_targets(self, est, values, mask, reset, classes):
        """Validate per-step labels, time-major ``(T, N)``, meaningful where ``mask``."""
        if values.ndim == 3:
            raise ValueError(
                f"RNNClassifier needs one label per step; the per-step targets have shape "
                f"{values.swapaxes(0, 1).shape}."
            )
        codes = np.zeros(mask.shape, dtype=np.intp)
        codes[mask] = self._encode_labels(est, values[mask], reset, classes)
        return codes

    def target_weights(self, est, y, mask):
        """Per-position class weights of codes ``y`` (``mask``: the real steps), or None."""
        if est.class_weight is None:
            return None
        n_classes = len(est.classes_)
        if est.class_weight == "balanced":
            counts = np.bincount(y[mask] if mask is not None else y, minlength=n_classes)
            per_class = counts.sum() / (n_classes * np.maximum(counts, 1))
        else:
            unknown = set(est.class_weight) - set(est.classes_.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight has labels {sorted(unknown, key=str)} that are not in y's "
                    f"classes {est.classes_.tolist()}."
                )
            per_class = np.array([est.class_weight.get(c, 1.0) for c in est.classes_.tolist()])
        return per_class[y]

    def fit_scaling(self, est, data):
        """Nothing: class codes are not scaled."""

    def scale_targets(self, est, data):
        """Nothing: class codes are not scaled."""

    def loss(self, outputs, y, weights):
        """``(loss, doutputs)`` for logits ``(M, k)``, codes ``(M,)``, weights ``(M,)``."""
        return softmax_cross_entropy(outputs, y, weights)

    def score(self, outputs, y, weights):
        """Accuracy of logits ``(M, k)`` against codes ``(M,)``: ``accuracy_score`` with
        sample weights, without its input checks (~2 ms an epoch; the inputs are ours)."""
        return float(np.dot(weights, outputs.argmax(axis=1) == y) / weights.sum())

    def decoder_input(self, y, n_outputs, dtype):
        """Codes ``(T, N)`` as one-hot decoder inputs ``(T, N, n_outputs)``."""
        return np.eye(n_outputs, dtype=dtype)[y]

    def feedback(self, outputs):
        """Logits ``(N, k)`` of one decoder step as the next step's input: the one-hot label."""
        return np.eye(outputs.shape[1], dtype=outputs.dtype)[outputs.argmax(axis=1)]

    def predictions(self, est, outputs):
        """Logits ``(..., k)`` as labels ``(...)``."""
        return est.classes_[outputs.argmax(axis=-1)]


class LinearHead:
    """Real values: the output layer itself, trained on half the squared error."""

    kernel_head = "linear"
    nan_padding = True
    stratify = False

    @staticmethod
    def _set_n_outputs(est, n_outputs, reset):
        if reset:
            est.n_outputs_ = n_outputs
        elif n_outputs != est.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} targets per position but the model was fitted with "
                f"{est.n_outputs_}."
            )

    def encode_vector_targets(self, est, y, n_sequences, reset, classes):
        """Validate seq2vec targets: ``(N,)`` or ``(N, k)`` values, returned ``(N, k)``."""
        y = check_array(y, ensure_2d=False, dtype=est._compute_dtype(reset), input_name="y")
        if y.ndim == 1:
            y = y[:, np.newaxis]
        elif y.ndim != 2:
            raise ValueError(
                f"y has shape {y.shape}; seq2vec targets must be (n_sequences,) or "
                "(n_sequences, n_targets)."
            )
        check_consistent_length(np.empty(n_sequences), y)
        self._set_n_outputs(est, y.shape[1], reset)
        return y

    def encode_step_targets(self, est, values, mask, reset, classes):
        """Validate per-step values, time-major ``(T, N[, k])``, returned ``(T, N, k)``
        with zeros outside ``mask``."""
        try:
            y = np.array(values, dtype=est._compute_dtype(reset))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y could not be converted to floats: {exc}") from exc
        if y.ndim == 2:
            y = y[:, :, np.newaxis]
        if not np.isfinite(y[mask]).all():
            raise ValueError(
                "y contains NaN or infinity within the sequences; NaN is accepted only as "
                "trailing padding."
            )
        y[~mask] = 0
        self._set_n_outputs(est, y.shape[2], reset)
        return y

    def target_weights(self, est, y, mask):
        """None: every position weighs what its sequence does."""
        return None

    @staticmethod
    def _real_positions(data):
        """The positions that count: ``(N,)`` or time-major ``(T, N)``, True where the
        weight is positive (zero at padding, and at the steps a per-step weight masks)."""
        return data.weights > 0

    def fit_scaling(self, est, data):
        """``target_mean_`` and ``target_scale_`` of each target over the first fit's
        positions of positive weight (then kept, as the input statistics are), or None
        without ``scale_targets``."""
        est.target_mean_ = est.target_scale_ = None
        if est.scale_targets:
            y = data.y[self._real_positions(data)]  # (M, k)
            mean, var = y.mean(axis=0, dtype=np.float64), y.var(axis=0, dtype=np.float64)
            est.target_mean_, est.target_scale_ = mean, standard_scale(var, mean, len(y))

    def scale_targets(self, est, data):
        """Replace ``data.y`` by the standardized targets the output layer learns."""
        if getattr(est, "target_mean_", None) is None:
            return
        dtype = data.y.dtype
        data.y = (data.y - est.target_mean_.astype(dtype)) / est.target_scale_.astype(dtype)
        data.y[~self._real_positions(data)] = 0

    def loss(self, outputs, y, weights):
        """``(loss, doutputs)`` for outputs and targets ``(M, k)``, weights ``(M,)``."""
        return squared_error(outputs, y, weights)

    def score(self, outputs, y, weights):
        """R^2 of outputs ``(M, k)`` against targets ``(M, k)``: ``r2_score`` with sample
        weights, averaged over the targets, without its input checks (~7 ms an epoch)."""
        w = weights / weights.sum()
        residual = w @ (y - outputs) ** 2
        total = w @ (y - w @ y) ** 2
        # r2_score's force_finite: a constant target scores 1 if predicted exactly, else 0
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1 - residual / total, np.where(residual == 0, 1.0, 0.0))
        return float(r2.mean())

    def decoder_input(self, y, n_outputs, dtype):
        """Targets ``(T, N, k)`` are the decoder's inputs as they are."""
        return y

    def feedback(self, outputs):
        """One decoder step's outputs are the next step's input."""
        return outputs

    def predictions(self, est, outputs):
        """Outputs ``(..., k)`` as float64 in the targets' units, the last axis dropped for
        one target."""
        outputs = outputs.astype(np.float64)
        if getattr(est, "target_mean_", None) is not None:
            outputs = outputs * est.target_scale_ + est.target_mean_
        return outputs[..., 0] if outputs.shape[-1] == 1 else outputs
