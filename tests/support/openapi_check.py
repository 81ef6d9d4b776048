"""Check the coordinator's answers against its own OpenAPI document (dev only).

`check_response` finds the documented operation of a request, checks that
the status is one it documents with the media type it documents, and
validates a JSON body against that status's schema. The validator knows
exactly the JSON Schema keywords the document generator writes
(coordinator/server/openapi/schemas.py) and refuses any other, so the two
cannot silently drift apart; every object the models describe is closed, so
a field the server sends and the models do not name is reported by name.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from yarl import URL

from coordinator.core.protocol import API_PREFIX
from coordinator.server.job_types import REGISTRY
from coordinator.server.openapi import openapi_document

JSON = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "patch")
# Keywords that only describe; nothing to check.
ANNOTATIONS = frozenset({"description", "default", "examples", "format", "title"})
CHECKED = frozenset(
    {
        "$ref",
        "anyOf",
        "type",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "propertyNames",
        "items",
        "minimum",
        "maximum",
        "maxLength",
        "pattern",
    }
)


class Drift(AssertionError):
    """An answer the document does not describe."""


def document() -> JSON:
    """The document as the app serves it now: with the job types registered now
    (a test may register one, and the served document lists its settings)."""
    return _document(tuple((name, id(job_type)) for name, job_type in REGISTRY.items()))


@functools.lru_cache(maxsize=4)
def _document(job_types: tuple[tuple[str, int], ...]) -> JSON:
    return openapi_document()


def check_response(
    method: str, path: str, status: int, content_type: str, body: bytes | None
) -> None:
    """Raise Drift when the answer is not what the document says this request gets.

    `body` is the raw body of a JSON answer (None for other media types).
    """
    found = find_operation(document(), method, path)
    if found is None:
        if status >= 400:  # no such route or method: still an Error, as every refusal
            _check_body(f"{method} {path}", status, body, {"$ref": "#/components/schemas/Error"})
            return
        raise Drift(f"{method} {path} answered {status}, but the document has no such operation")
    template, op = found
    what = f"{method} {template}"
    response = op["responses"].get(str(status))
    if response is None:
        documented = ", ".join(op["responses"])
        raise Drift(f"{what} answered {status}, which it does not document ({documented})")
    media = response.get("content", {})
    if not media:
        return  # a status without a body (204)
    schema = _media_schema(what, status, media, content_type)
    if schema is not None:
        _check_body(what, status, body, schema)


def find_operation(doc: JSON, method: str, path: str) -> tuple[str, JSON] | None:
    """The documented (path template, operation) a request reaches; literal path
    segments win over parameters, as in the router.

    A request whose path parameters break their schemas (a task id of "abc" or
    "{x}", which the router's default pattern refuses) reaches no operation: the
    router or the handler refuses it, and the answer need only be an Error.
    """
    method = "get" if method.lower() == "head" else method.lower()
    candidates = []
    for template, item in doc["paths"].items():
        match = _template_regex(template).fullmatch(path)
        if method in item and match and _params_fit(match.groupdict(), item[method], doc):
            candidates.append((template.count("{"), template, item[method]))
    if not candidates:
        return None
    _, template, op = min(candidates, key=lambda c: c[0])
    return template, op


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)  # literal, name, literal, name, ...
    return re.compile(
        "".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
    )


def _params_fit(values: dict[str, str], op: JSON, doc: JSON) -> bool:
    schemas = {p["name"]: p["schema"] for p in op.get("parameters", ()) if p["in"] == "path"}
    for name, raw in values.items():
        value: Any = unquote(raw)
        if schemas[name].get("type") == "integer":
            if re.fullmatch(r"-?\d{1,30}", value) is None:
                return False
            value = int(value)
        if list(validate(value, schemas[name], doc)):
            return False
    return True


def _media_schema(what: str, status: int, media: JSON, content_type: str) -> JSON | None:
    """The JSON schema of the answer's media type, or None for a non-JSON body."""
    for documented, entry in media.items():
        if _media_matches(documented, content_type):
            schema: JSON | None = entry.get("schema") if documented.endswith("json") else None
            return schema
    raise Drift(f"{what} answered {status} as {content_type!r}; it documents {', '.join(media)}")


def _media_matches(documented: str, actual: str) -> bool:
    kind, _, sub = documented.partition("/")
    akind, _, asub = actual.partition("/")
    return kind in ("*", akind) and sub in ("*", asub)


def _check_body(what: str, status: int, body: bytes | None, schema: JSON) -> None:
    if body is None:
        raise Drift(f"{what} answered {status} without the JSON body it documents")
    try:
        value = json.loads(body)
    except ValueError as ex:
        raise Drift(f"{what} answered {status} with a body that is not JSON: {ex}") from ex
    problems = list(validate(value, schema, document()))
    if problems:
        listed = "\n  ".join(problems[:10])
        raise Drift(f"{what} answered {status} with a body its schema does not allow:\n  {listed}")


# ----------------------------------------------------------------- the validator
def validate(value: Any, schema: JSON, doc: JSON, where: str = "$") -> Iterator[str]:
    """Each way `value` breaks `schema`, as "where: what" (e.g. "$.tasks[0]: ...")."""
    unknown = set(schema) - CHECKED - ANNOTATIONS
    if unknown:
        raise ValueError(f"the validator does not know {sorted(unknown)} (at {where})")
    if "$ref" in schema:
        yield from _validate_ref(value, schema["$ref"], doc, where)
    if "anyOf" in schema:
        yield from _validate_any_of(value, schema["anyOf"], doc, where)
    if "type" in schema and not _has_type(value, schema["type"]):
        yield f"{where}: {_show(value)} is not of type {schema['type']}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{where}: {_show(value)} is not one of {schema['enum']}"
    if isinstance(value, dict):
        yield from _validate_object(value, schema, doc, where)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from validate(item, schema["items"], doc, f"{where}[{i}]")
    elif isinstance(value, str):
        yield from _validate_text(value, schema, where)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield from _validate_number(value, schema, where)


def _validate_ref(value: Any, ref: str, doc: JSON, where: str) -> Iterator[str]:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r} at {where}")
    name = ref.removeprefix(prefix)
    for problem in validate(value, doc["components"]["schemas"][name], doc, where):
        yield problem if " [in " in problem else f"{problem} [in {name}]"


