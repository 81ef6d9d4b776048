"""Pools and capabilities: a job's requires_tags and needs against a worker's tags,
devices and capabilities, on the API (real SQLite, real HTTP client)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.server import pools
from tests.conftest import API, AUTH, claim, get_job, submit_sleep

Client = TestClient[Any, Any]


async def _register(client: Client, name: str, **extra: Any) -> dict[str, str]:
    resp = await client.post(
        f"{API}/workers", json={"name": name, "blender_version": "4.2.0", **extra}, headers=AUTH
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return {"Authorization": f"Bearer {body['secret']}", "X-Worker-Id": body["worker_id"]}


async def test_a_job_requiring_a_tag_waits_for_a_tagged_worker(client: Client) -> None:
    plain = await _register(client, "plain")
    job = await submit_sleep(client, count=1, requires_tags=["gpu"])
    assert job["requires_tags"] == ["gpu"]
    assert await claim(client, plain) is None
    waiting = await get_job(client, job["id"])
    assert waiting["warning"].startswith("no online worker with tag gpu"), waiting["warning"]
    resp = await client.put(
        f"{API}/workers/{plain['X-Worker-Id']}/tags", json={"tags": ["gpu", "fast"]}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["tags"] == ["gpu", "fast"]
    assert (await get_job(client, job["id"]))["warning"] == ""
    task = await claim(client, plain)
    assert task is not None and task["job_id"] == job["id"]


async def test_untagged_jobs_still_go_to_tagged_workers(client: Client) -> None:
    tagged = await _register(client, "tagged", tags=["gpu"])
    job = await submit_sleep(client, count=1)
    task = await claim(client, tagged)
    assert task is not None and task["job_id"] == job["id"]


async def test_needs_are_matched_to_what_workers_report(client: Client) -> None:
    cpu = await _register(client, "cpu", devices=["CPU"], capabilities={"engines": ["CYCLES"]})
    job = await submit_sleep(client, count=1, needs={"device": "gpu", "engine": "CYCLES"})
    assert job["needs"] == {"device": "GPU", "engine": "CYCLES"}
    assert await claim(client, cpu) is None
    assert (await get_job(client, job["id"]))["warning"].startswith(
        "no online worker with device GPU"
    )
    gpu = await _register(
        client,
        "gpu",
        devices=["CPU", "OPTIX"],
        capabilities={"engines": ["CYCLES", "BLENDER_EEVEE"], "memory_mb": 65536, "os": "linux"},
    )
    task = await claim(client, gpu)
    assert task is not None and task["job_id"] == job["id"]
    resp = await client.get(f"{API}/workers/{gpu['X-Worker-Id']}", headers=AUTH)
    assert (await resp.json())["capabilities"]["memory_mb"] == 65536


async def test_submitted_paused_nothing_starts_until_resumed(client: Client) -> None:
    worker = await _register(client, "w")
    job = await submit_sleep(client, count=1, paused=True)
    assert job["status"] == "paused"
    assert await claim(client, worker) is None
    resp = await client.get(f"{API}/jobs/{job['id']}", headers=AUTH)
    assert (await resp.json())["warning"] == (
        f"the job is paused: its queued tasks start when it is resumed (lanfarm resume"
        f" {job['id']}, or Resume in the add-on or the dashboard)"
    )
    resp = await client.post(f"{API}/jobs/{job['id']}/resume", headers=AUTH)
    assert resp.status == 200, await resp.text()
    resp = await client.get(f"{API}/jobs/{job['id']}", headers=AUTH)
    assert "paused" not in (await resp.json()).get("warning", "")
    assert await claim(client, worker) is not None


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"requires_tags": ["gpu", "no spaces"]}, "requires_tags", "'no spaces' is not a tag"),
        ({"requires_tags": "gpu"}, None, None),  # a comma-separated text is fine
        ({"needs": {"colour": "red"}}, "needs", "unknown 'colour'"),
        ({"needs": {"device": "CU DA"}}, "needs", "GPU, CUDA, OPTIX or CPU"),
        ({"needs": ["GPU"]}, "needs", "must be an object"),
        ({"needs": {"memory_mb": "16G"}}, "needs", "whole number of MiB"),
        ({"needs": {"memory_mb": -1}}, "needs", "whole number of MiB"),
        ({"needs": {"os": "Linux 6"}}, "needs", "linux, windows or darwin"),
        ({"needs": {"os": 7}}, "needs", "linux, windows or darwin"),
    ],
)
async def test_bad_requirements_are_refused_saying_why(
    client: Client, body: dict[str, Any], field: str | None, says: str | None
) -> None:
    resp = await client.post(
        f"{API}/jobs",
        json={"name": "x", "type": "sleep", "settings": {"task_count": 1}, **body},
        headers=AUTH,
    )
    if field is None:
        assert resp.status == 201, await resp.text()
        return
    assert resp.status == 400
    error = await resp.json()
    assert error["field"] == field and says in error["error"], error


async def test_bad_worker_tags_and_capabilities_are_refused(client: Client) -> None:
    worker = await _register(client, "w")
    resp = await client.put(
        f"{API}/workers/{worker['X-Worker-Id']}/tags", json={"tags": ["-x"]}, headers=AUTH
    )
    assert resp.status == 400 and "'-x' is not a tag" in (await resp.json())["error"]
    resp = await client.put(f"{API}/workers/nobody/tags", json={"tags": []}, headers=AUTH)
    assert resp.status == 404
    resp = await client.post(
        f"{API}/workers",
        json={"name": "x", "blender_version": "4.2.0", "capabilities": {"memory_mb": "lots"}},
        headers=AUTH,
    )
    assert resp.status == 400 and "memory_mb" in (await resp.json())["error"]


def test_unmet_names_the_first_missing_requirement() -> None:
    need = pools.requirements(["gpu"], {"engine": "CYCLES"})
    cycles = pools.offers([], ["CPU"], {"engines": ["CYCLES"]})
    tagged = pools.offers(["gpu"], ["CPU"], {})
    assert pools.unmet(need, [cycles]) == "no online worker with tag gpu"
    assert pools.unmet(need, [cycles, tagged]) == (
        "no online worker has all of engine CYCLES, tag gpu"
    )
    assert pools.unmet(need, [pools.offers(["gpu"], [], {"engines": ["CYCLES"]})]) == ""
    assert "device:GPU" in pools.offers([], ["CPU", "HIP"], {})
    assert "device:GPU" not in pools.offers([], ["CPU"], {})


async def test_memory_and_os_needs_wait_for_a_worker_that_has_them(client: Client) -> None:
    small = await _register(client, "small", capabilities={"memory_mb": 8000, "os": "linux"})
    job = await submit_sleep(client, count=1, needs={"memory_mb": 16384, "os": "Linux"})
    assert job["needs"] == {"memory_mb": 16384, "os": "linux"}
    assert await claim(client, small) is None
    waiting = await get_job(client, job["id"])
    assert waiting["warning"].startswith("no online worker with 16 GiB memory"), waiting
    # A 16 GiB Mac: memory enough (its OS counts 15.5 GiB), the wrong OS.
    mac = await _register(client, "mac", capabilities={"memory_mb": 15872, "os": "darwin"})
    assert await claim(client, mac) is None
    assert (await get_job(client, job["id"]))["warning"].startswith(
        "no online worker has all of 16 GiB memory, OS linux"
    )
    box = await _register(client, "box", capabilities={"memory_mb": 15872, "os": "linux"})
    task = await claim(client, box)
    assert task is not None and task["job_id"] == job["id"]


async def test_a_worker_that_reported_no_memory_meets_no_memory_need(client: Client) -> None:
    unknown = await _register(client, "unknown")  # an agent that could not tell
    job = await submit_sleep(client, count=1, needs={"memory_mb": 512, "os": "macos"})
    assert job["needs"] == {"memory_mb": 512, "os": "darwin"}
    assert await claim(client, unknown) is None
    assert "512 MiB memory" in (await get_job(client, job["id"]))["warning"]


def test_memory_is_met_with_the_slack_an_os_keeps() -> None:
    need = pools.requirements([], {"memory_mb": 16384})
    assert pools.meets(need, pools.offers([], [], {"memory_mb": 15500}))
    assert pools.meets(need, pools.offers([], [], {"memory_mb": 65536}))
    assert not pools.meets(need, pools.offers([], [], {"memory_mb": 12288}))
    assert not pools.meets(need, pools.offers([], [], {}))
    both = pools.requirements(["gpu"], {"memory_mb": 1024, "os": "linux"})
    assert pools.meets(both, pools.offers(["gpu"], [], {"memory_mb": 2048, "os": "linux"}))
    assert not pools.meets(both, pools.offers([], [], {"memory_mb": 2048, "os": "linux"}))
    assert pools.describe("memory:1536") == "1.5 GiB memory"


async def test_a_worker_reports_what_it_can_do_now(client: Client) -> None:
    worker = await _register(client, "w", devices=["CPU"], capabilities={"memory_mb": 8192})
    job = await submit_sleep(client, count=1, needs={"device": "GPU"})
    assert await claim(client, worker) is None
    report = {"blender_version": "5.0.1", "devices": ["CPU", "HIP"]}
    now = {**report, "capabilities": {"memory_mb": 32768}}
    resp = await client.post(f"{API}/worker/report", json=now, headers=worker)
    assert resp.status == 200, await resp.text()
    shown = await (await client.get(f"{API}/workers/{worker['X-Worker-Id']}", headers=AUTH)).json()
    assert (shown["blender_version"], shown["devices"]) == ("5.0.1", ["CPU", "HIP"])
    assert shown["capabilities"] == {"memory_mb": 32768}
    task = await claim(client, worker)
    assert task is not None and task["job_id"] == job["id"]
    for bad, says in (
        ({"devices": ["CPU"]}, "blender_version"),
        ({**report, "capabilities": {"memory_mb": -1}}, "memory_mb"),
        ({**report, "capabilities": {"cores": 8}}, "unknown 'cores'"),
        ({**report, "blender_version": "five"}, "blender_version"),
    ):
        resp = await client.post(f"{API}/worker/report", json=bad, headers=worker)
        assert resp.status == 400 and says in (await resp.json())["error"], bad
