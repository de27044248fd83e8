"""pandas in and out, without importing pandas unless the user hands us a pandas object."""

import numpy as np


def is_pandas(obj):
    return type(obj).__module__.split(".")[0] == "pandas"


def future_index(index, steps):
    """The index of the ``steps`` steps after ``index``: dates for a dated index, else integers.

    Raises
    ------
    ValueError
        If ``index`` holds dates with no frequency that pandas can infer.
    """
    import pandas as pd

    if isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex)):
        freq = index.freq
        if freq is None and len(index) >= 3:
            freq = pd.infer_freq(index)
        if freq is None:
            raise ValueError(
                "The series' DatetimeIndex has no frequency and pandas cannot infer one, so "
                "the forecast steps have no dates; give the series a regular index, e.g. "
                "series.asfreq('D')."
            )
        if isinstance(index, pd.PeriodIndex):
            return pd.period_range(start=index[-1] + 1, periods=steps, freq=freq)
        return pd.date_range(start=index[-1], periods=steps + 1, freq=freq)[1:]
    if pd.api.types.is_integer_dtype(index) and len(index):
        return pd.RangeIndex(index[-1] + 1, index[-1] + 1 + steps)
    return pd.RangeIndex(len(index), len(index) + steps)


def wrap_forecast(forecast, like, steps):
    """``forecast`` as a pandas Series (1D) or DataFrame (2D), indexed by ``like``'s next steps."""
    import pandas as pd

    index = future_index(like.index, steps)
    if np.ndim(forecast) == 1:
        return pd.Series(forecast, index=index, name=getattr(like, "name", None))
    columns = like.columns if hasattr(like, "columns") else None
    return pd.DataFrame(forecast, index=index, columns=columns)
