"""Loaders for the data files shipped in ``crnn/datasets/data``.

The files are read from the installed package: nothing is downloaded, ever.
Provenance, license and citation of each file are in its ``.rst`` description,
returned as ``DESCR``.
"""

import csv
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

_SEATTLE_FEATURES = ["precipitation", "temp_max", "temp_min", "wind"]


def _data_file(name):
    return resources.files(__package__).joinpath("data", name)


def load_seattle_weather(*, return_X_y=False, as_frame=False):
    """Load the Seattle daily weather data set: a small real daily time series.

    Four daily series recorded in Seattle on 1461 consecutive days from
    2012-01-01 to 2015-12-31 (NOAA data, public domain), plus the day's weather
    type as a label. Rows are in date order, one per day, with no gap.

    =================   ==========================================
    Days                1461 (2012-01-01 to 2015-12-31)
    Features            4, real: precipitation (mm), temp_max and
                        temp_min (degrees Celsius), wind (m/s)
    Target              weather type, 5 labels: drizzle, fog, rain,
                        snow, sun
    =================   ==========================================

    Read more in ``DESCR``.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame and ``target`` a pandas Series,
        both indexed by the dates (a daily ``DatetimeIndex``), and the Bunch
        also holds ``frame``, the DataFrame of both. Needs pandas.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (1461, 4), dtype float64, or DataFrame
            The daily series, one column per feature, one row per day.
        target : ndarray of shape (1461,), dtype str, or Series
            The weather type of each day.
        frame : DataFrame of shape (1461, 5)
            With ``as_frame=True`` only: ``data`` with ``target`` as a
            ``"weather"`` column.
        dates : ndarray of shape (1461,), dtype datetime64[D]
            The date of each row.
        feature_names : list of str
            The column names of ``data``:
            ``["precipitation", "temp_max", "temp_min", "wind"]``.
        target_names : ndarray of shape (5,), dtype str
            The weather types, sorted.
        DESCR : str
            Description, source, license and citation of the data set.

    (data, target) : tuple if ``return_X_y`` is True
        ``data`` of shape (1461, 4) and ``target`` of shape (1461,)
        (a DataFrame and a Series with ``as_frame=True``).

    Examples
    --------
    >>> from crnn.datasets import load_seattle_weather
    >>> weather = load_seattle_weather()
    >>> weather.data.shape
    (1461, 4)
    >>> temp_max = weather.data[:, weather.feature_names.index("temp_max")]
    >>> str(weather.dates[0]), float(temp_max[0])
    ('2012-01-01', 12.8)
    """
    with _data_file("seattle_weather.csv").open("r", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    data = np.array([[float(row[name]) for name in _SEATTLE_FEATURES] for row in rows])
    target = np.array([row["weather"] for row in rows])
    # The file writes dates as 2012/01/01; datetime64 wants 2012-01-01.
    dates = np.array([row["date"].replace("/", "-") for row in rows], dtype="datetime64[D]")
    frame = None
    if as_frame:
        frame = _as_frame(data, target, dates)
        data, target = frame[_SEATTLE_FEATURES], frame["weather"]
    if return_X_y:
        return data, target
    descr = _data_file("seattle_weather.rst").read_text(encoding="utf-8")
    bunch = Bunch(
        data=data,
        target=target,
        dates=dates,
        feature_names=list(_SEATTLE_FEATURES),
        target_names=np.unique(target),
        DESCR=descr,
    )
    if frame is not None:
        bunch.frame = frame
    return bunch


def _as_frame(data, target, dates):
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "load_seattle_weather(as_frame=True) needs pandas: pip install pandas."
        ) from exc
    index = pd.DatetimeIndex(dates, name="date", freq="D")
    frame = pd.DataFrame(data, columns=_SEATTLE_FEATURES, index=index)
    frame["weather"] = pd.Series(target, index=index, dtype="category")
    return frame
