"""fail_task's job_fault against a coordinator that knows the field and one that
does not (it refuses unknown fields with 400, as coordinators before the field
did): the report always arrives, with the flag where it is understood."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from aiohttp import web

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.protocol import API_PREFIX
from tests.support.threaded_app import served_in_thread

KNOWN = {"reason", "log", "job_fault"}
BEFORE_THE_FIELD = {"reason", "log"}


def coordinator(allowed: set[str], bodies: list[dict[str, Any]]) -> web.Application:
    """The fail route only, refusing fields it does not know as the real one does."""

    async def fail(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        unknown = set(body) - allowed
        if unknown:
            error = f"unknown field(s): {', '.join(sorted(unknown))}"
            return web.json_response({"error": error}, status=400)
        return web.json_response({"task_status": "failed" if body.get("job_fault") else "queued"})

    app = web.Application()
    app.router.add_post(f"{API_PREFIX}/worker/tasks/{{task_id}}/fail", fail)
    return app


@pytest.fixture
def served() -> Iterator[Any]:
    """serve(allowed) -> (a client of such a coordinator, the bodies it received)."""
    with ExitStack() as stack:

        def serve(allowed: set[str]) -> tuple[FarmClient, list[dict[str, Any]]]:
            bodies: list[dict[str, Any]] = []
            url = stack.enter_context(served_in_thread(coordinator(allowed, bodies), "farm"))
            return FarmClient(url, token="secret"), bodies

        yield serve


def test_the_flag_goes_to_a_coordinator_that_knows_it(served: Any) -> None:
    client, bodies = served(KNOWN)
    assert client.fail_task(7, reason="missing", job_fault=True) == {"task_status": "failed"}
    assert bodies == [{"reason": "missing", "log": "", "job_fault": True}]


def test_an_older_coordinator_gets_the_plain_report(served: Any) -> None:
    client, bodies = served(BEFORE_THE_FIELD)
    assert client.fail_task(7, reason="missing", job_fault=True) == {"task_status": "queued"}
    assert bodies == [
        {"reason": "missing", "log": "", "job_fault": True},
        {"reason": "missing", "log": ""},
    ]


def test_a_plain_report_carries_no_flag(served: Any) -> None:
    client, bodies = served(BEFORE_THE_FIELD)
    assert client.fail_task(7, reason="GPU lost") == {"task_status": "queued"}
    assert bodies == [{"reason": "GPU lost", "log": ""}]


def test_another_refusal_is_not_retried(served: Any) -> None:
    client, bodies = served({"reason", "job_fault"})  # a refusal not about job_fault
    with pytest.raises(FarmClientError) as raised:
        client.fail_task(7, reason="missing", job_fault=True)
    assert raised.value.status == 400
    assert len(bodies) == 1
