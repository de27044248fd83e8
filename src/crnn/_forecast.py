"""Forecasting: from series to training windows, and a recurrent forecaster.

:func:`make_windows` cuts series into supervised pairs: the last ``window``
steps as a sequence, the next ``horizon`` steps as the target. Any regressor
that reads sequences can learn from them. :class:`RNNForecaster` does this for
you around an :class:`~crnn.RNNRegressor`: it standardizes the series, trains
on the windows, and forecasts any number of steps ahead, feeding its own
forecasts back when asked for more than ``horizon`` steps (recursive
forecasting).
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_array, check_is_fitted

from ._estimators import RNNRegressor

__all__ = ["RNNForecaster", "make_windows"]


def _is_list_of_series(series):
    """A list or tuple of arrays is several series; anything else is one series."""
    return isinstance(series, (list, tuple)) and len(series) > 0 and np.ndim(series[0]) >= 1


def _check_series(series, name="series"):
    """Validate one series: a finite float64 array of shape (n_steps,) or (n_steps, n_series)."""
    array = check_array(series, ensure_2d=False, allow_nd=True, dtype=np.float64, input_name=name)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1D (n_steps,) or 2D (n_steps, n_series), got shape {array.shape}; "
            "pass several independent series as a list of arrays."
        )
    return array


def _check_series_list(series):
    """Validate one or several series; return the list of arrays and the ndim they share."""
    if _is_list_of_series(series):
        arrays = [_check_series(s, f"series[{i}]") for i, s in enumerate(series)]
    else:
        arrays = [_check_series(series)]
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            "All series must have the same number of columns; got shapes "
            f"{sorted(a.shape for a in arrays)[:4]}."
        )
    return arrays


def _windows(array, window, horizon):
    """(n_windows, window, ...) inputs and (n_windows, horizon, ...) targets of one series."""
    views = np.lib.stride_tricks.sliding_window_view(array, window + horizon, axis=0)
    # sliding_window_view puts the window axis last: move it next to the window index.
    views = np.moveaxis(views, -1, 1)
    return views[:, :window], views[:, window:]


def make_windows(series, window, horizon=1):
    """Cut one or several series into training windows: last ``window`` steps -> next steps.

    Window ``i`` of a series ``s`` is ``X[i] = s[i : i + window]`` and its
    target is ``y[i] = s[i + window]`` (``horizon=1``) or
    ``y[i] = s[i + window : i + window + horizon]``. Every start ``i`` whose
    target lies inside the series is used, so a series of ``n_steps`` steps
    gives ``n_steps - window - horizon + 1`` windows.

    Parameters
    ----------
    series : array-like of shape (n_steps,) or (n_steps, n_series), or list of such
        One series (1D); several series observed at the same steps (2D, one
        column each, modelled jointly: every window holds all columns); or a
        list of independent series of any lengths with the same number of
        columns, whose windows are pooled.
    window : int
        The number of past steps in each input sequence, at least 1.
    horizon : int, default=1
        The number of following steps in each target, at least 1.

    Returns
    -------
    X : ndarray of shape (n_windows, window) or (n_windows, window, n_series)
        The input sequences: 2D for 1D series (scikit-learn's univariate
        sequence form), 3D for 2D series.
    y : ndarray of shape (n_windows,), (n_windows, horizon), (n_windows, n_series) \
            or (n_windows, horizon, n_series)
        The targets: each shaped like the series' next step (``horizon=1``) or
        next ``horizon`` steps.

    Raises
    ------
    ValueError
        If a series is shorter than ``window + horizon`` steps, is not 1D or
        2D, contains NaN or infinity, or if the series have different numbers
        of columns.

    Notes
    -----
    To fit an :class:`~crnn.RNNRegressor` on these windows yourself (as
    :class:`RNNForecaster` does), give it each target as one vector,
    ``y.reshape(len(y), -1)``, and ``pattern="seq2vec"``: with
    ``pattern="auto"``, targets as long as the window would read as one target
    per input step, and 3D targets as target sequences.

    Examples
    --------
    >>> import numpy as np
    >>> from crnn import make_windows
    >>> X, y = make_windows(np.arange(6.0), window=3)
    >>> X
    array([[0., 1., 2.],
           [1., 2., 3.],
           [2., 3., 4.]])
    >>> y
    array([3., 4., 5.])
    """
    _check_positive_int(window, "window")
    _check_positive_int(horizon, "horizon")
    arrays = _check_series_list(series)
    for i, array in enumerate(arrays):
        if array.shape[0] < window + horizon:
            where = f"series[{i}]" if _is_list_of_series(series) else "series"
            raise ValueError(
                f"{where} has {array.shape[0]} steps; windows of {window} steps with a horizon "
                f"of {horizon} need at least {window + horizon}."
            )
    pairs = [_windows(array, window, horizon) for array in arrays]
    X = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    if horizon == 1:
        y = y[:, 0]
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")


class RNNForecaster(BaseEstimator):
    """Recurrent forecaster: predicts the next steps of series from their last ``window`` steps.

    At fit, each series (column) is standardized with its mean and standard
    deviation over the training data, cut into windows with
    :func:`make_windows`, and a clone of ``regressor`` learns to map the last
    ``window`` steps to the next ``horizon`` steps (all columns at once). At
    predict, the last ``window`` steps of each given history are standardized
    the same way and the forecasts transformed back, so a model of raw
    temperatures or passenger counts works without any scaling by the user.
    Forecasts longer than ``horizon`` are recursive: each forecast block is
    appended to the window and fed back.

    Parameters
    ----------
    regressor : RNNRegressor, default=None
        The network that maps windows to the next steps; cloned at fit. None
        means ``RNNRegressor()``. Its own parameters are tuned as usual, e.g.
        ``set_params(regressor__max_iter=50)``.
    window : int, default=14
        How many past steps the network reads.
    horizon : int, default=1
        How many steps the network predicts at once (direct multi-step).
        ``horizon=1`` with ``steps > 1`` at predict is fully recursive.
    scale : bool, default=True
        Whether to standardize each series column for the network. Turn it off
        only for series already on a scale of about unit variance.

    Attributes
    ----------
    regressor_ : RNNRegressor
        The fitted network. It reads standardized windows of shape
        ``(n_windows, window, n_series_)`` and predicts ``horizon * n_series_``
        standardized values per window.
    mean_ : ndarray of shape (n_series,)
        The mean of each column over the training series (zeros if
        ``scale=False``).
    scale_ : ndarray of shape (n_series,)
        The standard deviation of each column over the training series (1 for
        a constant column; ones if ``scale=False``).
    n_series_ : int
        The number of columns of the series (1 for 1D series).
    series_ndim_ : int
        1 if the model was fit on 1D series, 2 if on 2D series; it decides
        how :meth:`predict` reads its input and shapes its output.
    n_windows_ : int
        The number of training windows.

    See Also
    --------
    make_windows : The windows this forecaster trains on.
    RNNRegressor : The network; usable directly on windows for custom setups.

    Examples
    --------
    >>> import numpy as np
    >>> from crnn import RNNForecaster, RNNRegressor
    >>> t = np.arange(400)
    >>> series = 20 + 5 * np.sin(2 * np.pi * t / 7) + t / 100
    >>> regressor = RNNRegressor(cell="gru", max_iter=30, random_state=0)
    >>> forecaster = RNNForecaster(regressor, window=14).fit(series[:300])
    >>> forecaster.predict(series[:300], steps=7).shape
    (7,)
    """

    _parameter_constraints: dict = {
        "regressor": [HasMethods(["fit", "predict"]), None],
        "window": [Interval(numbers.Integral, 1, None, closed="left")],
        "horizon": [Interval(numbers.Integral, 1, None, closed="left")],
        "scale": ["boolean"],
    }

    def __init__(self, regressor=None, *, window=14, horizon=1, scale=True):
        self.regressor = regressor
        self.window = window
        self.horizon = horizon
        self.scale = scale

    @_fit_context(prefer_skip_nested_validation=False)  # the regressor validates itself at fit
    def fit(self, series):
        """Learn to forecast ``series`` from its past ``window`` steps.

        Parameters
        ----------
        series : array-like of shape (n_steps,) or (n_steps, n_series), or list of such
            The training series, as in :func:`make_windows`: one series, one
            multivariate series (columns forecast jointly) or a list of
            independent series with the same number of columns (one model for
            all of them). Each needs at least ``window + horizon`` steps.

        Returns
        -------
        self : RNNForecaster
            The fitted forecaster.
        """
        arrays = _check_series_list(series)
        stacked = np.concatenate(arrays)
        if self.scale:
            mean = stacked.mean(axis=0)
            scale = stacked.std(axis=0)
        else:
            mean, scale = np.zeros(stacked.shape[1:]), np.ones(stacked.shape[1:])
        scale = np.where(scale > 0, scale, 1.0)
        scaled = [(a - mean) / scale for a in arrays]
        X, y = make_windows(
            scaled if _is_list_of_series(series) else scaled[0], self.window, self.horizon
        )
        regressor = clone(RNNRegressor() if self.regressor is None else self.regressor)
        if "pattern" in regressor.get_params():
            if regressor.pattern not in ("auto", "seq2vec"):
                raise ValueError(
                    "RNNForecaster maps each window to its next steps, pattern='seq2vec'; "
                    f"its regressor has pattern={regressor.pattern!r}."
                )
            # Stated, not inferred: a target as long as the window would read as seq2seq.
            regressor.set_params(pattern="seq2vec")
        self.regressor_ = regressor.fit(_as_3d(X), _flat_targets(y))
        self.mean_ = np.atleast_1d(mean)
        self.scale_ = np.atleast_1d(scale)
        self.n_series_ = self.mean_.shape[0]
        self.series_ndim_ = arrays[0].ndim
        self.n_windows_ = X.shape[0]
        return self

    def predict(self, series, steps=None):
        """Forecast the steps that follow the end of each given history.

        Parameters
        ----------
        series : array-like or list of array-like
            The history to continue; only its last ``window`` steps are read.
            For a model fit on 1D series: one history of shape ``(n_steps,)``,
            a batch of shape ``(n_histories, n_steps)`` or a list of 1D
            histories of any lengths ``>= window``. For a model fit on 2D
            series: ``(n_steps, n_series)``, ``(n_histories, n_steps,
            n_series)`` or a list of 2D histories.
        steps : int, default=None
            How many steps to forecast; None means ``horizon``. Steps past
            ``horizon`` are forecast recursively from earlier forecasts.

        Returns
        -------
        forecast : ndarray of shape (steps,), (steps, n_series), \
                (n_histories, steps) or (n_histories, steps, n_series)
            For one history, its forecast shaped like ``steps`` steps of the
            series; for several, one such forecast per history, stacked.
        """
        check_is_fitted(self)
        steps = self.horizon if steps is None else steps
        _check_positive_int(steps, "steps")
        windows, single = self._last_windows(series)
        windows = (windows - self.mean_) / self.scale_
        blocks = []
        for _ in range(-(-steps // self.horizon)):
            block = self.regressor_.predict(windows).reshape(
                len(windows), self.horizon, self.n_series_
            )
            blocks.append(block)
            windows = np.concatenate([windows, block], axis=1)[:, -self.window :]
        forecast = np.concatenate(blocks, axis=1)[:, :steps] * self.scale_ + self.mean_
        if self.series_ndim_ == 1:
            forecast = forecast[..., 0]
        return forecast[0] if single else forecast

    def _last_windows(self, series):
        """The last ``window`` steps of each history as (n_histories, window, n_series_)."""
        single = False
        if _is_list_of_series(series):
            histories = [_check_series(s, f"series[{i}]") for i, s in enumerate(series)]
        else:
            array = check_array(
                series, ensure_2d=False, allow_nd=True, dtype=np.float64, input_name="series"
            )
            single = array.ndim == self.series_ndim_
            if not (single or array.ndim == self.series_ndim_ + 1):
                raise ValueError(self._shape_message(array.shape))
            histories = [array] if single else list(array)
        step_shape = () if self.series_ndim_ == 1 else (self.n_series_,)
        for history in histories:
            if history.shape[1:] != step_shape:
                raise ValueError(self._shape_message(history.shape))
            if history.shape[0] < self.window:
                raise ValueError(
                    f"A history has {history.shape[0]} steps; this forecaster reads the last "
                    f"window={self.window} steps, so it needs at least {self.window}."
                )
        windows = np.stack([h[-self.window :] for h in histories])
        return windows.reshape(len(histories), self.window, self.n_series_), single

    def _shape_message(self, shape):
        if self.series_ndim_ == 1:
            expected = "(n_steps,) for one history or (n_histories, n_steps) for several"
        else:
            expected = (
                f"(n_steps, {self.n_series_}) for one history or (n_histories, n_steps, "
                f"{self.n_series_}) for several"
            )
        return (
            f"This forecaster was fit on {self.series_ndim_}D series, so it expects {expected}; "
            f"got shape {shape}."
        )


def _as_3d(X):
    """Windows as sequences (n_windows, window, n_series): univariate ones get a feature axis."""
    return X[:, :, np.newaxis] if X.ndim == 2 else X


def _flat_targets(y):
    """Targets as one vector per window: (n_windows,) or (n_windows, horizon * n_series)."""
    flat = y.reshape(len(y), -1)
    return flat[:, 0] if flat.shape[1] == 1 else flat
