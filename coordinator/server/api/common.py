"""Request parsing shared by the API modules: bodies, path ids and query values.

Services take typed arguments; everything that reads a raw request lives here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from aiohttp import web

from coordinator.core.protocol import parse_blender_version
from coordinator.server.errors import BadRequest, TooLarge
from coordinator.server.job_types.schema import JSON, Setting, SettingsError, validate


def int_param(request: web.Request, name: str) -> int:
    """A numeric id from the URL; a 404-worthy value is still a clear 400."""
    text = request.match_info[name]
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number, not {text!r}", field=name) from None
    if not 0 < value < 2**63:
        raise BadRequest(f"'{name}' {value} is out of range", field=name)
    return value


def query_int(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """A whole number from the query string, `default` when absent.

    Out of range is refused, not clamped: a page of 500 jobs for
    ?limit=1000 would read as "there are only 500", and a 400 that names
    the range says what to send instead.
    """
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number, not {text!r}", field=name) from None
    if not lo <= value <= hi:
        raise BadRequest(f"'{name}' must be between {lo} and {hi}", field=name)
    return value


def joined_query(request: web.Request) -> dict[str, str]:
    """The query with repeated parameters joined by commas: "?status=a&status=b"
    means "?status=a,b" (reading only the first dropped the rest silently)."""
    return {key: ",".join(request.query.getall(key)) for key in request.query}


def query_float(request: web.Request, name: str, default: float, lo: float, hi: float) -> float:
    """A number from the query string, held to [lo, hi]. Used for long-poll
    waits, where the server bounds how long it holds a request whatever the
    client asks (a worker started with a longer --poll-wait still works)."""
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"'{name}' must be a number, not {text!r}", field=name) from None
    if value != value:  # NaN
        raise BadRequest(f"'{name}' must be a number", field=name)
    return max(lo, min(hi, value))


MAX_JSON = 16 << 20  # bytes of a JSON request body


async def read_json(request: web.Request) -> object:
    """The request's JSON body, or a 400 that says what is wrong with it.

    Strict where json.loads is lenient, because every value may end up in
    SQLite or a file name: no NaN/Infinity (nor 1e999, which parses as inf),
    no lone surrogates ("\\ud800" cannot be stored as UTF-8), and no nesting
    deep enough to exhaust the parser. Surrogates, deep nesting and integers
    of over 4300 digits used to be 500s; NaN is refused here so that no field
    check has to remember it.
    """
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise TooLarge(f"request body is too large for JSON (limit {MAX_JSON >> 20} MiB)")
    raw = await request.read()  # aiohttp refuses more than client_max_size with a 413
    try:
        # JSON is UTF-8 (RFC 8259); a bogus charset in Content-Type used to be a 500.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise BadRequest("request body is not UTF-8 text") from ex
    if not text.strip():
        return {}
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as ex:
        raise BadRequest(
            f"request body is not valid JSON: {ex.msg} at line {ex.lineno} column {ex.colno}"
        ) from ex
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    except ValueError as ex:  # from the hooks below, or an integer of over 4300 digits
        raise BadRequest(f"request body is not acceptable JSON: {ex}") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "request body has text that is not valid Unicode (a lone surrogate escape like \\ud800)"
        ) from None
    return value


async def read_object(request: web.Request, *, allowed: Collection[str] = ()) -> dict[str, Any]:
    """A body that must be empty or a JSON object with only `allowed` fields.

    For actions that take few or no fields, so that garbage is refused rather
    than ignored.
    """
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object (or empty)")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        takes = f"it takes {', '.join(sorted(allowed))}" if allowed else "it takes no fields"
        raise BadRequest(f"unknown field(s) {', '.join(unknown)} for this request; {takes}")
    return body


def validate_body(schema: tuple[Setting, ...], body: Any, *, extra: Iterable[str] = ()) -> JSON:
    """Validate a request body: plain fields by schema, `extra` ones left to the caller."""
    if not isinstance(body, Mapping):
        raise BadRequest("the request body must be a JSON object")
    extra = set(extra)
    plain = {k: v for k, v in body.items() if k not in extra}
    try:
        out = validate(schema, plain)
    except SettingsError as ex:
        # every bad field is named (validate() collects them all), so rename each
        raise BadRequest(str(ex).replace("setting '", "field '"), field=ex.field) from ex
    out.update({k: body[k] for k in extra if k in body})
    return out


def check_blender_version(text: str) -> str:
    """A `Setting` check for a Blender version field ("4.2", "3.4.1")."""
    major, minor = parse_blender_version(text)
    # Stored as major*1000+minor in an SQLite integer: "99999999999999999999.1"
    # used to overflow it (a 500), and "4.2000" would rank above 5.0.
    if not (0 <= major <= 999 and 0 <= minor <= 999):
        raise ValueError(f"not a Blender version: {text!r} (expected e.g. '4.2' or '3.4.1')")
    return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value
