"""The response checker that every API test's client runs: it must catch drift,
say where, and know every keyword the document uses."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.server.openapi import openapi_document
from tests.conftest import API, AUTH, submit_sleep
from tests.support import openapi_check
from tests.support.openapi_check import (
    ANNOTATIONS,
    CHECKED,
    CheckedClient,
    Drift,
    check_response,
    find_operation,
    validate,
)

Client = TestClient[Any, Any]
JOB = f"{API}/jobs/{{job_id}}"


def _job() -> dict[str, Any]:
    return {
        "id": 1,
        "name": "shot",
        "type": "sleep",
        "priority": 50,
        "status": "queued",
        "status_reason": "",
        "settings": {"task_count": 1, "seconds": 0.0},
        "blend": None,
        "blender_version": None,
        "submitter": "",
        "origin": "",
        "requires_tags": [],
        "needs": {},
        "deliver": True,
        "max_attempts": 3,
        "generation": 1,
        "created_at": 1.0,
        "updated_at": 1.0,
        "task_counts": {"queued": 1},
        "progress": 0.0,
        "eta_seconds": None,
        "frame_seconds": None,
        "warning": "",
        "blocklist": [],
        "actions": ["cancel", "delete"],
    }


def _check(status: int, body: Any, *, path: str = f"{API}/jobs/1", method: str = "GET") -> None:
    check_response(method, path, status, "application/json", json.dumps(body).encode())


def test_a_faithful_answer_passes() -> None:
    _check(200, _job())
    _check(200, {**_job(), "tasks": [], "report": {"samples": 4}})


def test_an_undocumented_field_is_named_with_its_model_operation_and_status() -> None:
    with pytest.raises(Drift) as caught:
        _check(200, {**_job(), "surprise": 1})
    message = str(caught.value)
    assert f"GET {JOB} answered 200" in message
    assert "$.surprise: field 'surprise' is not in the schema [in JobDetail]" in message


def test_a_missing_or_mistyped_field_is_named() -> None:
    job = _job()
    del job["blend"]
    with pytest.raises(Drift, match=r"\$: required field 'blend' is missing"):
        _check(200, job)
    with pytest.raises(Drift, match=r"\$\.priority: \"high\" is not of type integer"):
        _check(200, {**_job(), "priority": "high"})
    with pytest.raises(Drift, match=r"\$\.status: \"lost\" is not one of"):
        _check(200, {**_job(), "status": "lost"})
    with pytest.raises(Drift, match=r"\$\.task_counts key 'lost'"):
        _check(200, {**_job(), "task_counts": {"lost": 1}})


def test_nested_models_name_the_inner_one() -> None:
    task = {"id": 1, "job_id": 1, "name": "t"}  # far from a Task
    with pytest.raises(
        Drift, match=r"\$\.tasks\[0\]: required field 'index' is missing \[in Task\]"
    ):
        _check(200, {**_job(), "tasks": [task]})


def test_an_undocumented_status_or_media_type_fails() -> None:
    with pytest.raises(Drift, match=f"GET {JOB} answered 418, which it does not document"):
        _check(418, {"error": "teapot"})
    with pytest.raises(Drift, match="answered 200 as 'text/html'"):
        check_response("GET", f"{API}/jobs/1", 200, "text/html", None)


def test_refusals_must_be_errors() -> None:
    _check(404, {"error": "there is no job 1"})
    with pytest.raises(Drift, match="required field 'error' is missing"):
        _check(404, {"message": "there is no job 1"})


def test_requests_no_operation_serves() -> None:
    """A refusal of an unknown route or method is still an Error; a success is not
    possible without a documented operation."""
    _check(405, {"error": "Method Not Allowed"}, path=f"{API}/jobs", method="PATCH")
    with pytest.raises(Drift, match="no such operation"):
        _check(200, {}, path=f"{API}/nowhere")


def test_literal_segments_win_over_parameters() -> None:
    found = find_operation(openapi_document(), "POST", f"{API}/files/missing")
    assert found is not None and found[0] == f"{API}/files/missing"
    found = find_operation(openapi_document(), "PUT", f"{API}/files/{'0' * 64}")
    assert found is not None and found[0] == f"{API}/files/{{sha256}}"


def test_a_path_parameter_that_breaks_its_schema_reaches_no_operation() -> None:
    """The router or the handler refuses it before the operation runs: any Error."""
    document = openapi_document()
    assert find_operation(document, "GET", f"{API}/tasks/abc") is None
    assert find_operation(document, "GET", f"{API}/tasks/0/log") is None
    assert find_operation(document, "GET", f"{API}/files/{'x' * 64}") is None
    _check(404, {"error": "Not Found"}, path=f"{API}/tasks/%7Bx%7D/log")
    found = find_operation(document, "GET", f"{API}/jobs/1/outputs/%7Bshot%7D%20A.png")
    assert found is not None and found[0] == f"{JOB}/outputs/{{name}}"


def test_the_validator_knows_every_keyword_the_document_uses() -> None:
    document = openapi_document()
    used: set[str] = set()
    for schema in document["components"]["schemas"].values():
        used |= _keywords(schema)
    assert used <= CHECKED | ANNOTATIONS, used - CHECKED - ANNOTATIONS
    with pytest.raises(ValueError, match="does not know"):
        list(validate(1, {"oneOf": [{"type": "integer"}]}, document))


def _keywords(schema: dict[str, Any]) -> set[str]:
    found = set(schema)
    children = [*schema.get("properties", {}).values(), *schema.get("anyOf", ())]
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(key), dict):
            children.append(schema[key])
    for child in children:
        found |= _keywords(child)
    return found


async def test_every_test_client_checks_what_it_receives(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixtures hand out checking clients: a document that forgot a field the
    server sends fails the request that received it."""
    assert isinstance(client, CheckedClient)
    await submit_sleep(client)
    forgetful = copy.deepcopy(openapi_document())
    del forgetful["components"]["schemas"]["Job"]["properties"]["submitter"]
    monkeypatch.setattr(openapi_check, "document", lambda: forgetful)
    with pytest.raises(Drift, match=r"\$\.jobs\[0\]\.submitter: field 'submitter'"):
        await client.get(f"{API}/jobs", headers=AUTH)
