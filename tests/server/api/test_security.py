"""Tokens on every route, worker secrets kept apart, and hostile input
refused with a 4xx and a message, never a 500."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.conftest import (
    API,
    AUTH,
    PUBLIC,
    TOKEN,
    api_routes,
    app_of,
    claim,
    concrete,
    register,
    sha,
    submit_sleep,
)

Client = TestClient[Any, Any]


def is_worker_route(path: str) -> bool:
    return path.startswith(f"{API}/worker/")


async def _expect_401(client: Client, method: str, path: str, headers: dict[str, str]) -> None:
    resp = await client.request(method, path, headers=headers, json={})
    assert resp.status == 401, f"{method} {path} with {headers}: {resp.status}"
    body = await resp.json()
    assert isinstance(body["error"], str) and body["error"], f"{method} {path}"


async def test_the_walk_finds_the_routes(client: Client) -> None:
    routes = api_routes(app_of(client))
    assert len(routes) >= 20
    assert ("POST", f"{API}/jobs") in routes
    assert ("POST", f"{API}/worker/task") in routes
    assert set(routes) >= PUBLIC


async def test_every_route_but_health_and_version_needs_a_token(client: Client) -> None:
    for method, template in api_routes(app_of(client)):
        if (method, template) in PUBLIC:
            continue
        path = concrete(template)
        await _expect_401(client, method, path, {})
        await _expect_401(client, method, path, {"Authorization": "Bearer wrong-token"})
        await _expect_401(client, method, path, {"Authorization": f"Basic {TOKEN}"})
        await _expect_401(client, method, path, {"Authorization": "Bearer "})
        await _expect_401(client, method, path, {"Authorization": TOKEN})


async def test_missing_token_message_says_how(client: Client) -> None:
    resp = await client.get(f"{API}/jobs")
    assert "Authorization: Bearer" in (await resp.json())["error"]
    resp = await client.get(f"{API}/jobs", headers={"Authorization": "Bearer x"})
    assert "token.txt" in (await resp.json())["error"]


async def test_health_and_version_are_public(client: Client) -> None:
    for path in ("/health", "/version"):
        resp = await client.get(f"{API}{path}")
        assert resp.status == 200
    assert (await (await client.get(f"{API}/health")).json())["status"] == "ok"
    assert (await (await client.get(f"{API}/version")).json())["api"] == "1"


async def test_worker_routes_take_only_a_worker_secret(client: Client) -> None:
    worker = await register(client)
    worker_routes = [r for r in api_routes(app_of(client)) if is_worker_route(r[1])]
    assert len(worker_routes) >= 6
    for method, template in worker_routes:
        await _expect_401(client, method, concrete(template), AUTH)
    resp = await client.post(f"{API}/worker/task?wait=0", headers=worker)
    assert resp.status == 204


async def test_artist_routes_refuse_a_worker_secret(client: Client) -> None:
    """A worker's secret opens the worker protocol and file downloads, nothing else."""
    worker = await register(client)
    for method, template in api_routes(app_of(client)):
        if (method, template) in PUBLIC or is_worker_route(template):
            continue
        if (method, template) == ("GET", f"{API}/files/{{sha256}}"):
            continue  # workers download job files
        await _expect_401(client, method, concrete(template), worker)


async def test_path_tricks_do_not_skip_the_token(client: Client) -> None:
    for raw in (
        "/api/v1//jobs",
        "/api/v1/./jobs",
        "/api/v1/jobs/",
        "/api/v1/%6Aobs",
        "/api/v1/health/../jobs",
        "/api/v1/health%2F..%2Fjobs",
        "/API/v1/jobs",
        "/api/v1/worker/../jobs",
    ):
        resp = await client.get(URL(raw, encoded=True))
        assert resp.status in (401, 404), f"{raw}: {resp.status}"
        if resp.status == 401:
            assert (await resp.json())["error"]
    # a network-path reference: clients will not send it, so write it by hand
    status, _ = await raw_get(client, "//api/v1/jobs")
    assert status in (401, 404)


