"""Save and load fitted estimators without pickle.

A model file is a ZIP archive laid out like NumPy's ``.npz``: one ``.npy``
member per array, written with ``allow_pickle=False``, plus a ``metadata.json``
member describing the estimator: its class, its ``get_params()``, its fitted
attributes (the public attributes ending in ``"_"``), the crnn version and the
file format version. JSON values stand for themselves; an array is a reference
to its member, with its dtype, shape and SHA-256 digest.

Loading never runs code from the file: there is no pickle, the class is looked
up by name among crnn's own estimators (nothing is imported), and every array
is checked against its metadata before it is used. A damaged, truncated,
tampered or wrong-version file is refused with a ``ValueError``. The checks are
for integrity, not authenticity: they cannot tell who wrote a file.

File format version 1::

    model.npz
    |-- metadata.json   {"format": "crnn-model", "format_version": 1,
    |                    "crnn_version": ..., "estimator": <estimator>}
    |-- a0.npy, a1.npy, ...

    <estimator> = {"__estimator__": {"class": "crnn.RNNRegressor",
                                     "params": {name: <value>},
                                     "attributes": {name: <value>}}}
    <value>     = null | true | false | int | float | str | [<value>, ...]
                | {"__float__": "nan" | "inf" | "-inf"}
                | {"__tuple__": [<value>, ...]}
                | {"__dict__": [[<value>, <value>], ...]}     (key, value pairs)
                | {"__ndarray__": <array>} | {"__numpy_scalar__": <array>}
                | {"__object_array__": {"shape": [...], "items": [<value>, ...]}}
                | {"__random_state__": <value>}              (get_state() tuple)
                | <estimator>
    <array>     = {"key": "a0", "dtype": "<f8", "shape": [...], "fortran_order": false,
                   "sha256": hex digest of the array's bytes}
"""

import hashlib
import json
import math
import os
import secrets
import zipfile

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["load", "save", "skops_trusted_types"]

# Every crnn type that a skops file of crnn estimators (alone or in pipelines) holds, under
# the public names they are stored as (crnn/__init__.py gives the classes these paths).
_SKOPS_TRUSTED_TYPES = (
    "crnn.Adam",
    "crnn.RNNClassifier",
    "crnn.RNNForecaster",
    "crnn.RNNRegressor",
    "crnn.SGD",
    "crnn.preprocessing.SequenceScaler",
)


def skops_trusted_types():
    """The crnn types to trust when loading a skops file of crnn estimators.

    A skops file (:func:`skops.io.dump`) of crnn estimators, alone or in pipelines,
    holds objects of these types and of scikit-learn's, which skops trusts by default.
    The names are public paths (``crnn.RNNRegressor``, not the module that defines the
    class), stable across versions; skops refuses any other type it does not trust.

    Returns
    -------
    types : list of str
        The qualified names, for the ``trusted`` argument of :func:`skops.io.load`.

    See Also
    --------
    save : Save a crnn estimator on its own in crnn's format, without skops.

    Examples
    --------
    >>> import crnn
    >>> crnn.skops_trusted_types()  # doctest: +NORMALIZE_WHITESPACE
    ['crnn.Adam', 'crnn.RNNClassifier', 'crnn.RNNForecaster', 'crnn.RNNRegressor', 'crnn.SGD',
     'crnn.preprocessing.SequenceScaler']
    """
    return list(_SKOPS_TRUSTED_TYPES)


FORMAT = "crnn-model"
FORMAT_VERSION = 1
_METADATA = "metadata.json"
# Plain numeric, boolean and fixed-width string dtypes: .npy stores them without pickle.
_ARRAY_KINDS = frozenset("biufcUS")
_OBJECT_ITEM_TYPES = (str, bool, int, float, type(None))


def _crnn_version():
    from . import __version__

    return __version__


def _estimator_classes():
    """The classes that a model file may name, by their public name."""
    from ._estimators import RNNClassifier, RNNRegressor
    from ._forecast import RNNForecaster

    return {f"crnn.{cls.__name__}": cls for cls in (RNNClassifier, RNNRegressor, RNNForecaster)}


def _class_name(estimator, classes):
    for name, cls in classes.items():
        if type(estimator) is cls:
            return name
    raise TypeError(
        f"crnn.save supports crnn's estimators ({', '.join(sorted(classes))}), "
        f"got {type(estimator).__qualname__}. Save pipelines and other scikit-learn objects "
        "with skops.io.dump, and load them with skops.io.load(path, "
        "trusted=crnn.skops_trusted_types())."
    )


def _fitted_attributes(estimator):
    return {
        name: value
        for name, value in vars(estimator).items()
        if name.endswith("_") and not name.startswith("_")
    }


