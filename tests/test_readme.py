"""Every Python example in the README runs as written."""
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if README.exists() else []


@pytest.mark.skipif(not BLOCKS, reason="README.md not found next to tests/")
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short demo fits stop before convergence, on purpose
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
