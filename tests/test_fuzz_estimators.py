"""Fuzzing the estimators: every input either works correctly or raises a clear error.

Hypothesis draws input sequences in every accepted form (3D arrays, 2D univariate arrays,
lists of any lengths) with every dimension from 0 up, in many dtypes (floats, ints, bool,
float16, objects, complex, strings), memory layouts (Fortran, strided, negative strides,
read-only), NaN and infinity placed anywhere, and ragged lists with mismatched feature
counts; targets and sample weights of every kind; and hyper-parameters at and just past
their bounds. An oracle written from the documented rules says whether each input is valid:

- valid input must fit, give finite predictions of the documented shape, and predict
  exactly what the same values in a plain float64 array give;
- invalid input must raise ValueError or TypeError (scikit-learn's InvalidParameterError
  for hyper-parameters, a subclass of both), never anything else and never a crash.

The normal suite runs a fixed sample; ``CRNN_FUZZ_EXAMPLES=N`` runs N fresh random
examples per test instead (see SECURITY.md).
"""

import copy
import os
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from harness import FUZZ, fortran, read_only, reversed_strides, strided
from hypothesis import event, given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning

from crnn._estimators import RNNClassifier, RNNRegressor

TINY = dict(hidden_layer_sizes=(2,), max_iter=1, random_state=0)


@pytest.fixture(autouse=True)
def strict_warnings():
    # Dropping the imaginary part of complex input is silent data loss: an error here.
    # Convergence is not the point on tiny data, nor R^2 of a single sequence.
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        # scikit-learn's own cast while it classifies NaN labels, before it refuses them.
        warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
        yield


def assert_clear_error(call):
    """``call()`` raises ValueError or TypeError (with a message), nothing else."""
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert str(info.value)


# -- input sequences ----------------------------------------------------------------------

VALID_KINDS = [np.float64, np.float32, np.float16, np.int64, np.uint8, bool, "object-numbers"]
INVALID_KINDS = [np.complex128, "object-strings"]


LAYOUTS = [lambda a: a, fortran, strided, reversed_strides, read_only]


def as_kind(values, kind):
    """``values`` (float64) in ``kind``, and the float64 values that conversion keeps."""
    if kind == "object-numbers":
        return values.astype(object), values
    if kind == "object-strings":
        return np.full(values.shape, "a", dtype=object), None
    if kind in (np.int64, np.uint8, bool):
        values = np.abs(np.round(np.nan_to_num(values, posinf=1.0) * 3))
    converted = values.astype(kind)
    return converted, None if kind == np.complex128 else converted.astype(np.float64)


def valid_nan_padding(values3d):
    """Whether NaN in (N, T, F) arrays marks only whole trailing steps, one real step kept."""
    nan = np.isnan(values3d)
    whole = nan.all(axis=2)
    if (nan.any(axis=2) & ~whole).any():
        return False
    real = ~whole
    lengths = real.sum(axis=1)
    # Real steps first, then padding: the first `length` steps are the real ones.
    first_steps = np.arange(real.shape[1]) < lengths[:, None]
    return bool((lengths >= 1).all() and (real == first_steps).all())


def rarely(draw):
    """True about one draw in eight: each way of breaking the input stays rare, so that
    about half of the drawn inputs are valid."""
    return draw(st.integers(0, 7)) == 0


