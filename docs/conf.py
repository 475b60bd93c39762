"""Sphinx configuration for hanko-tornado's documentation (make docs)."""

import hanko_tornado

project = "hanko-tornado"
author = "the hanko-tornado authors"
copyright = "the hanko-tornado authors, MIT license"
version = release = hanko_tornado.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
# Headings become link targets (#the-section-name), as on GitHub.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Only this package's own docstrings: a Tornado method overridden here keeps its docs in Tornado's reference.
autodoc_inherit_docstrings = False
autodoc_default_options = {"members": True, "show-inheritance": True}
html_theme = "furo"
html_title = f"hanko-tornado {release}"
