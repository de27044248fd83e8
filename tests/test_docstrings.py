"""The examples in the public docstrings run and print what they show."""

import doctest
import importlib
import warnings

import pytest

MODULES = [
    "crnn.functional",
    "crnn._estimators",
    "crnn._forecast",
    "crnn._persistence",
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
