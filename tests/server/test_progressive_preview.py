"""A progressive job's preview video: its task in the graph, its setting, and on the
coordinator (made from the last merges' frames, served, made again by a regenerate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.core.protocol import TaskSpec
from coordinator.server.job_types import REGISTRY, SettingsError
from coordinator.server.job_types.preview import MAX_FRAMES, PREVIEW_NAME
from tests.conftest import API, AUTH, claim, finish, get_job, register, sha, submit_progressive

Client = TestClient[Any, Any]
PROGRESSIVE = REGISTRY["blender-render-progressive"]
WEBM = b"\x1aE\xdf\xa3 not really a webm"


def compile_job(**settings: Any) -> list[TaskSpec]:
    base = {"frames": "1-3", "samples": 12, "chunks": 3, "output": "/r/shot/f_####"}
    return PROGRESSIVE.compile(PROGRESSIVE.validate({**base, **settings}))


# ------------------------------------------------------------------ job type
def test_a_sequence_ends_with_a_preview_of_what_the_last_merges_write() -> None:
    tasks = compile_job(frames_per_task=2, file_format="JPEG", scene="Shot")
    *work, preview = tasks
    assert preview.kind == "preview" and preview.name == "preview video"
    last_merges = [
        i for i, t in enumerate(work) if t.kind == "merge" and t.payload["sample_end"] == 12
    ]
    assert [work[i].frames for i in last_merges] == [(1, 2), (3,)]
    assert preview.depends_on == tuple(last_merges)  # every frame's final version
    assert preview.frames == ()  # names no frames: a regenerate makes it again
    assert preview.payload == {
        "scene": "Shot",
        "output_name": "f_####",  # the finished frames' name, not the chunks'
        "file_format": "JPEG",
        "use_file_extension": True,
        "source_frames": [1, 2, 3],
        "preview_name": PREVIEW_NAME,
        "max_width": 640,
        "intermediate_outputs": [PREVIEW_NAME],  # never delivered
    }
    assert preview.priority < min(t.priority for t in work)


def test_one_chunk_previews_the_finishing_merges() -> None:
    tasks = compile_job(chunks=1)
    assert [t.kind for t in tasks] == ["render"] * 3 + ["merge"] * 3 + ["preview"]
    assert tasks[-1].depends_on == (3, 4, 5)


def test_a_long_sequence_previews_evenly_spaced_frames() -> None:
    tasks = compile_job(frames="1-1000", chunks=1, frames_per_task=100)
    frames = tasks[-1].payload["source_frames"]
    assert len(frames) == MAX_FRAMES and frames[0] == 1 and frames[-1] == 1000


@pytest.mark.parametrize(
    ("settings", "kinds"),
    [
        ({"frames": "7"}, {"render", "merge"}),  # a still shows best as itself
        ({"frames": "7,7"}, {"render", "merge"}),  # the same frame twice is still one
        ({"preview": False}, {"render", "merge"}),
        ({"preview": "false"}, {"render", "merge"}),  # as the CLI's --set preview=false
        ({"preview": None}, {"render", "merge", "preview"}),  # unset: the default, on
        ({}, {"render", "merge", "preview"}),
    ],
)
def test_which_jobs_get_a_preview(settings: dict[str, Any], kinds: set[str]) -> None:
    tasks = compile_job(**settings)
    assert {t.kind for t in tasks} == kinds
    assert [t.kind for t in tasks].count("preview") <= 1


def test_the_setting_is_described_and_checked() -> None:
    described = {s["name"]: s for s in PROGRESSIVE.describe()["settings"]}
    preview = described["preview"]
    assert (preview["type"], preview["default"]) == ("bool", True)
    assert "more than one frame" in preview["description"]
    with pytest.raises(SettingsError) as info:
        compile_job(preview="sometimes")
    assert info.value.field == "preview", str(info.value)


# -------------------------------------------------------- on the coordinator
async def submit(client: Client, out: Path, **settings: Any) -> dict[str, Any]:
    """Two frames, 4 samples in 2 chunks, both frames in each render task."""
    return await submit_progressive(
        client, out, frames="1-2", samples=4, frames_per_task=2, **settings
    )


async def put(client: Client, worker: dict[str, str], task_id: int, name: str, data: bytes) -> None:
    resp = await client.put(
        f"{API}/worker/tasks/{task_id}/outputs/{name}?sha256={sha(data)}", data=data, headers=worker
    )
    assert resp.status in (200, 201), await resp.text()


async def run_until_preview(client: Client, worker: dict[str, str]) -> dict[str, Any]:
    """Play the worker for the chunks and merges, uploading what each writes; returns
    the preview task, which must come after all of them."""
    while (task := await claim(client, worker)) is not None and task["kind"] != "preview":
        payload = task["payload"]
        names = list(payload["intermediate_outputs"])
        if task["kind"] == "merge":
            names += [f"frame_{m['frame']:04d}.png" for m in payload["merges"]]
        for name in names:
            await put(client, worker, task["task_id"], name, f"{name} {task['task_id']}".encode())
        await finish(client, worker, task["task_id"])
    assert task is not None, "no preview task came"
    return task


async def test_the_preview_comes_after_the_last_merges_and_is_served(
    client: Client, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = await submit(client, out)
    worker = await register(client)
    preview = await run_until_preview(client, worker)
    assert preview["payload"]["source_frames"] == [1, 2]
    # Its inputs: the finished frames as the last merge wrote them (and its merged EXRs).
    last_merge = next(
        t["id"]
        for t in (await get_job(client, job["id"]))["tasks"]
        if t["name"] == "frames 1-2 merge samples 1-4"
    )
    assert preview["inputs"]["frame_0001.png"] == sha(f"frame_0001.png {last_merge}".encode())
    assert sorted(preview["inputs"]) == [
        "frame_0001.png",
        "frame_0001.s0000-0004.exr",
        "frame_0002.png",
        "frame_0002.s0000-0004.exr",
    ]
    resp = await client.get(f"{API}/jobs/{job['id']}/preview", headers=AUTH)
    assert resp.status == 404  # not made yet
    await put(client, worker, preview["task_id"], PREVIEW_NAME, WEBM)
    await finish(client, worker, preview["task_id"])

    assert (await get_job(client, job["id"]))["status"] == "completed"
    resp = await client.get(f"{API}/jobs/{job['id']}/preview", headers=AUTH)
    assert resp.status == 200 and resp.headers["Content-Type"] == "video/webm"
    assert await resp.read() == WEBM
    assert sorted(p.name for p in out.iterdir()) == ["frame_0001.png", "frame_0002.png"]


async def test_a_regenerate_keeps_the_frames_and_makes_the_preview_again(
    client: Client, tmp_path: Path
) -> None:
    job = await submit(client, tmp_path / "out")
    worker = await register(client)
    preview = await run_until_preview(client, worker)
    await put(client, worker, preview["task_id"], PREVIEW_NAME, WEBM)
    await finish(client, worker, preview["task_id"])

    resp = await client.post(
        f"{API}/jobs/{job['id']}/regenerate", json={"settings": {}}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    after = await resp.json()
    assert after["regenerated"] == {"tasks": 5, "kept": 4, "stopped": 0}  # all but the preview
    again = await claim(client, worker)
    assert again is not None and again["kind"] == "preview"
    # The kept last merge hands its frames on: the new preview finds them.
    assert {"frame_0001.png", "frame_0002.png"} <= set(again["inputs"])
    await finish(client, worker, again["task_id"])  # made nothing: the job still completes
    assert (await get_job(client, job["id"]))["status"] == "completed"
    resp = await client.get(f"{API}/jobs/{job['id']}/preview", headers=AUTH)
    assert resp.status == 200  # the earlier preview stays until a new one replaces it


async def test_turning_the_preview_off_by_regenerating_drops_its_task(
    client: Client, tmp_path: Path
) -> None:
    job = await submit(client, tmp_path / "out")
    resp = await client.post(
        f"{API}/jobs/{job['id']}/regenerate", json={"settings": {"preview": False}}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    kinds = [t["kind"] for t in (await get_job(client, job["id"]))["tasks"]]
    assert kinds == ["render", "merge", "render", "merge"]
