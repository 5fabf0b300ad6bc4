"""Sphinx configuration: MyST markdown pages, numpydoc docstrings, autodoc API pages."""

from __future__ import annotations

import pdesurrogates

project = "pdesurrogates"
author = "The pdesurrogates developers"
copyright = "2026, the pdesurrogates developers"
version = release = pdesurrogates.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "undoc-members": False}
intersphinx_mapping: dict = {}
html_theme = "alabaster"
html_static_path: list[str] = []
suppress_warnings = ["myst.header"]
