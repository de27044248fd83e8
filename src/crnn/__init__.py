"""crnn: fast recurrent neural networks (RNN, LSTM, GRU) for the CPU.

The C kernels run forward passes and backpropagation through time; :mod:`crnn.functional`
exposes them on NumPy arrays, and the scikit-learn estimators build on that.
"""

from . import preprocessing  # noqa: F401  (crnn.preprocessing after "import crnn")
from ._estimators import RNNClassifier, RNNRegressor
from ._forecast import RNNForecaster, make_windows
from ._persistence import load, save
from . import metrics

__version__ = "0.1.0"
__all__ = [
    "RNNClassifier", "RNNForecaster", "RNNRegressor", "load", "make_windows", "metrics", "save"
]
