"""A griffe extension for the API reference: Sphinx roles in docstrings become inline code.

The docstrings say ``:class:`EntraConfig``` (read by IDEs and ``help()``); mkdocstrings renders
Markdown, where the role would show as text. Loaded by mkdocs.yml, not by the library.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const):`~?\.?([^`]+)`")


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)
