"""Build crnn's one extension module; metadata lives in pyproject.toml.

Set CRNN_SANITIZE=1 to compile the C kernels with AddressSanitizer and UBSan (see README).
Set CRNN_CPU to a GCC -march value (x86-64, x86-64-v3, x86-64-v4) to compile them for that
CPU alone, without the run-time choice between per-CPU clones (internal.h): how CI tests the
code of every clone, not only the one its own CPU picks.
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

CSRC = Path("src", "csrc")
# The per-dtype wrappers include the template bodies (dtype.h: cell_*.c, plan.c, layer.c, ...);
# only they compile.
SOURCES = [
    "src/crnn/_kernels.pyx",
    str(CSRC / "common.c"),
    str(CSRC / "dtype_f32.c"),
    str(CSRC / "dtype_f64.c"),
]

# No fast-math (it would break the NaN checks); these two flags only let the row loops,
# which contain selects, vectorize.
compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
link_args = []
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
march = []
if os.environ.get("CRNN_CPU"):
    march = [f"-march={os.environ['CRNN_CPU']}"]
    macros.append(("CRNN_NO_CPU_DISPATCH", "1"))
if os.environ.get("CRNN_SANITIZE"):
    sanitize = [
        "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer",
        "-fno-sanitize-recover=undefined",
    ]
    compile_args = ["-O1", "-g"] + sanitize
    link_args = sanitize
compile_args += march

ext = Extension(
    "crnn._kernels",
    sources=SOURCES,
    # The templates and headers the sources include: an edit to one rebuilds its includers.
    depends=sorted(str(p) for p in CSRC.iterdir() if p.suffix in (".c", ".h"))
    + ["include/crnn/crnn.h"],
    include_dirs=["include", str(CSRC), np.get_include()],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    define_macros=macros,
)

# The generated C goes to build/, away from the hand-written sources.
setup(ext_modules=cythonize([ext], language_level=3, build_dir="build/cython"))
