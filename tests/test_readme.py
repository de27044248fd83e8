"""Every Python example in the README runs as written, in order, as one reader would."""
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.skipif(not README.exists(), reason="README.md not found next to tests/")
def test_readme_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}  # shared: later examples may use earlier ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short demo fits stop before convergence, on purpose
        for i, code in enumerate(blocks):
            try:
                exec(compile(code, f"README.md python block {i}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"README python block {i} failed:\n{code}") from exc
