"""The served OpenAPI document describes exactly the routes the app has, and is
generated from the wire models in coordinator/core/models/: both agree."""

from __future__ import annotations

import asyncio
import json
import re
import typing
from pathlib import Path
from typing import Any, NotRequired

import pytest
from aiohttp.test_utils import TestClient

from coordinator.core import models
from coordinator.core.protocol import Assignment, WorkerStatus
from coordinator.server.job_types import REGISTRY
from coordinator.server.openapi import openapi_document
from coordinator.server.openapi.schemas import job_settings_components, settings_name
from coordinator.server.states import JOB_ACTIONS, TASK_ACTIONS, worker_actions
from tests.conftest import (
    API,
    AUTH,
    PUBLIC,
    api_routes,
    app_of,
    claim,
    finish,
    register,
    submit_render,
)
from tests.support.openapi_check import validate

Client = TestClient[Any, Any]
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
async def served(client: Client) -> dict[str, Any]:
    resp = await client.get(f"{API}/openapi.json", headers=AUTH)
    assert resp.status == 200
    document: dict[str, Any] = await resp.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


async def test_lists_exactly_the_apps_routes(client: Client, served: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(served)}
    served_routes = set(api_routes(app_of(client)))
    assert documented - served_routes == set(), "documented but not served"
    assert served_routes - documented == set(), "served but not documented"


async def test_served_document_is_the_module_one(served: dict[str, Any]) -> None:
    assert served == openapi_document()


def test_looks_like_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"farmToken", "workerSecret"}
    for scheme in schemes.values():
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, op in operations(document):
        where = f"{method} {path}"
        assert path.startswith(f"{API}/"), where
        assert op.get("summary"), where
        assert op["responses"], where
        for code, response in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", code), where
            assert response["description"], where
        assert isinstance(op["security"], list), where
        names = {name for requirement in op["security"] for name in requirement}
        assert names <= set(schemes), where
        if (method, path) in PUBLIC:
            assert op["security"] == [], where
        elif path.startswith(f"{API}/worker/"):
            assert names == {"workerSecret"}, where
        else:
            assert names == {"farmToken"}, where
        if (method, path) not in PUBLIC:
            assert "401" in op["responses"], where


