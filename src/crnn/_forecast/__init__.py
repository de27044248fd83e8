"""Forecasting: from series to training windows, and a recurrent forecaster.

:func:`make_windows` (``_windows``) cuts series into supervised pairs: the
last ``window`` steps as a sequence, the next ``horizon`` steps as the target.
:class:`RNNForecaster` (``_forecaster``) does this around an
:class:`~crnn.RNNRegressor`, on a transformed and differenced series whose
transforms ``_transforms`` holds, with their ``"auto"`` tests; ``_pandas``
reads and writes pandas objects without importing pandas unless given one.
"""

from ._forecaster import RNNForecaster
from ._windows import make_windows

__all__ = ["RNNForecaster", "make_windows"]
# doctest.testmod(crnn._forecast) looks only at what this module defines; point it at these.
__test__ = {"RNNForecaster": RNNForecaster, "make_windows": make_windows}