@st.composite
def sequences(draw, n_features=None):
    """X in one of the accepted forms, whether it is valid, and its float64 values.

    ``n_features`` is the feature count that valid input must have (a fitted model's);
    None accepts any. Returns a namespace with ``X``, ``valid``, ``canonical`` (the same
    values as plain float64 data, for valid draws) and ``n`` (the number of sequences).
    """
    form = draw(st.sampled_from(["3d", "2d", "list"]))
    kind = draw(st.sampled_from(INVALID_KINDS if rarely(draw) else VALID_KINDS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = 0 if rarely(draw) else draw(st.integers(1, 4))
    F = draw(st.integers(1, 3)) if n_features is None else n_features
    if rarely(draw):
        F = draw(st.sampled_from([0, F + 1]))
    if form == "list":
        data = _ragged(draw, rng, n, F, kind)
    else:
        data = _array(draw, rng, n, F if form == "3d" else None, kind)
    data.valid = data.valid and n_features in (None, data.n_features)
    return data


def _array(draw, rng, n, F, kind):
    """A 3D array (n, T, F), or a 2D array (n, T) of univariate sequences if F is None."""
    T = 0 if rarely(draw) else draw(st.integers(1, 4))
    values = rng.normal(size=(n, T) if F is None else (n, T, F))
    F = 1 if F is None else F
    values3d = values.reshape(n, T, F)
    if values.size and draw(st.booleans()):  # NaN-padded: every sequence keeps a step
        steps = rng.integers(1, T + 1, size=n)
        if rarely(draw):
            steps[0] = 0  # a sequence of padding only
        values3d[np.arange(T) >= steps[:, None]] = np.nan
    if values.size and rarely(draw):
        values.flat[rng.integers(values.size)] = draw(st.sampled_from([np.nan, np.inf]))
    if not np.isfinite(values).all() and kind in (np.int64, np.uint8, bool):
        kind = np.float64  # integers cannot hold NaN or infinity
    X, kept = as_kind(values, kind)
    valid = (
        kind not in INVALID_KINDS
        and n >= 1
        and T >= 1
        and F >= 1
        and not np.isinf(values).any()
        and valid_nan_padding(values3d)
    )
    return SimpleNamespace(
        X=draw(st.sampled_from(LAYOUTS))(X), valid=valid, canonical=kept, n=n, n_features=F
    )


def _ragged(draw, rng, n, F, kind):
    """A list (or tuple) of n sequences (T_i, F), or (T_i,) when F is 1."""
    lengths = [0 if rarely(draw) else draw(st.integers(1, 4)) for _ in range(n)]
    features = [F] * n
    if n > 1 and rarely(draw):
        features[draw(st.integers(1, n - 1))] = draw(st.integers(0, 3))
    one_dimensional = F == 1 and draw(st.booleans())
    broken = n > 0 and rarely(draw)  # NaN or infinity in a listed sequence
    items, kept = [], []
    for length, f in zip(lengths, features):
        values = rng.normal(size=(length,) if one_dimensional and f == 1 else (length, f))
        if broken and values.size:
            values.flat[0] = draw(st.sampled_from([np.nan, np.inf]))
            broken = False
        item, item_kept = as_kind(values, kind)
        items.append(draw(st.sampled_from(LAYOUTS))(item))
        kept.append(item_kept)
    # A NaN at an item's first value is invalid in a ragged list and, if the items share
    # one shape, in the array they form too (it is not a whole trailing step).
    valid = (
        kind not in INVALID_KINDS
        and n >= 1
        and min(lengths) >= 1
        and F >= 1
        and len(set(features)) == 1
        and all(np.isfinite(k).all() for k in kept)
    )
    X = draw(st.sampled_from([list, tuple]))(items)
    return SimpleNamespace(X=X, valid=valid, canonical=kept if valid else None, n=n, n_features=F)


@FUZZ
@given(
    sequences(),
    st.sampled_from(["lstm", "gru", "rnn"]),
    st.booleans(),
    st.sampled_from(["float32", "float64"]),
)
def test_fit_on_fuzzed_sequences(data, cell, bidirectional, dtype):
    y = np.arange(data.n, dtype=np.float64)
    model = RNNRegressor(cell=cell, bidirectional=bidirectional, dtype=dtype, **TINY)
    event(f"valid={data.valid}")
    if not data.valid:
        assert_clear_error(lambda: model.fit(data.X, y))
        return
    model.fit(data.X, y)
    assert np.isfinite(model.params_).all()
    predicted = model.predict(data.X)
    assert predicted.shape == (data.n,) and np.isfinite(predicted).all()
    np.testing.assert_array_equal(predicted, model.predict(data.canonical))


def _fitted(n_features):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3, n_features))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return RNNRegressor(**TINY).fit(X if n_features > 1 else X[:, :, 0], rng.normal(size=6))


MODELS = {1: _fitted(1), 2: _fitted(2)}


@FUZZ
@given(
    st.sampled_from([1, 2]).flatmap(lambda f: st.tuples(st.just(f), sequences(f))),
    st.sampled_from(["predict", "partial_fit", "score"]),
)
def test_fitted_model_on_fuzzed_sequences(case, method):
    n_features, data = case
    model = copy.deepcopy(MODELS[n_features])
    y = np.arange(data.n, dtype=np.float64)
    call = {
        "predict": lambda X: model.predict(X),
        "partial_fit": lambda X: model.partial_fit(X, y).predict(X),
        "score": lambda X: np.array([model.score(X, y)] * data.n),
    }[method]
    event(f"valid={data.valid}")
    if not data.valid:
        assert_clear_error(lambda: call(data.X))
        return
    result = call(data.X)
    assert result.shape == (data.n,)
    if method == "predict":
        assert np.isfinite(result).all()
    if method == "partial_fit":
        assert np.isfinite(model.params_).all()
    if method != "partial_fit":  # partial_fit changed the model in between
        np.testing.assert_array_equal(result, call(data.canonical))