async def raw_get(client: Client, target: str) -> tuple[int, bytes]:
    """One HTTP/1.1 GET with the request target exactly as given."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(data.split(b" ", 2)[1]), data


async def test_unknown_api_routes_are_json_errors(client: Client) -> None:
    resp = await client.get(f"{API}/nothing-here", headers=AUTH)
    assert resp.status == 404
    assert "GET /api/v1/nothing-here" in (await resp.json())["error"]
    resp = await client.patch(f"{API}/jobs", headers=AUTH)
    assert resp.status == 405
    assert (await resp.json())["error"]


async def test_one_worker_cannot_touch_another_workers_task(client: Client) -> None:
    owner, intruder = await register(client, "owner"), await register(client, "intruder")
    await submit_sleep(client, count=1)
    task = await claim(client, owner)
    assert task is not None
    task_id = task["task_id"]
    for path, body in (
        ("update", {"progress": 0.9, "log": "pwned"}),
        ("complete", {}),
        ("fail", {"reason": "sabotage"}),
    ):
        resp = await client.post(
            f"{API}/worker/tasks/{task_id}/{path}", json=body, headers=intruder
        )
        assert resp.status in (403, 409), path
        error = (await resp.json())["error"]
        assert "assigned to this worker (active on another worker)" in error
    resp = await client.put(
        f"{API}/worker/tasks/{task_id}/outputs/frame.png", data=b"x", headers=intruder
    )
    assert resp.status in (403, 409)
    resp = await client.get(f"{API}/worker/tasks/{task_id}/control?wait=0", headers=intruder)
    answer = await resp.json()
    assert answer["action"] == "stop"
    assert "another worker" in answer["reason"]
    detail = await (await client.get(f"{API}/tasks/{task_id}", headers=AUTH)).json()
    assert (detail["status"], detail["progress"], detail["failures"]) == ("active", 0, [])
    log = await (await client.get(f"{API}/tasks/{task_id}/log", headers=AUTH)).text()
    assert "pwned" not in log
    resp = await client.get(f"{API}/jobs/{task['job_id']}/outputs", headers=AUTH)
    assert (await resp.json())["outputs"] == []


async def test_secrets_are_not_stored_in_the_clear(client: Client, tmp_path: Any) -> None:
    resp = await client.post(
        f"{API}/workers", headers=AUTH, json={"name": "w", "blender_version": "4.2"}
    )
    secret = (await resp.json())["secret"]
    data = b"".join(p.read_bytes() for p in (tmp_path / "farm").glob("farm.sqlite3*"))
    assert secret.encode() not in data


# ---------------------------------------------------------------- bad input
GARBAGE: list[tuple[str, bytes]] = [
    ("bad JSON", b"{"),
    ("trailing junk", b"{} {}"),
    ("array", b"[]"),
    ("null", b"null"),
    ("number", b"1"),
    ("string", b'"text"'),
    ("bool", b"true"),
    ("unknown field", b'{"unknown_field_xyz": 1}'),
    ("bare NaN", b"NaN"),
    ("NaN value", b'{"priority": NaN, "progress": NaN, "which": NaN, "hashes": [NaN]}'),
    ("Infinity", b'{"progress": Infinity}'),
    ("-Infinity", b"-Infinity"),
    ("huge float", b'{"name": 1e999, "progress": 1e999}'),
    ("huge int", b'{"priority": 1000000000000000000000000000000}'),
    ("5000 digits", b"1" * 5000),
    ("deep nesting", b"[" * 100_000),
    ("deep object", b'{"a":' * 50_000),
    ("not UTF-8", b"\xff\xfe\x00{"),
    ("lone surrogate", b'{"name": "\\ud800", "reason": "\\udfff", "activity": "\\ud800"}'),
    ("surrogate key", b'{"\\ud800": 1}'),
    ("giant string", b'{"name": "' + b"x" * (1 << 20) + b'", "reason": "x"}'),
    ("giant log", b'{"log": "' + b"x" * (1 << 20) + b'"}'),
    ("wrong types", b'{"name": ["x"], "type": {}, "settings": "x", "files": 3, "which": []}'),
    ("nul bytes", b'{"name": "a\\u0000b", "type": "sleep\\u0000"}'),
    (
        "bad worker",
        b'{"name": "w", "blender_version": "99999999999999999999999999999.1", "host": "\\ud800"}',
    ),
    (
        "bad job",
        b'{"name": "\\ud800", "type": "sleep", "priority": -5, "max_attempts": 1e300}',
    ),
    ("bad settings", b'{"name": "j", "type": "sleep", "settings": {"task_count": 1e999}}'),
    ("unknown type", b'{"name": "j", "type": "nope"}'),
    ("surrogate job", b'{"name": "\\ud800", "type": "sleep"}'),
    ("surrogate worker", b'{"name": "\\ud800", "blender_version": "4.2"}'),
    ("surrogate reason", b'{"reason": "\\ud800"}'),
    ("surrogate activity", b'{"activity": "\\udfff"}'),
]


async def _post_targets(client: Client) -> list[tuple[str, dict[str, str]]]:
    """Every POST route, with ids of things that exist and the right credentials."""
    worker = await register(client, "garbage-worker")
    job = await submit_sleep(client, count=3)
    task = await claim(client, worker)
    assert task is not None
    values = {"job_id": str(job["id"]), "task_id": str(task["task_id"])}
    targets = []
    for method, template in api_routes(app_of(client)):
        if method == "POST":
            headers = worker if is_worker_route(template) else AUTH
            targets.append((concrete(template, **values), headers))
    assert len(targets) >= 10
    # Routes that end the worker's hold on its task go last, so that a body one
    # of them wrongly accepts cannot hide what the others do with it.
    enders = ("/complete", "/fail", "/sign-off")
    targets.sort(key=lambda target: target[0].endswith(enders))
    return targets


@pytest.mark.parametrize(("label", "body"), GARBAGE, ids=[g[0] for g in GARBAGE])
async def test_garbage_to_every_post_route_is_a_4xx_with_a_message(
    client: Client, label: str, body: bytes
) -> None:
    for path, headers in await _post_targets(client):
        resp = await client.post(
            path, data=io.BytesIO(body), headers={**headers, "Content-Type": "application/json"}
        )
        assert resp.status < 500, f"{label} to {path}: {resp.status} {await resp.text()}"
        assert resp.status >= 400, f"{label} to {path} was accepted: {await resp.text()}"
        error = await resp.json()
        assert isinstance(error.get("error"), str) and error["error"], f"{label} to {path}"


async def test_a_bogus_charset_is_not_a_500(client: Client) -> None:
    resp = await client.post(
        f"{API}/jobs",
        data=b'{"name": "x", "type": "sleep"}',
        headers={**AUTH, "Content-Type": "application/json; charset=no-such-charset"},
    )
    assert resp.status in (201, 400)


async def test_too_large_a_json_body_is_a_413(client: Client) -> None:
    resp = await client.post(
        f"{API}/jobs",
        data=io.BytesIO(b" " * (17 << 20)),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert (await resp.json())["error"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/tasks/1/log?tail=abc", 400),
        ("/tasks/1/log?tail=" + "9" * 5000, 400),
        ("/jobs?limit=1e3", 400),
        ("/jobs?after=%00", 400),
        ("/jobs?name=%ED%A0%80", 200),
        ("/jobs?name=" + "x" * 5_000, 200),
        ("/jobs?sort=-" + "-" * 1000, 400),
        ("/jobs/1?tasks=%FF", 404),
        ("/files/" + "0" * 64, 404),
    ],
)
async def test_bad_query_values(client: Client, path: str, expected: int) -> None:
    resp = await client.get(URL(f"{API}{path}", encoded=True), headers=AUTH)
    assert resp.status == expected, await resp.text()
    if expected >= 400:
        assert (await resp.json())["error"]


async def test_an_overlong_request_line_is_refused(client: Client) -> None:
    resp = await client.get(f"{API}/jobs?name=" + "x" * 10_000, headers=AUTH)
    assert resp.status == 400  # by aiohttp's parser, before any handler


@pytest.mark.parametrize("wait", ["nan", "inf", "-1", "abc", "1e999", "-inf"])
async def test_bad_waits_are_refused_or_clamped(client: Client, wait: str) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    resp = await client.post(f"{API}/worker/task?wait={wait}", headers=worker)
    assert resp.status in (200, 400), await resp.text()
    if resp.status == 400:
        assert (await resp.json())["error"]


async def test_uploading_a_file_bigger_than_allowed(make_client: Any, tmp_path: Any) -> None:
    from coordinator.server.app import create_app
    from coordinator.server.config import AppConfig, FarmConfig

    del make_client
    config = AppConfig(
        farm=FarmConfig(data_dir=tmp_path / "small", name="t", token=TOKEN, max_upload=1000)
    )
    async with TestClient(_server(create_app(config))) as small:
        data = b"x" * 2000
        resp = await small.put(f"{API}/files/{sha(data)}", data=data, headers=AUTH)
        assert resp.status == 413
        assert "limit" in (await resp.json())["error"]
        assert list((tmp_path / "small" / "tmp").iterdir()) == []


def _server(app: web.Application) -> Any:
    from aiohttp.test_utils import TestServer

    return TestServer(app)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/jobs", {"name": "\ud800", "type": "sleep"}),
        ("/jobs", {"name": "j", "type": "sleep", "submitter": "\udfff"}),
        ("/jobs", {"name": "j", "type": "sleep", "files": {"\ud800.blend": "0" * 64}}),
        ("/workers", {"name": "\ud800", "blender_version": "4.2"}),
        ("/workers", {"name": "w", "blender_version": "4.2", "devices": ["\ud800"]}),
        ("/worker/tasks/{task_id}/fail", {"reason": "\ud800"}),
        ("/worker/tasks/{task_id}/update", {"activity": "\ud800"}),
        ("/worker/tasks/{task_id}/update", {"log": "\ud800"}),
    ],
)
async def test_text_that_cannot_be_stored_is_refused(
    client: Client, route: str, body: dict[str, Any]
) -> None:
    """Lone surrogates parse as JSON but cannot be written to SQLite as UTF-8:
    they used to be a 500 wherever a string reached the database."""
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    path = f"{API}{route}".replace("{task_id}", str(task["task_id"]))
    headers = worker if route.startswith("/worker/") else AUTH
    resp = await client.post(path, json=body, headers=headers)
    assert resp.status == 400, await resp.text()
    assert "Unicode" in (await resp.json())["error"]
