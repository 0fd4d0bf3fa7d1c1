"""MkDocs hook: pages generated at build time, never copied by hand.

* ``reference/chip-spec.md``: the chip-spec reference, rendered from the JSON Schema of
  :class:`aimc.chips.ChipSpec` (``aimc.chips.json_schema()``) and, for the ``device:``
  section, from the schema of every registered device model; the schema itself is
  published beside it as ``reference/chip-spec.schema.json``.
* ``examples.md``: every script in ``examples/`` with its docstring and source.
* ``readme.md`` and ``changelog.md``: the repository's README and CHANGELOG, with links
  into ``docs/`` rewritten for the site.

Configured in ``mkdocs.yml`` (``hooks:``); imports aimc from this checkout's ``src/``.
"""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]


def _aimc_chips() -> Any:
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    import aimc.chips
    from aimc.physics import DEVICES

    return aimc.chips, DEVICES


# --- JSON Schema -> Markdown -----------------------------------------------------------------

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj):`~?([^`]+)`")


def _md(text: str) -> str:
    """Docstring text as Markdown: reST roles become code spans, no table-breaking chars."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return " ".join(text.split()).replace("|", "\\|")


def _split_doc(description: str) -> tuple[str, dict[str, str]]:
    """A Google-style class docstring: (summary, {attribute: description})."""
    summary, _, attrs = description.partition("Attributes:")
    out: dict[str, str] = {}
    names: list[str] = []
    for line in attrs.splitlines():
        m = re.match(r"^ {4}([A-Za-z_][\w, ]*):\s*(.*)$", line)
        if m and not line.startswith(" " * 8):
            names = [n.strip() for n in m.group(1).split(",")]
            for n in names:
                out[n] = m.group(2)
        elif line.strip() and names:
            for n in names:
                out[n] += " " + line.strip()
    return _md(summary), {k: _md(v) for k, v in out.items()}


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"[{prop['$ref'].rsplit('/', 1)[-1]}](#{prop['$ref'].rsplit('/', 1)[-1].lower()})"
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "enum" in prop or "const" in prop:
        return " \\| ".join(f"`{v}`" for v in prop.get("enum", [prop.get("const")]))
    t = prop.get("type", "any")
    if t == "array":
        if "prefixItems" in prop:
            return f"[{', '.join(_type(i) for i in prop['prefixItems'])}]"
        return f"list of {_type(prop.get('items', {}))}"
    return {"integer": "int", "number": "float", "boolean": "bool", "string": "str", "null": "null"}.get(t, t)


def _allowed(prop: dict[str, Any]) -> str:
    parts = []
    for p in prop.get("anyOf", [prop]):
        if "prefixItems" in p:
            continue  # a fixed-length list: its type says how many
        for key, sym in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"),
                         ("minItems", "items ≥"), ("maxItems", "items ≤")):
            if key in p:
                parts.append(f"{sym} {p[key]:g}" if isinstance(p[key], float) else f"{sym} {p[key]}")
    return ", ".join(parts)


def _default(name: str, prop: dict[str, Any], required: set[str], model: Any) -> str:
    if name in required:
        return "**required**"
    if "default" in prop:
        value = prop["default"]
    elif name not in model.model_fields:
        return "optional"  # a file-only key of the schema (``_version``)
    else:  # a default_factory: the schema has no value, the model does
        value = model.model_fields[name].get_default(call_default_factory=True)
        if hasattr(value, "to_dict"):
            return f"`{{kind: {value.kind}}}`" if hasattr(value, "kind") else "its defaults"
    text = json.dumps(value)
    return f"`{text}`" if len(text) < 40 else f"`{text[:37]}…`"


def _table(schema: dict[str, Any], docs: dict[str, str], model: Any) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        rows.append(f"| `{name}` | {_type(prop)} | {_default(name, prop, required, model)} | {_allowed(prop)} | "
                    f"{docs.get(name, '')} |")
    return rows


def chip_spec_markdown() -> str:
    """The chip-spec reference page, from ``aimc.chips.json_schema()`` and the devices."""
    chips, devices = _aimc_chips()
    schema = json.loads(chips.json_schema())
    defs = schema.get("$defs", {})
    summary, docs = _split_doc(schema.get("description", ""))
    lines = [
        "# Chip-spec reference",
        "",
        "Generated at build time from the JSON Schema of `aimc.chips.ChipSpec` "
        "(`aimc.chips.json_schema()`, [download](chip-spec.schema.json)) and of the registered "
        "device models. A chip file is YAML with these top-level keys; unknown keys, values of "
        "the wrong type and numbers outside the allowed range are refused with an error naming "
        "the file and the field. How to write one: [Write a chip spec](../guide/chip-spec.md).",
        "",
        summary,
        "",
        "## Top level",
        "",
        *_table(schema, docs, chips.ChipSpec),
    ]
    models = {}
    for field in chips.ChipSpec.model_fields.values():
        for cls in (field.annotation, *getattr(field.annotation, "__args__", ())):
            models[getattr(cls, "__name__", "")] = cls
    for name, sub in defs.items():
        if name == "DeviceModel" or name.startswith("Device_"):
            continue  # devices: one section per registered model below
        sub_summary, sub_docs = _split_doc(sub.get("description", ""))
        lines += ["", f"## {name}", "", sub_summary, "", *_table(sub, sub_docs, models[name])]
    lines += ["", "## DeviceModel", "",
              "The `device:` section names a registered device model by `kind:` and may override "
              "any of its parameters; the defaults are the published fits cited in each model's "
              "docstring.", ""]
    for kind in devices.names():
        cls = devices.get(kind)
        sub = cls.model_json_schema()
        sub_summary, sub_docs = _split_doc(sub.get("description", ""))
        ref = f"{cls.__module__}.{cls.__qualname__}"
        lines += [f"### `kind: {kind}`", "", f"{sub_summary} API: [`{ref}`][{ref}].", "", *_table(sub, sub_docs, cls), ""]
    return "\n".join(lines) + "\n"


# --- other generated pages -------------------------------------------------------------------

def examples_markdown() -> str:
    lines = ["# Examples", "",
             "Runnable scripts in `examples/` of the repository; the test suite runs every one "
             "(`tests/test_examples.py`). Each writes only to a temporary directory, so it can be "
             "run again. Run one with `python examples/NAME.py`.", ""]
    for path in sorted((ROOT / "examples").glob("*.py")):
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        title, _, rest = doc.partition("\n")
        lines += [f"## `{path.name}`", "", f"**{title.strip()}**", "", rest.strip(), "",
                  f'??? example "Source of {path.name}"', "", "    ```python",
                  *[f"    {ln}" if ln else "" for ln in text.splitlines()], "    ```", ""]
    return "\n".join(lines)


def _site_links(text: str) -> str:
    """Repository-relative links of README/CHANGELOG as links inside the site."""
    return re.sub(r"\]\(docs/([^)]+)\)", r"](\1)", text)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    chips, _ = _aimc_chips()
    generated = {
        "reference/chip-spec.md": chip_spec_markdown(),
        "reference/chip-spec.schema.json": chips.json_schema() + "\n",
        "examples.md": examples_markdown(),
        "readme.md": _site_links((ROOT / "README.md").read_text()),
        "changelog.md": _site_links((ROOT / "CHANGELOG.md").read_text()),
    }
    for uri, content in generated.items():
        if files.get_file_from_path(uri) is not None:
            raise RuntimeError(f"docs/{uri} is generated at build time; remove the checked-in copy")
        files.append(File.generated(config, uri, content=content))
    return files
