"""Assemble the OpenAPI 3.1 document from the operations table and the models."""

from __future__ import annotations

import typing
from typing import Any

from coordinator.core import models
from coordinator.core.protocol import API_PREFIX, API_VERSION
from coordinator.server.guard import ConnectionLimits
from coordinator.server.openapi.operations import OPERATIONS, Media, Op, Param
from coordinator.server.openapi.schemas import JSON, Components, job_settings_components

# What each refusal means when an operation says nothing more specific.
STATUS_TEXT = {
    400: "bad input; the message says what",
    401: "missing or wrong token",
    404: "not found; the message says what",
    408: "the request did not arrive whole in time",
    409: "the action does not apply in the current state; the message says why",
    413: "the request body is too large",
    507: "the coordinator's disk is full",
}
SECURITY_SCHEMES = {
    "farmToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "the farm token (token.txt in the data dir)",
    },
    "workerSecret": {
        "type": "http",
        "scheme": "bearer",
        "description": "the secret a worker got at registration",
    },
}


def openapi_document() -> JSON:
    components = Components(job_settings_components())
    paths: dict[str, JSON] = {}
    for op in OPERATIONS:
        paths.setdefault(API_PREFIX + op.path, {})[op.method] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LAN render farm coordinator",
            "version": API_VERSION,
            "description": "Jobs, tasks, workers and files of a Blender render farm.\n\n"
            + _limits_text(ConnectionLimits()),
        },
        "paths": paths,
        "components": {"schemas": components.all(), "securitySchemes": SECURITY_SCHEMES},
    }


def _limits_text(limits: ConnectionLimits) -> str:
    """What every connection must keep to, before any token is checked (guard.py)."""
    return (
        "Limits for every client, before any token is checked: at most"
        f" {limits.max_per_address} open connections per address (one more is closed at"
        f" once); a request's head, and a TLS handshake, must arrive whole within"
        f" {limits.header_timeout:g} s; a kept-alive connection unused for"
        f" {limits.idle_timeout:g} s is closed; a request body must average at least"
        f" {limits.body_min_rate >> 10} KiB/s over each {limits.body_window:g} s, else the"
        " answer is 408 and the connection is closed."
    )


def _operation(op: Op, components: Components) -> JSON:
    out: JSON = {"summary": op.summary, "tags": [op.tag]}
    if op.params:
        out["parameters"] = [_parameter(p) for p in op.params]
    if op.body is not None:
        out["requestBody"] = _request_body(op.body, components)
    out["responses"] = _responses(op, components)
    out["security"] = [{op.auth: []}] if op.auth else []
    return out


def _parameter(param: Param) -> JSON:
    return {
        "name": param.name,
        "in": param.where,
        "required": param.where == "path",
        "schema": param.schema,
        "description": param.description,
    }


def _request_body(body: Any, components: Components) -> JSON:
    # An action's body of optional fields (or none at all) may be left out.
    required = not (body is models.NoFields or _all_optional(body))
    return {"required": required, "content": _content(body, components)}


def _all_optional(model: Any) -> bool:
    return isinstance(model, type) and not getattr(model, "__required_keys__", True)


def _content(body: Any, components: Components) -> JSON:
    if isinstance(body, Media):
        extra = {key: _schema_or_model(value, components) for key, value in body.extra}
        return {body.content_type: {"schema": body.schema, **extra}}
    return {"application/json": {"schema": components.of(body)}}


def _schema_or_model(value: Any, components: Components) -> Any:
    return components.of(value) if typing.is_typeddict(value) else value


def _responses(op: Op, components: Components) -> JSON:
    said = dict(op.said)
    success: JSON = {"description": said.pop(op.status, _success_text(op))}
    if op.answer is not None:
        success["content"] = _content(op.answer, components)
    out: JSON = {str(op.status): success}
    error = {"application/json": {"schema": components.of(models.Error)}}
    for status in _refusals(op, said):
        if status < 400:
            out[str(status)] = {"description": said[status]}
        else:
            text = said.get(status, STATUS_TEXT[status])
            out[str(status)] = {"description": text, "content": error}
    return out


def _refusals(op: Op, said: dict[int, str]) -> list[int]:
    """Every status besides the success: 400 where input is read, 401 where a token
    is checked, 413 where a body is read, and what the operation adds."""
    statuses = set(op.errors) | set(said)
    if op.body is not None or any(param.checked for param in op.params):
        statuses.add(400)
    if op.auth is not None:
        statuses.add(401)
    if op.body is not None:
        statuses.add(413)
    return sorted(statuses)


def _success_text(op: Op) -> str:
    answer = op.answer
    if isinstance(answer, Media):
        texts = {"text/event-stream": "an event stream", "text/plain": "the text"}
        return texts.get(answer.content_type, "the file")
    doc = (answer.__doc__ or "").split("\n")[0].strip() if answer is not None else ""
    return doc or "ok"
