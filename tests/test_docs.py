"""The documentation: its code runs as written and shows what it says it shows, the gallery's
examples compile, and (with Sphinx installed) the site builds offline with warnings as errors
and the gallery executed."""

import ast
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS, EXAMPLES = ROOT / "docs", ROOT / "examples"
PAGES = sorted(DOCS.glob("*.rst")) + sorted(DOCS.glob("user_guide/*.rst"))
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))
# The optional dependencies a page's code may import (crnn.dask imports dask); such a page
# is skipped without them.
OPTIONAL = {
    "dask": "dask",
    "distributed": "distributed",
    "crnn.dask": "dask",
    "pandas": "pandas",
    "skops": "skops",
}

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="docs/ not found next to tests/")


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_example_compiles_with_a_title(path):
    source = path.read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    # sphinx-gallery takes the page title from the docstring: a title between two rules.
    assert re.match(r"=+\n[^\n]+\n=+\n", docstring), f"{path.name} has no titled docstring"
    compile(source, str(path), "exec")


def _python_blocks(page):
    """The ``.. code-block:: python`` blocks of an rst page, dedented."""
    blocks = re.findall(
        r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", page.read_text(), re.MULTILINE
    )
    return [re.sub(r"^   ", "", block, flags=re.MULTILINE) for block in blocks]


def _optional_imports(blocks):
    """The optional dependencies that the code of ``blocks`` imports."""
    needs = set()
    for node in ast.walk(ast.parse("\n".join(blocks))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            for prefix, dependency in OPTIONAL.items():
                if name == prefix or name.startswith(prefix + "."):
                    needs.add(dependency)
    return sorted(needs)


def _shown_value(line):
    """The value a ``# comment`` shows after an expression (``# True``, ``# (200, 10): ...``),
    if it is a Python literal; else None."""
    comment = line.partition("#")[2].strip()
    try:
        return (ast.literal_eval(comment.split(":")[0].strip()),)
    except (ValueError, SyntaxError):
        return None


def _run_block(code, name, namespace):
    """Run a block statement by statement; an expression followed by a literal in a comment
    must have that value."""
    lines = code.splitlines()
    for node in ast.parse(code).body:
        exec(compile(ast.Module([node], []), name, "exec"), namespace)
        shown = _shown_value(lines[node.end_lineno - 1]) if isinstance(node, ast.Expr) else None
        if shown is not None:
            value = eval(compile(ast.Expression(node.value), name, "eval"), namespace)
            assert np.array_equal(value, shown[0]), (
                f"{name}, line {node.end_lineno}: shows {shown[0]!r}, got {value!r}"
            )


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _python_blocks(p)], ids=lambda p: str(p.relative_to(DOCS))
)
def test_page_code_runs(page, tmp_path, monkeypatch):
    blocks = _python_blocks(page)
    for name in _optional_imports(blocks):
        pytest.importorskip(name, reason=f"{page.name} runs code that needs {name}")
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    namespace = {"__name__": "__docs__"}  # shared: later blocks of a page use earlier ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short example fits stop before convergence
        for i, code in enumerate(blocks):
            try:
                _run_block(code, f"{page.name} python block {i}", namespace)
            except Exception as exc:
                raise AssertionError(f"{page.name} python block {i} failed:\n{code}") from exc


def test_docs_build_offline(tmp_path):
    for module in ("sphinx", "numpydoc", "pydata_sphinx_theme", "sphinx_gallery", "matplotlib"):
        pytest.importorskip(module, reason='building the docs needs pip install ".[docs]"')
    # Build a copy, so that the generated pages and the executed gallery stay out of the tree.
    for part in ("docs", "examples", "include", "bench/results"):
        shutil.copytree(
            ROOT / part,
            tmp_path / part,
            ignore=shutil.ignore_patterns("_build", "generated", "auto_examples"),
        )
    out = tmp_path / "html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(tmp_path / "docs"),
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for script in SCRIPTS:  # every example ran and drew its figures
        assert list((out / "_images").glob(f"sphx_glr_{script.stem}_0*.png")), script.name
    # Nothing a page needs to render comes from the network: no remote scripts,
    # stylesheets or fonts (plain links to other sites are fine).
    remote = re.compile(
        r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.IGNORECASE
    )
    remote_css = re.compile(
        r"url\(\s*['\"]?(?:https?:)?//|@import\s+['\"]?(?:https?:)?//", re.IGNORECASE
    )
    for page in out.rglob("*.html"):
        match = remote.search(page.read_text(encoding="utf-8"))
        assert match is None, f"{page.relative_to(out)} loads {match.group(0)!r}"
    for sheet in out.rglob("*.css"):
        match = remote_css.search(sheet.read_text(encoding="utf-8", errors="replace"))
        assert match is None, f"{sheet.relative_to(out)} loads {match.group(0)!r}"
