"""A frame list's cost is bounded before it is expanded: the coordinator answers
a costly one at once, with a message that says what to type instead."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import API, AUTH, register, upload_blob

Client = TestClient[Any, Any]


async def submit(client: Client, frames: str, **settings: Any) -> tuple[Any, float]:
    blend = await upload_blob(client, b"BLENDER-v304 not really a blend")
    body = {
        "name": "shot",
        "type": "blender-render",
        "blend": "shot.blend",
        "files": {"shot.blend": blend},
        "settings": {"frames": frames, "output": "/srv/out/f_####", **settings},
    }
    started = time.perf_counter()
    resp = await client.post(f"{API}/jobs", json=body, headers=AUTH)
    return resp, time.perf_counter() - started


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (",".join(["1-1000000"] * 40), "has more than 1,000,000 frames (counting repeats)"),
        ("1-1000000", "this job would have 250000 tasks; the limit is 100000"),
        (",".join(["7"] * 10_001), "text is too long"),  # the setting allows 4,096 characters
    ],
)
async def test_a_costly_frame_list_is_refused_at_once(
    client: Client, frames: str, message: str
) -> None:
    resp, took = await submit(client, frames)
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    assert took < 0.5  # was 4.3 s for the forty ranges; the refusal itself takes microseconds


async def test_the_forty_ranges_do_not_hold_up_a_worker(client: Client) -> None:
    """The refusal costs less than a tenth of a second of the event loop."""
    worker = await register(client)
    resp, took = await submit(client, ",".join(["1-1000000"] * 40))
    assert resp.status == 400 and took < 0.1
    started = time.perf_counter()
    resp = await client.post(f"{API}/worker/task?wait=0", headers=worker)
    assert resp.status == 204 and time.perf_counter() - started < 0.1
