"""Every Python example in the README runs as written, in order, and prints what it says.

The examples run as one reader would run them, in one shared namespace. A comment on the
last line of a top-level expression statement (a ``print(...)`` or a bare expression) is a
claim about its result, checked here:

- ``about X``: X is a number, matched within ``MARGIN`` (absolute). For a ``print``, the
  k-th ``about`` of the comment is the k-th decimal number (one with a ".") of the printed
  line; for a bare expression, the value itself.
- a tuple of ints such as ``(200, 10)``, ``True`` or ``False``: printed verbatim (for a
  ``print``); for a bare expression, ``shape (7,)`` is the shape of the value and a plain
  tuple is the value.

Any other words in a comment are prose. Comments on assignments describe, and are not
checked. So a new example states its results as ``print(score)  # about 0.93``.
"""

import ast
import contextlib
import importlib.util
import io
import re
import tokenize
import warnings
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# How far a result may be from the README's "about X": the examples train small networks
# for a few epochs, and BLAS libraries round differently.
MARGIN = 0.02
# The "Scaling out" examples need the optional dask extra (dask and distributed).
HAVE_DASK = all(importlib.util.find_spec(name) for name in ("dask", "distributed"))

_ABOUT = re.compile(r"\babout (-?\d+(?:\.\d+)?)")
_DECIMAL = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
_LITERAL = re.compile(r"(shape )?(\((?:\d+, )*\d+,?\)|\bTrue\b|\bFalse\b)")


def _comments(code):
    """The comment of each line of ``code``, by line number."""
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    return {t.start[0]: t.string[1:] for t in tokens if t.type == tokenize.COMMENT}


def _check_claims(comment, where, printed=None, value=None):
    """Check the claims of ``comment`` against a printed line, or else a value."""
    abouts = [float(x) for x in _ABOUT.findall(comment)]
    if abouts:
        got = [float(x) for x in _DECIMAL.findall(printed)] if printed is not None else [value]
        assert len(got) >= len(abouts), f"{where}: {comment!r}, but got {printed or value!r}"
        for want, actual in zip(abouts, got):
            assert abs(float(actual) - want) <= MARGIN, (
                f"{where}: the README says about {want}, the example gives {actual}"
            )
    for shape, literal in _LITERAL.findall(comment):
        if printed is not None:
            assert literal in printed, f"{where}: the README says {literal}, printed {printed!r}"
        elif shape:
            assert np.shape(value) == ast.literal_eval(literal), (
                f"{where}: the README says shape {literal}, got {np.shape(value)}"
            )
        else:
            assert value == ast.literal_eval(literal), (
                f"{where}: the README says {literal}, got {value!r}"
            )


def _run_block(code, where, namespace):
    """Run a block statement by statement, checking the claims of its expressions."""
    comments = _comments(code)
    for statement in ast.parse(code).body:
        comment = comments.get(statement.end_lineno, "")
        if not isinstance(statement, ast.Expr):
            exec(compile(ast.Module([statement], []), where, "exec"), namespace)
            continue
        line = f"{where}, line {statement.end_lineno}"
        is_print = (
            isinstance(statement.value, ast.Call)
            and getattr(statement.value.func, "id", None) == "print"
        )
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
        if is_print:
            print(output.getvalue(), end="")
            _check_claims(comment, line, printed=output.getvalue())
        else:
            _check_claims(comment, line, value=value)


@pytest.mark.skipif(not README.exists(), reason="README.md not found next to tests/")
def test_readme_examples_run_and_print_what_they_say(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}  # shared: later examples may use earlier ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short demo fits stop before convergence, on purpose
        for i, code in enumerate(blocks):
            if "dask" in code and not HAVE_DASK:
                continue
            where = f"README.md python block {i}"
            try:
                _run_block(code, where, namespace)
            except AssertionError:
                raise
            except Exception as exc:
                raise AssertionError(f"{where} failed:\n{code}") from exc


@pytest.mark.parametrize(
    ("comment", "printed", "value", "fails"),
    [
        ("seq2vec, about 0.97", "seq2vec 0.9711\n", None, False),
        ("seq2vec, about 0.97", "seq2vec 0.9417\n", None, True),
        ("(200, 10), about 0.98", "(200, 10) 0.9812\n", None, False),
        ("(200, 10), about 0.98", "(200, 9) 0.9812\n", None, True),
        ("True", "False\n", None, True),
        ("the first week, shape (7,)", None, np.zeros(7), False),
        ("the first week, shape (7,)", None, np.zeros(6), True),
        ("(359, 7): one forecast per history", None, (359, 7), False),
        ("a list, one array each", "anything\n", None, False),
    ],
)
def test_readme_claims_are_checked(comment, printed, value, fails):
    context = pytest.raises(AssertionError) if fails else contextlib.nullcontext()
    with context:
        _check_claims(comment, "here", printed=printed, value=value)


@pytest.mark.skipif(not README.exists(), reason="README.md not found next to tests/")
def test_readme_layout_matches_the_tree():
    """Every path in "Layout of the code" exists, and every module of src/crnn is there."""
    root = README.parent
    text = README.read_text()
    layout = re.search(r"## Layout of the code\n+```\n(.*?)```", text, re.S).group(1)
    paths = [line.split()[0] for line in layout.splitlines() if line and not line[0].isspace()]
    missing = [path for path in paths if not (root / path).exists()]
    assert not missing, f"README's layout names paths that do not exist: {missing}"
    modules = sorted(p.relative_to(root).as_posix() for p in (root / "src/crnn").glob("*.py*"))
    absent = [m for m in modules if m not in paths and not m.endswith("__init__.py")]
    assert not absent, f"README's layout does not name {absent}"
