"""`openapi-docs`: the HTTP API reference as Markdown (docs/api.md).

The document comes from the server's own `openapi_document()`, imported inside
the command (this module is one of the two CLI doors to the server), so the
reference cannot drift from what the coordinator serves. The Markdown layout
is kept stable: tests/test_docs.py compares the committed docs/api.md with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from coordinator.cli.common import EXIT_OK, JSON, Commands, Connection, note

log = logging.getLogger(__name__)

_METHODS = ("get", "post", "put", "patch", "delete")

_GENERATED = (
    "Generated from the coordinator's OpenAPI document (also served at"
    " `/api/v1/openapi.json`) by `python -m coordinator openapi-docs --out docs/api.md`;"
    " edit the models in `coordinator/core/models/` and the operations in"
    " `coordinator/server/openapi/operations.py`, not this file."
)


def register(commands: Commands) -> None:
    p = commands.add(
        "openapi-docs",
        cmd_openapi_docs,
        "write the HTTP API reference as Markdown (no coordinator needed)",
        parents=[],
    )
    p.add_argument("--out", default="-", metavar="FILE", help="e.g. docs/api.md (default: stdout)")


def cmd_openapi_docs(args: argparse.Namespace, conn: Connection) -> int:
    from coordinator.server.openapi import openapi_document

    text = openapi_markdown(openapi_document())
    if args.out == "-":
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    note(f"wrote {out}")
    return EXIT_OK


def openapi_markdown(doc: JSON) -> str:
    """A Markdown API reference: one section per tag, then the schemas."""
    info = doc["info"]
    lines = [f"# {info['title']}: HTTP API v{info['version']}", ""]
    lines += [info.get("description", ""), "", _GENERATED, ""]
    lines += authentication_markdown(doc)
    for tag, ops_of_tag in operations_by_tag(doc).items():
        lines += [f"## {tag}", ""]
        for method, path, op in ops_of_tag:
            lines += operation_markdown(method, path, op, doc)
    lines += ["## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", "", *fields_markdown(schema, doc), ""]
    return "\n".join(lines).rstrip() + "\n"


def authentication_markdown(doc: JSON) -> list[str]:
    lines = ["## Authentication", ""]
    for name, scheme in doc.get("components", {}).get("securitySchemes", {}).items():
        text = scheme.get("description", "")
        lines.append(f"- `{name}`: `Authorization: Bearer <token>` with {text}")
    return [*lines, ""]


def operations_by_tag(doc: JSON) -> dict[str, list[tuple[str, str, JSON]]]:
    """(method, path, operation) grouped by each operation's first tag, in document order."""
    by_tag: dict[str, list[tuple[str, str, JSON]]] = {}
    for path, ops in doc["paths"].items():
        for method in _METHODS:
            if method in ops:
                tag = (ops[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method, path, ops[method]))
    return by_tag


def operation_markdown(method: str, path: str, op: JSON, doc: JSON) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", op.get("summary", ""), ""]
    security = [name for req in op.get("security", []) for name in req]
    lines += [f"Auth: {', '.join(f'`{s}`' for s in security) or 'none'}", ""]
    lines += parameters_markdown(op.get("parameters", []))
    lines += request_body_markdown(op.get("requestBody"), doc)
    lines += responses_markdown(op.get("responses", {}))
    return [*lines, ""]


def parameters_markdown(params: list[JSON]) -> list[str]:
    if not params:
        return []
    lines = ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
    lines += [
        f"| `{p['name']}` | {p['in']} | {schema_type(p.get('schema', {}))} |"
        f" {'yes' if p.get('required') else 'no'} |"
        f" {cell(describe(p.get('schema', {}), p.get('description', '')))} |"
        for p in params
    ]
    return [*lines, ""]


def request_body_markdown(body: JSON | None, doc: JSON) -> list[str]:
    lines: list[str] = []
    for content_type, media in (body or {}).get("content", {}).items():
        schema = media.get("schema", {})
        lines += [f"Request body (`{content_type}`): {schema_type(schema)}", ""]
        lines += [*fields_markdown(schema, doc), ""] if content_type.endswith("json") else []
    return lines


def responses_markdown(responses: JSON) -> list[str]:
    lines = ["| response | description | content |", "|---|---|---|"]
    for status, response in responses.items():
        content = ", ".join(
            f"`{ct}` {schema_type(media.get('schema', {}))}"
            for ct, media in response.get("content", {}).items()
        )
        lines.append(f"| {status} | {cell(response.get('description', ''))} | {content} |")
    return lines


def resolve(schema: JSON, doc: JSON) -> JSON:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    resolved: JSON = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return resolved


def fields_markdown(schema: JSON, doc: JSON) -> list[str]:
    schema = resolve(schema, doc)
    props = schema.get("properties")
    if not props:
        return [f"Type: {schema_type(schema)}"]
    required = set(schema.get("required", []))
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    lines += [
        f"| `{name}` | {schema_type(prop)} | {'yes' if name in required else 'no'} |"
        f" {cell(describe(prop, prop.get('description', '')))} |"
        for name, prop in props.items()
    ]
    return lines


def schema_type(schema: JSON) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    kind = schema.get("type")
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(alternatives, list) and alternatives:
        text = " or ".join(schema_type(a) for a in alternatives)
    elif isinstance(kind, list):
        text = " or ".join(kind)
    elif kind == "array" and schema.get("items"):
        text = f"array of {schema_type(schema['items'])}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"object of {schema_type(schema['additionalProperties'])}"
    else:
        text = str(kind or "any")
    return text + (f" ({schema['format']})" if schema.get("format") else "")


def describe(schema: JSON, text: str) -> str:
    """A description with the schema's constraints appended."""
    extra = []
    if "enum" in schema:
        extra.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"]))
    for key, label in (("minimum", "min"), ("maximum", "max"), ("maxLength", "max length")):
        if key in schema:
            extra.append(f"{label} {schema[key]}")
    if "default" in schema:
        extra.append(f"default `{json.dumps(schema['default'])}`")
    if "pattern" in schema:
        extra.append(f"pattern `{schema['pattern']}`")
    return "; ".join([t for t in (text, *extra) if t])


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