class _Encoder:
    """Turn an estimator into JSON-ready metadata and a dict of arrays."""

    def __init__(self, classes):
        self.classes = classes
        self.arrays = {}

    def estimator(self, estimator):
        name = _class_name(estimator, self.classes)
        params = estimator.get_params(deep=False)
        # A callback is code, which this format never stores: a loaded model has none.
        params.pop("callback", None)
        return {
            "__estimator__": {
                "class": name,
                "params": {k: self.value(v, k) for k, v in params.items()},
                "attributes": {
                    k: self.value(v, k) for k, v in _fitted_attributes(estimator).items()
                },
            }
        }

    def array(self, array, where):
        if array.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(
                f"cannot save {where}: arrays of dtype {array.dtype} are not supported."
            )
        key = f"a{len(self.arrays)}"
        self.arrays[key] = array
        return {
            "key": key,
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "fortran_order": _is_fortran_order(array),
            "sha256": _digest(array),
        }

    def value(self, value, where):
        # bool before int (bool is an int), numpy types before float (np.float64 is a float).
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return self.object_array(value, where)
            return {"__ndarray__": self.array(value, where)}
        if isinstance(value, np.generic):
            return {"__numpy_scalar__": self.array(np.asarray(value), where)}
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if isinstance(value, tuple):
            return {"__tuple__": [self.value(v, where) for v in value]}
        if isinstance(value, dict):
            return {
                "__dict__": [
                    [self.value(k, where), self.value(v, where)] for k, v in value.items()
                ]
            }
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self.value(value.get_state(), where)}
        if isinstance(value, BaseEstimator):
            return self.estimator(value)
        raise TypeError(
            f"cannot save {where}: values of type {type(value).__qualname__} are not supported."
        )

    def object_array(self, array, where):
        items = array.ravel().tolist()
        if not all(isinstance(item, _OBJECT_ITEM_TYPES) for item in items):
            raise TypeError(
                f"cannot save {where}: object arrays may hold only str, bool, int, float and None."
            )
        return {
            "__object_array__": {
                "shape": list(array.shape),
                "items": [self.value(i, where) for i in items],
            }
        }


