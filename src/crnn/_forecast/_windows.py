"""From series to supervised windows: the last ``window`` steps -> the next ``horizon`` steps."""

import numbers

import numpy as np
from sklearn.utils.validation import check_array

__all__ = ["make_windows"]


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
