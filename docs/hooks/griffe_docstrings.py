"""Griffe extension for the API reference: reads the project's docstrings as written.

* ``Example:`` (the project's section title) is read as Google's ``Examples:`` section, so
  doctest lines render as code, not as Markdown.
* Sphinx roles (``:class:`~aimc.chips.ChipSpec```, ``:func:`estimate```) become
  cross-references (``[`ChipSpec`][aimc.chips.ChipSpec]``), resolved by mkdocs-autorefs: a
  reference to something that does not exist fails ``mkdocs build --strict``. Names
  without a dot are looked up in the object's own module (and class).
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`(~?)([^`<>]+)`")


def _target(obj: griffe.Object, name: str) -> str | None:
    """The documented path ``name`` refers to from ``obj``; None: not documented here
    (another package, or a private name the reference leaves out)."""
    name = name.strip().removesuffix("()").lstrip(".")
    if any(part.startswith("_") for part in name.split(".")):
        return None
    if name.startswith("aimc."):
        return name
    head, _, rest = name.partition(".")
    for scope in (obj, obj.parent, obj.module):
        if scope is not None and head in scope.members:
            member = scope.members[head]
            path = member.target_path if isinstance(member, griffe.Alias) else member.path
            return f"{path}.{rest}" if rest else path
    return None  # torch., np., ...


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)

        def link(m: re.Match) -> str:
            tilde, name = m.groups()
            shown = name.rsplit(".", 1)[-1] if tilde else name
            target = _target(obj, name)
            return f"[`{shown}`][{target}]" if target else f"`{shown}`"

        obj.docstring.value = _ROLE.sub(link, text)
