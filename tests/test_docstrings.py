"""The public docstrings: their examples run and print what they show, and they pass
numpydoc's validation."""

import doctest
import importlib
import warnings

import pytest

MODULES = [
    "crnn",
    "crnn._base",
    "crnn.functional",
    "crnn._forecast",
    "crnn._persistence",
    "crnn.preprocessing",
    "crnn.metrics",
    "crnn.datasets._base",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short example fits stop before convergence
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


# numpydoc's checks left out, as scikit-learn leaves them out: an extended summary, a See
# Also and an Examples section on every method would repeat the class docstrings (whose
# examples test_docstring_examples runs); RT02 refuses named return values, which
# scikit-learn's convention ("self : object") uses.
NUMPYDOC_IGNORE = {"ES01", "SA01", "EX01", "RT02"}


def _public_names():
    """Every public class (and its public methods and properties, inherited from crnn
    classes too) and public function of crnn, crnn.functional, crnn.datasets,
    crnn.preprocessing and crnn.metrics."""
    import inspect

    import crnn
    import crnn.datasets
    import crnn.functional
    import crnn.metrics
    import crnn.preprocessing

    names = []
    modules = (crnn, crnn.functional, crnn.datasets, crnn.preprocessing, crnn.metrics)
    for module in modules:
        for name in module.__all__:
            obj, qualified = getattr(module, name), f"{module.__name__}.{name}"
            names.append(qualified)
            if not inspect.isclass(obj):
                continue
            members = {}
            for cls in reversed(obj.__mro__):
                if cls.__module__.startswith("crnn"):
                    members.update(vars(cls))
            names += [
                f"{qualified}.{attr}"
                for attr, member in sorted(members.items())
                if not attr.startswith("_") and (callable(member) or isinstance(member, property))
            ]
    return names


@pytest.mark.parametrize("name", _public_names())
def test_public_docstrings_pass_numpydoc_validation(name):
    validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is not installed")
    errors = [
        f"{code}: {message}"
        for code, message in validate.validate(name)["errors"]
        if code not in NUMPYDOC_IGNORE
    ]
    assert not errors, f"{name}:\n" + "\n".join(errors)
