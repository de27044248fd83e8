"""Sphinx configuration of crnn's documentation.

Builds offline: no intersphinx inventories, no remote fonts or scripts; the gallery's
examples run at build time on generated data, data shipped with crnn and the committed
benchmark results. Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

import re
from pathlib import Path

import crnn

project = "crnn"
copyright = "the crnn developers"
release = crnn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**/*.ipynb", "**/*.py.md5", "**/*.codeobj.json"]
root_doc = "index"
default_role = "obj"  # `name` links to the Python object of that name

# The API pages come from the docstrings: one page per public name (_templates/autosummary).
autosummary_generate = True
autosummary_ignore_module_all = False  # a module page lists its __all__
autodoc_typehints = "none"
autodoc_preserve_defaults = True  # signatures show defaults as written (np.float64)
# numpydoc renders the sections; autosummary already lists the members of a class.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

gallery_root = Path(__file__).resolve().parents[1]
sphinx_gallery_conf = {
    "examples_dirs": str(gallery_root / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every plot_*.py runs at build time
    "doc_module": ("crnn",),
    "backreferences_dir": "generated/backreferences",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    # The page of computation times loads jQuery and DataTables from CDNs: not written (the
    # build log still lists each example's time).
    "write_computation_times": False,
    "capture_repr": (),  # print only what the examples print, not their last expression
}

html_theme = "pydata_sphinx_theme"
html_title = f"crnn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
# No section navigation on the landing page and the example pages: the examples' code
# (99 columns) needs the width; the gallery's index and previous/next links navigate.
html_sidebars = {"index": [], "auto_examples/plot_*": []}
html_static_path = ["_static"]
html_css_files = ["crnn.css"]
html_show_sourcelink = True


def skip_sklearn_plumbing(app, what, name, obj, skip, options):
    """Leave out scikit-learn's metadata-routing plumbing (``set_fit_request`` and the
    like) and its ``set_output`` (of transformers), inherited and documented by
    scikit-learn (their docstrings link to scikit-learn's own pages)."""
    if name in ("get_metadata_routing", "set_output") or re.fullmatch(r"set_\w+_request", name):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", skip_sklearn_plumbing)
