"""Small helpers shared by the API modules."""

from __future__ import annotations

from aiohttp import web

from coordinator.errors import BadRequest


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


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number, not {text!r}", field=name) from None
    return max(lo, min(hi, value))


def query_float(request: web.Request, name: str, default: float, lo: float, hi: float) -> float:
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