def test_complex_sequences_in_a_list_are_refused():
    # As complex arrays are: converting would silently drop the imaginary parts.
    X = [np.ones((2, 1)) + 1j, np.ones((3, 1))]
    assert_clear_error(lambda: RNNRegressor(**TINY).fit(X, [0.0, 1.0]))


# -- targets and sample weights -----------------------------------------------------------

N = 8
X_SMALL = np.random.default_rng(1).normal(size=(N, 3, 2))


@st.composite
def regression_targets(draw):
    y = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(size=N)
    valid = not rarely(draw)
    form = draw(
        st.sampled_from(
            ["1d", "2d", "ints", "bools", "objects"]
            if valid
            else ["nan", "inf", "short", "long", "scalar", "strings", "complex"]
        )
    )
    if form == "2d":
        y = np.column_stack([y, -y, y])[:, : draw(st.sampled_from([1, 2, 4]))]
    elif form == "ints":
        y = np.round(y * 5).astype(np.int64)
    elif form == "bools":
        y = y > 0
    elif form == "objects":
        y = y.astype(object)
    elif form in ("nan", "inf"):
        y[draw(st.integers(0, N - 1))] = np.nan if form == "nan" else -np.inf
    elif form in ("short", "long"):
        y = y[:-1] if form == "short" else np.append(y, 0.0)
    elif form == "scalar":
        y = np.float64(1.0)
    elif form == "strings":
        y = np.array(["a"] * N)
    elif form == "complex":
        y = y + 1j
    return y, valid


