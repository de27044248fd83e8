"""crnn: fast recurrent neural networks (RNN, LSTM, GRU) for the CPU.

The C kernels run forward passes and backpropagation through time; :mod:`crnn.functional`
exposes them on NumPy arrays, and the scikit-learn estimators build on that.
"""

from . import metrics, preprocessing
from ._estimators import RNNClassifier, RNNRegressor
from ._forecast import RNNForecaster, make_windows
from ._optim import SGD, Adam
from ._persistence import load, save, skops_trusted_types

# pickle and skops store an object under its class's __module__: the classes a fitted
# estimator holds get their public path here, so files load whichever module defines them.
for _cls in (Adam, RNNClassifier, RNNForecaster, RNNRegressor, SGD):
    _cls.__module__ = __name__
del _cls

__version__ = "0.1.0"
__all__ = [
    "RNNClassifier",
    "RNNForecaster",
    "RNNRegressor",
    "load",
    "make_windows",
    "metrics",
    "preprocessing",
    "save",
    "skops_trusted_types",
]