def test_path_parameters_are_declared() -> None:
    for method, path, op in operations(openapi_document()):
        in_template = set(re.findall(r"\{(\w+)\}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == in_template, f"{method} {path}"
        for param in op.get("parameters", []):
            assert param["in"] in ("path", "query", "header"), f"{method} {path}"
            assert "schema" in param
            if param["in"] == "path":
                assert param["required"] is True


def test_every_ref_resolves() -> None:
    document = openapi_document()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    all_refs = refs(document)
    assert all_refs
    for ref in all_refs:
        assert ref.startswith("#/")
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part]
        assert isinstance(node, dict)


def test_request_bodies_match_what_the_routes_read() -> None:
    """Bodies are declared where a route needs one (and nowhere else that is GET)."""
    for method, path, op in operations(openapi_document()):
        if method == "GET":
            assert "requestBody" not in op, path
    document = openapi_document()
    for method, path in (
        ("post", f"{API}/jobs"),
        ("post", f"{API}/workers"),
        ("post", f"{API}/files/missing"),
        ("put", f"{API}/files/{{sha256}}"),
        ("put", f"{API}/worker/tasks/{{task_id}}/outputs/{{name}}"),
        ("post", f"{API}/worker/tasks/{{task_id}}/fail"),
    ):
        assert document["paths"][path][method]["requestBody"]["content"], path


# ============================================ the models and the document agree
def _model_classes() -> dict[str, type]:
    return {
        name: value
        for name, value in vars(models).items()
        if typing.is_typeddict(value) and value.__module__.startswith(models.__name__ + ".")
    }


def test_every_model_is_in_the_document_and_every_component_is_a_model() -> None:
    """Both ways: a model no operation uses is dead (or its route undocumented), and
    a component that is not a model was written by hand and drifts."""
    schemas = openapi_document()["components"]["schemas"]
    settings = set(job_settings_components())
    assert set(_model_classes()) - set(schemas) == set(), "models the document leaves out"
    assert set(schemas) - settings - set(_model_classes()) == set(), "components not from a model"


def test_every_model_field_is_described_and_every_model_is_closed() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name in _model_classes():
        schema = schemas[name]
        assert schema["description"], name
        assert schema["additionalProperties"] is False, name
        for field, prop in schema["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"


def test_optional_fields_are_optional_at_runtime() -> None:
    """`from __future__ import annotations` in the models would make Python 3.11 count
    every NotRequired field as required, and the document with it."""
    for name, model in _model_classes().items():
        hints = typing.get_type_hints(model, include_extras=True)
        marked = {f for f, hint in hints.items() if typing.get_origin(hint) is NotRequired}
        assert marked == set(model.__optional_keys__), name


def test_the_models_name_what_the_server_tables_hold() -> None:
    assert set(typing.get_args(models.JobAction)) == set(JOB_ACTIONS)
    assert set(typing.get_args(models.TaskAction)) == set(TASK_ACTIONS)
    assert set(typing.get_args(models.WorkerAction)) == {
        action
        for status in WorkerStatus
        for disabled in (False, True)
        for action in worker_actions(status, disabled=disabled)
    }
    assignment = Assignment(1, 2, "job", "sleep", {}, 1, 5.0)
    assert set(assignment.to_json()) == set(models.Assignment.__annotations__)
    setting_types = typing.get_args(typing.get_type_hints(models.SettingInfo)["type"])
    assert {s.type for jt in REGISTRY.values() for s in jt.schema} <= set(setting_types)


REQUIRED_SETTINGS = {"frames": "1-4", "output": "/tmp/out/frame_####", "samples": 16}


def test_each_job_types_settings_have_a_schema_its_defaults_fit() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    options = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["JobSettings"]["anyOf"]}
    assert options == {settings_name(name) for name in REGISTRY}
    for name, job_type in REGISTRY.items():
        schema = schemas[settings_name(name)]
        assert list(schema["properties"]) == [s.name for s in job_type.schema]
        required = {s.name: REQUIRED_SETTINGS[s.name] for s in job_type.schema if s.required}
        settings = job_type.validate(required)
        assert list(validate(settings, schema, document)) == [], name
        assert list(validate({**settings, "bogus": 1}, schema, document)), name


async def test_the_event_stream_sends_what_the_event_model_says(
    client: Client, tmp_path: Path
) -> None:
    """The stream is not JSON, so the checked client leaves it alone: each event's
    data is checked here against the Event model, for every kind of event."""
    stream = await client.get(f"{API}/events", headers=AUTH)
    assert await stream.content.readline() == b": connected\n"
    worker = await register(client)
    job = await submit_render(client, str(tmp_path / "out" / "frame_####"), frames="1")
    task = await claim(client, worker)
    assert task is not None
    update = {"progress": 0.5, "activity": "rendering", "log": "Fra:1"}
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json=update, headers=worker
    )
    assert resp.status == 200
    resp = await client.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/frame_0001.png?frame=1",
        data=b"png",
        headers=worker,
    )
    assert resp.status == 201
    await finish(client, worker, task["task_id"])
    resp = await client.post(f"{API}/worker/sign-off", headers=worker)
    assert resp.status == 200
    worker_id = worker["X-Worker-Id"]
    assert (await client.delete(f"{API}/workers/{worker_id}", headers=AUTH)).status == 200
    assert (await client.delete(f"{API}/jobs/{job['id']}", headers=AUTH)).status == 200
    events = await _events_until(stream, "job-deleted")
    stream.close()
    assert {e["type"] for e in events} >= {
        "job", "task", "worker", "output", "worker-removed", "job-deleted"
    }  # fmt: skip
    document = openapi_document()
    schema = document["paths"][f"{API}/events"]["get"]["responses"]["200"]["content"]
    event_schema = schema["text/event-stream"]["x-event-data"]
    for event in events:
        assert list(validate(event, event_schema, document)) == [], event


async def _events_until(stream: Any, last: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != last:
        line = await asyncio.wait_for(stream.content.readline(), 5)
        if line.startswith(b"data: "):
            events.append(json.loads(line.removeprefix(b"data: ")))
    return events