class _Decoder:
    """Rebuild an estimator from metadata and the checked arrays of an open file."""

    def __init__(self, classes, archive, path):
        self.classes = classes
        self.archive = archive
        self.path = path
        self.used = set()

    def error(self, reason):
        return ValueError(f"{self.path} is not a valid crnn model file: {reason}.")

    def estimator(self, spec):
        if not (isinstance(spec, dict) and set(spec) == {"class", "params", "attributes"}):
            raise self.error("an estimator entry is malformed")
        cls = self.classes.get(spec["class"])
        if cls is None:
            raise self.error(f"unknown estimator class {spec['class']!r}")
        params = self.mapping(spec["params"])
        try:
            estimator = cls(**params)
        except TypeError as exc:
            raise self.error(f"parameters do not fit {spec['class']} ({exc})") from None
        if hasattr(estimator, "_parameter_constraints"):
            try:
                estimator._validate_params()
            except (TypeError, ValueError) as exc:
                raise self.error(f"invalid parameters for {spec['class']} ({exc})") from None
        for name, value in self.mapping(spec["attributes"]).items():
            if not (name.endswith("_") and not name.startswith("_")):
                raise self.error(f"{name!r} is not a fitted attribute name")
            setattr(estimator, name, value)
        try:
            _check_fitted_state(estimator)
        except (AttributeError, TypeError, ValueError) as exc:
            raise self.error(f"its fitted {spec['class']} is inconsistent ({exc})") from None
        return estimator

    def mapping(self, encoded):
        if not (isinstance(encoded, dict) and all(isinstance(k, str) for k in encoded)):
            raise self.error("parameters or attributes are malformed")
        return {k: self.value(v) for k, v in encoded.items()}

    def value(self, encoded):
        if encoded is None or isinstance(encoded, (bool, int, float, str)):
            return encoded
        if isinstance(encoded, list):
            return [self.value(v) for v in encoded]
        if not (isinstance(encoded, dict) and len(encoded) == 1):
            raise self.error(f"unexpected value {encoded!r}")
        ((tag, body),) = encoded.items()
        if tag == "__estimator__":
            return self.estimator(body)
        if tag == "__ndarray__":
            return self.array(body)
        if tag == "__numpy_scalar__":
            array = self.array(body)
            if array.ndim != 0:
                raise self.error("a numpy scalar is stored with a non-empty shape")
            return array[()]
        if tag == "__float__" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(self.value(v) for v in body)
        if (
            tag == "__dict__"
            and isinstance(body, list)
            and all(isinstance(p, list) and len(p) == 2 for p in body)
        ):
            try:
                return {self.value(k): self.value(v) for k, v in body}
            except TypeError:
                raise self.error("a dictionary has an unhashable key") from None
        if tag == "__object_array__":
            return self.object_array(body)
        if tag == "__random_state__":
            random_state = np.random.RandomState()
            try:
                random_state.set_state(self.value(body))
            except (TypeError, ValueError) as exc:
                raise self.error(f"a random state is malformed ({exc})") from None
            return random_state
        raise self.error(f"unexpected value {encoded!r}")

    def dtype(self, name):
        try:
            dtype = np.dtype(name)
        except TypeError:
            raise self.error(f"unknown dtype {name!r}") from None
        if dtype.kind not in _ARRAY_KINDS:
            raise self.error(f"dtype {name!r} is not allowed")
        return dtype

    def object_array(self, body):
        if not (isinstance(body, dict) and set(body) == {"shape", "items"}):
            raise self.error("an object array is malformed")
        shape = self.shape(body["shape"])
        items = [self.value(v) for v in body["items"]]
        if not all(isinstance(item, _OBJECT_ITEM_TYPES) for item in items) or len(
            items
        ) != math.prod(shape):
            raise self.error("an object array does not match its shape")
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(shape)

    def shape(self, shape):
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            raise self.error(f"invalid shape {shape!r}")
        return tuple(shape)

    def array(self, spec):
        fields = {"key", "dtype", "shape", "fortran_order", "sha256"}
        if not (isinstance(spec, dict) and set(spec) == fields):
            raise self.error("an array entry is malformed")
        key = spec["key"]
        member = f"{key}.npy"
        if key in self.used:
            raise self.error(f"array {key!r} is referenced twice")
        self.used.add(key)
        expected = (self.shape(spec["shape"]), spec["fortran_order"], self.dtype(spec["dtype"]))
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            raise self.error(f"array member {member!r} is missing") from None
        with self.archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(stream)
            else:
                raise self.error(f"array member {member!r} uses .npy version {version}")
            if header != expected:
                raise self.error(
                    f"array {key!r} has (shape, fortran_order, dtype) {header}, "
                    f"its metadata says {expected}"
                )
            shape, fortran_order, dtype = header
            # The header agrees with the metadata, so this reads no more than the file holds.
            data = stream.read(math.prod(shape) * dtype.itemsize)
            if len(data) != math.prod(shape) * dtype.itemsize or stream.read(1):
                raise self.error(f"array member {member!r} has the wrong size")
        array = (
            np.frombuffer(data, dtype=dtype)
            .reshape(shape, order="F" if fortran_order else "C")
            .copy(order="K")
        )
        if _digest(array) != spec["sha256"]:
            raise self.error(f"array {key!r} does not match its SHA-256 digest")
        return array


def _check_fitted_state(estimator):
    """Check that a loaded estimator's fitted attributes fit together; raise if not.

    The digests prove that the arrays are those the file describes; this proves
    that the description makes a model that can predict.
    """
    from ._base import BaseRNN
    from ._forecast import RNNForecaster

    if isinstance(estimator, BaseRNN) and hasattr(estimator, "params_"):
        n_params = estimator._network().n_params
        if estimator.params_.shape != (n_params,) or estimator.params_.dtype.kind != "f":
            raise ValueError(
                f"params_ is {estimator.params_.dtype} of shape {estimator.params_.shape}, "
                f"the architecture needs {n_params} floating-point values"
            )
        if hasattr(estimator, "classes_") and len(estimator.classes_) != estimator.n_outputs_:
            raise ValueError(
                f"{len(estimator.classes_)} classes for {estimator.n_outputs_} outputs"
            )
    if isinstance(estimator, RNNForecaster) and hasattr(estimator, "regressor_"):
        n_series = estimator.n_series_
        if not (
            estimator.mean_.shape == estimator.scale_.shape == (n_series,)
            and estimator.regressor_.n_features_in_ == n_series + estimator.n_covariates_
            and estimator.regressor_.n_outputs_ == estimator.horizon * n_series
            and estimator.residuals_.shape[1:] == (estimator.horizon * n_series,)
            and estimator.series_ndim_ in (1, 2)
        ):
            raise ValueError("the scaling, the network and the number of series disagree")


def _is_fortran_order(array):
    return bool(array.flags.f_contiguous and not array.flags.c_contiguous)


def _digest(array):
    order = "F" if _is_fortran_order(array) else "C"
    return hashlib.sha256(array.tobytes(order=order)).hexdigest()