def _validate_any_of(value: Any, options: list[JSON], doc: JSON, where: str) -> Iterator[str]:
    reasons = []
    for option in options:
        problems = list(validate(value, option, doc, where))
        if not problems:
            return
        reasons.append(problems[0])
    yield f"{where}: matches none of its {len(options)} schemas: " + "; ".join(reasons)


def _validate_object(value: JSON, schema: JSON, doc: JSON, where: str) -> Iterator[str]:
    properties = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            yield f"{where}: required field {name!r} is missing"
    names = schema.get("propertyNames")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        inner = f"{where}.{name}"
        if names is not None:
            yield from validate(name, names, doc, f"{where} key {name!r}")
        if name in properties:
            yield from validate(item, properties[name], doc, inner)
        elif extra is False:
            yield f"{inner}: field {name!r} is not in the schema"
        elif isinstance(extra, dict):
            yield from validate(item, extra, doc, inner)


def _validate_text(value: str, schema: JSON, where: str) -> Iterator[str]:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        yield f"{where}: longer than {schema['maxLength']} characters"
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        yield f"{where}: {_show(value)} does not match {schema['pattern']}"


def _validate_number(value: float, schema: JSON, where: str) -> Iterator[str]:
    if "minimum" in schema and value < schema["minimum"]:
        yield f"{where}: {value} is below the minimum {schema['minimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        yield f"{where}: {value} is above the maximum {schema['maximum']}"


def _has_type(value: Any, kind: str | list[str]) -> bool:
    if isinstance(kind, list):
        return any(_has_type(value, k) for k in kind)
    if kind == "integer":
        exact = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return exact and not isinstance(value, bool)
    if kind == "number":
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return numeric and math.isfinite(value)
    python = {"string": str, "boolean": bool, "null": type(None), "object": dict, "array": list}
    return isinstance(value, python[kind])


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------ the test client
class CheckedClient(TestClient[Any, Any]):
    """An aiohttp test client that checks every API answer against the document.

    A JSON body is read here (aiohttp keeps it, so the test's own `json()` still
    works); other bodies (files, logs, event streams) are left to the test.
    """

    async def _request(self, method: str, path: str | URL, **kwargs: Any) -> ClientResponse:
        resp = await super()._request(method, path, **kwargs)
        url_path = resp.url.raw_path
        if url_path.startswith(API_PREFIX + "/") and not _http_layer_refusal(resp):
            is_json = resp.content_type == "application/json"
            body = await resp.read() if is_json else None
            check_response(method.upper(), url_path, resp.status, resp.content_type, body)
        return resp


def _http_layer_refusal(resp: ClientResponse) -> bool:
    """aiohttp's HTTP parser refuses a malformed request (a request line or header
    over its limits) itself, in plain text, before any route or middleware runs:
    no operation of the API answered it. (The API's own refusals are all JSON.)"""
    return resp.status == 400 and resp.content_type == "text/plain"