@st.composite
def class_targets(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.integers(0, 3, size=N)
    valid = not rarely(draw)
    form = draw(
        st.sampled_from(
            ["ints", "strings", "bools", "integral-floats", "one-class"]
            if valid
            else ["continuous", "nan", "mixed", "2d", "short", "none"]
        )
    )
    y = {
        "ints": labels,
        "strings": np.array(["cat", "dog", "emu"])[labels],
        "bools": labels > 0,
        "integral-floats": labels.astype(np.float64),
        "one-class": np.zeros(N, dtype=int),
        "continuous": rng.normal(size=N),
        "nan": np.where(labels > 0, np.nan, 1.0),
        "mixed": np.array([1, "a"] * (N // 2), dtype=object),
        "2d": np.column_stack([labels, labels]),
        "short": labels[:-1],
        "none": None,
    }[form]
    return y, valid


@st.composite
def sample_weights(draw):
    valid = not rarely(draw)
    forms = (
        ["none", "ones", "positive", "some-zero"]
        if valid
        else ["all-zero", "negative", "nan", "inf", "short", "2d"]
    )
    w = {
        "none": None,
        "ones": np.ones(N),
        "positive": np.linspace(0.1, 3.0, N),
        "some-zero": np.r_[np.zeros(N - 1), 1.0],
        "all-zero": np.zeros(N),
        "negative": np.r_[-1.0, np.ones(N - 1)],
        "nan": np.r_[np.nan, np.ones(N - 1)],
        "inf": np.r_[np.inf, np.ones(N - 1)],
        "short": np.ones(N - 1),
        "2d": np.ones((N, 1)),
    }[draw(st.sampled_from(forms))]
    return w, valid


@FUZZ
@given(st.booleans(), st.data(), sample_weights())
def test_fuzzed_targets_and_sample_weights(classifier, data, weights):
    y, valid_y = data.draw(class_targets() if classifier else regression_targets())
    sample_weight, valid_weight = weights
    model = (RNNClassifier if classifier else RNNRegressor)(**TINY)
    event(f"valid={valid_y and valid_weight}")
    if not (valid_y and valid_weight):
        assert_clear_error(lambda: model.fit(X_SMALL, y, sample_weight=sample_weight))
        return
    model.fit(X_SMALL, y, sample_weight=sample_weight)
    predicted = model.predict(X_SMALL)
    assert len(predicted) == N
    if classifier:
        assert set(predicted.tolist()) <= set(np.asarray(y).tolist())
    else:
        single = np.ndim(y) == 1 or np.shape(y)[1] == 1  # one target: its axis is dropped
        assert np.isfinite(predicted).all()
        assert predicted.shape == ((N,) if single else np.shape(y))


# -- hyper-parameters at and past their bounds -----------------------------------------------

BOUNDS = {  # name: (valid values, invalid values)
    "pattern": (["auto", "seq2vec"], ["seq2tree", None, 1]),
    "cell": (["rnn", "gru", "lstm"], ["LSTM", "", None]),
    "hidden_layer_sizes": (
        [1, (1, 1), [2], np.int64(2)],
        [0, -1, (), (1, 0), 2.5, "8", (True,), None, [[2]]],
    ),
    "bidirectional": ([True, np.bool_(False)], ["yes", 1, None]),
    "nonlinearity": (["tanh", "relu"], ["sigmoid"]),
    "dropout": ([0.0, 0.5, 0.999], [1.0, -0.1, np.nan, "0.5"]),
    "recurrent_dropout": ([0.0, 0.5, 0.999], [1.0, -0.1, np.nan, "0.5"]),
    "input_dropout": ([0.0, 0.5, 0.999], [1.0, -0.1, np.nan, "0.5"]),
    "readout": (["last", "mean", "max", "attention"], ["median", None, "LAST"]),
    "pool_steps": ([None, 1, 2, 10**9], [0, -1, 1.5, "2"]),
    "solver": (["adam", "sgd"], ["lbfgs"]),
    "alpha": ([0.0, 1e3], [-1.0, np.nan, np.inf]),
    "batch_size": ([1, "auto", 10**9], [0, -1, 2.5, "big"]),
    "learning_rate": (["constant", "adaptive"], ["invscaling"]),
    "learning_rate_init": ([1e-12, 10.0, 1e30], [0.0, -1.0, np.nan, np.inf]),
    "max_iter": ([1, 3], [0, -1, 1.5]),
    "shuffle": ([True, False], ["no"]),
    "random_state": ([None, 0, 2**32 - 1, np.random.RandomState(0)], [-1, 2**32, "a"]),
    "tol": ([0.0, 0.999], [-1.0, 1.0, np.nan, np.inf]),
    "warm_start": ([True, False], [0]),
    "momentum": ([0.0, 1.0], [-0.1, 1.1]),
    "nesterovs_momentum": ([True, False], ["yes"]),
    "early_stopping": ([True, False], ["yes"]),
    "validation_fraction": ([0.3, 0.5], [0.0, 1.0, -0.1]),
    "beta_1": ([0.0, 1 - 1e-12], [1.0, -0.1]),
    "beta_2": ([0.0, 1 - 1e-12], [1.0, -0.1]),
    "epsilon": ([1e-8, 1.0], [0.0, -1e-8]),
    "n_iter_no_change": ([1, np.inf], [0, -1]),
    "clip_norm": ([None, 1e-30, 1e3], [0.0, -1.0, np.inf]),
    "truncate_bptt": ([None, 1, 4], [0, -1, 1.5]),
    "dtype": (["float32", "float64"], ["float16", np.float32]),
}
X_PARAMS = np.random.default_rng(2).normal(size=(20, 3, 2))
Y_PARAMS = X_PARAMS.sum(axis=(1, 2))


@FUZZ
@given(st.lists(st.sampled_from(sorted(BOUNDS)), min_size=1, max_size=3, unique=True), st.data())
def test_hyper_parameters_at_and_past_their_bounds(names, data):
    params, valid = dict(hidden_layer_sizes=(2,), max_iter=2, random_state=0), True
    for name in names:
        take_valid = not rarely(data.draw)
        params[name] = data.draw(st.sampled_from(BOUNDS[name][0 if take_valid else 1]), label=name)
        valid = valid and take_valid
    model = RNNRegressor(**params)
    event(f"valid={valid}")
    if not valid:
        assert_clear_error(lambda: model.fit(X_PARAMS, Y_PARAMS))
        return
    model.fit(X_PARAMS, Y_PARAMS)
    assert np.isfinite(model.params_).all()
    assert np.isfinite(model.predict(X_PARAMS)).all()


def test_truncate_bptt_past_int_range_is_full_bptt():
    params = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0, dtype="float64")
    full = RNNRegressor(**params).fit(X_PARAMS, Y_PARAMS).params_
    huge = RNNRegressor(truncate_bptt=2**31, **params).fit(X_PARAMS, Y_PARAMS).params_
    np.testing.assert_array_equal(huge, full)


_IN_CAPPED_MEMORY = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import warnings
import numpy as np
from crnn._estimators import RNNRegressor
warnings.simplefilter("ignore")
X = np.random.default_rng(0).normal(size=(4, 3))
model = RNNRegressor(pattern="vec2seq", hidden_layer_sizes=(2,), max_iter=1).fit(X, X)
for steps in (2**31, 2**40):
    try:
        model.predict(X[:1], n_steps_out=steps)
        outcome = "no error"
    except BaseException as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    print(f"n_steps_out={steps}: {outcome}")
"""


@pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer needs more address space than the cap allows",
)
def test_output_steps_past_int_range_are_refused_before_allocating():
    # The kernels take at most 2**31 - 1 steps: asking for more is a ValueError, not an
    # attempt to allocate the outputs (which fails in a 3 GiB address space).
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _IN_CAPPED_MEMORY],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(": ValueError: " in line for line in lines), out.stdout