def save(estimator, path):
    """Save a crnn estimator to a file that can be loaded without pickle.

    The file is a ``.npz`` archive: every array of the estimator as a ``.npy``
    member written with ``allow_pickle=False``, and a ``metadata.json`` member
    with the class, the hyper-parameters, the other fitted attributes, the
    crnn version and the format version. It is written to a temporary file in
    the same directory, then renamed over ``path``: a failed save (unwritable
    directory, full disk, interrupted process) leaves any existing file at
    ``path`` unchanged.

    Parameters
    ----------
    estimator : RNNClassifier, RNNRegressor or RNNForecaster
        The estimator to save, fitted or not. Its hyper-parameters (but
        ``callback``, which is code) and its public fitted attributes (names
        ending in ``"_"``) are saved; private state is not: a loaded estimator
        predicts exactly like the saved one, and training it further
        (``partial_fit``, ``warm_start``) starts a fresh optimizer.
    path : str or os.PathLike
        The file to write, used as given (no extension is added; ``.npz`` is
        customary).

    Raises
    ------
    TypeError
        If ``estimator`` is not a crnn estimator, or holds a value that cannot
        be saved without pickle.
    OSError
        If the file cannot be written.

    See Also
    --------
    load : Load an estimator saved by this function.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from crnn import RNNRegressor, load, save
    >>> X = np.random.RandomState(0).standard_normal((20, 5, 2))
    >>> model = RNNRegressor(max_iter=5, random_state=0).fit(X, X.sum(axis=(1, 2)))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(model, path)
    >>> bool((load(path).predict(X) == model.predict(X)).all())
    True
    """
    encoder = _Encoder(_estimator_classes())
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "crnn_version": _crnn_version(),
        "estimator": encoder.estimator(estimator),
    }
    text = json.dumps(document, allow_nan=False, indent=1)
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never write through an existing file or link; 0o666 lets the umask decide.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.writestr(_METADATA, text)
                for key, array in encoder.arrays.items():
                    with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path):
    """Load an estimator saved by :func:`save`, without running code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    estimator : RNNClassifier, RNNRegressor or RNNForecaster
        The estimator, with the saved hyper-parameters and fitted attributes;
        its predictions are bit-identical to those of the saved estimator.

    Raises
    ------
    ValueError
        If the file is not a crnn model file, is damaged, truncated or
        tampered with (any array differs from its recorded dtype, shape or
        digest), or was written in another format version.
    OSError
        If the file cannot be read.

    See Also
    --------
    save : Save an estimator to such a file.
    """
    path = os.fspath(path)
    classes = _estimator_classes()
    with open(path, "rb") as file:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, NotImplementedError) as exc:
            raise ValueError(
                f"{path} is not a crnn model file, or it is truncated or damaged ({exc})."
            ) from None
        with archive:
            decoder = _Decoder(classes, archive, path)
            try:
                return _read(decoder, archive)
            except (
                zipfile.BadZipFile,
                EOFError,
                OSError,
                UnicodeDecodeError,
                NotImplementedError,
            ) as exc:
                # A CRC mismatch, a cut-off member or a corrupt header inside the archive
                # (zipfile raises NotImplementedError for a version or method it lacks).
                raise decoder.error(f"{type(exc).__name__}: {exc}") from None


def _read(decoder, archive):
    # Stored members cannot expand beyond the file's own size when read.
    compressed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
    if compressed:
        raise decoder.error(f"members {compressed} are compressed; crnn writes them stored")
    encrypted = [i.filename for i in archive.infolist() if i.flag_bits & 0x1]
    if encrypted:
        raise decoder.error(f"members {encrypted} are marked encrypted; crnn never encrypts")
    try:
        document = json.loads(archive.read(_METADATA).decode("utf-8"))
    except KeyError:
        raise decoder.error(f"it has no {_METADATA}") from None
    except json.JSONDecodeError as exc:
        raise decoder.error(f"{_METADATA} is not valid JSON ({exc})") from None
    if not (isinstance(document, dict) and document.get("format") == FORMAT):
        raise decoder.error(f"{_METADATA} does not describe a crnn model")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ValueError(
            f"{decoder.path} is in crnn model format version {version!r} (written by crnn "
            f"{document.get('crnn_version')}), but this crnn ({_crnn_version()}) reads version "
            f"{FORMAT_VERSION}" + (": upgrade crnn to load it." if newer else ".")
        )
    if set(document) != {"format", "format_version", "crnn_version", "estimator"}:
        raise decoder.error(f"{_METADATA} has unexpected fields")
    encoded = document["estimator"]
    if not (isinstance(encoded, dict) and set(encoded) == {"__estimator__"}):
        raise decoder.error("it does not hold an estimator")
    estimator = decoder.estimator(encoded["__estimator__"])
    members = set(archive.namelist()) - {_METADATA}
    extra = members - {f"{key}.npy" for key in decoder.used}
    if extra:
        raise decoder.error(f"it has unexpected members {sorted(extra)}")
    return estimator
