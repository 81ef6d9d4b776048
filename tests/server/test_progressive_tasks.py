"""blender-render-progressive without Blender: the job type's tasks, the coordinator's
intermediate outputs and task inputs, and the merge runner's EXR header checks."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.core.protocol import Assignment, TaskSpec
from coordinator.server.job_types import REGISTRY, SettingsError
from coordinator.server.job_types.blender_render_progressive import (
    chunk_name,
    merged_name,
    report,
    sample_ranges,
)
from tests.conftest import (
    API,
    AUTH,
    claim,
    finish,
    get_job,
    register,
    sha,
    submit_progressive,
)
from worker_agent.in_blender.merge import (
    MergeError,
    MergeTask,
    fix_sample_headers,
    read_sample_headers,
)
from worker_agent.in_blender.render_task import RenderTask

Client = TestClient[Any, Any]
PROGRESSIVE = REGISTRY["blender-render-progressive"]


def compile_job(**settings: Any) -> list[TaskSpec]:
    base = {"frames": "1-2", "samples": 16, "output": "/renders/shot/frame_####"}
    return PROGRESSIVE.compile(PROGRESSIVE.validate({**base, **settings}))


# ------------------------------------------------------------------ job type
@pytest.mark.parametrize(
    ("samples", "chunks", "chunk_samples", "expected"),
    [
        (16, 4, None, [(0, 4), (4, 8), (8, 12), (12, 16)]),
        (10, 3, None, [(0, 4), (4, 7), (7, 10)]),  # as equal as they can be
        (5, 1, None, [(0, 5)]),
        (10, 4, 4, [(0, 4), (4, 8), (8, 10)]),  # a size instead of a count
        (3, 9, 8, [(0, 3)]),
    ],
)
def test_sample_ranges(
    samples: int, chunks: int, chunk_samples: int | None, expected: list[tuple[int, int]]
) -> None:
    assert sample_ranges(samples, chunks, chunk_samples) == expected


def test_every_frames_first_chunk_comes_before_any_second_one() -> None:
    tasks = compile_job(frames="1-3", chunks=4)
    renders = [t for t in tasks if t.kind == "render"]
    assert len(renders) == 12 and len(tasks) == 25  # and the preview, last
    assert tasks[-1].kind == "preview"
    # The scheduler runs the highest priority first, then the lowest index.
    order = sorted(range(len(tasks)), key=lambda i: (-tasks[i].priority, i))
    offsets = [tasks[i].payload["sample_offset"] for i in order if tasks[i].kind == "render"]
    assert offsets == sorted(offsets)  # 0,0,0 then 4,4,4 ...
    for merge in (t for t in tasks if t.kind == "merge"):
        own_chunk = tasks[merge.depends_on[0]]
        # a merge outranks the chunks of its level: previews come as soon as they can
        assert own_chunk.kind == "render" and merge.priority == own_chunk.priority + 1


def test_chunk_tasks_render_sample_ranges_to_intermediate_exrs() -> None:
    tasks = compile_job(frames="1-2", samples=10, chunks=3, frames_per_task=2)
    renders = [t for t in tasks if t.kind == "render"]
    assert [t.name for t in renders] == [
        "frames 1-2 samples 1-4",
        "frames 1-2 samples 5-7",
        "frames 1-2 samples 8-10",
    ]
    second = renders[1].payload
    assert second["frames"] == [1, 2]
    assert (second["sample_offset"], second["sample_count"], second["samples"]) == (4, 3, 10)
    assert second["disable_denoise"] and second["disable_compositor"]
    assert second["keep_denoising_data"]
    assert second["file_format"] == "OPEN_EXR_MULTILAYER"
    assert second["intermediate_outputs"] == [
        "frame_0001.s0004-0007.exr",
        "frame_0002.s0004-0007.exr",
    ]
    merges = [t for t in tasks if t.kind == "merge"]  # one per chunk task, for the same frames
    assert [t.name for t in merges] == [
        "frames 1-2 finish samples 1-4",
        "frames 1-2 merge samples 1-7",
        "frames 1-2 merge samples 1-10",
    ]
    assert [m["frame"] for m in merges[1].payload["merges"]] == [1, 2]
    assert merges[1].payload["intermediate_outputs"] == [
        "frame_0001.s0000-0007.exr",
        "frame_0002.s0000-0007.exr",
    ]
    # What the agent hands the runner must be a valid RenderTask.
    fields = set(RenderTask.__dataclass_fields__)
    task = RenderTask.from_json(
        {k: v for k, v in second.items() if k in fields}
        | {"blend": "/w/shot.blend", "output_dir": "/w/out"}
    )
    assert task.sample_offset == 4 and task.sample_count == 3


def test_merges_form_a_chain_per_frame() -> None:
    tasks = compile_job(frames="7", samples=12, chunks=3)
    merges = [(i, t) for i, t in enumerate(tasks) if t.kind == "merge"]
    assert [t.name for _, t in merges] == [
        "frames 7 finish samples 1-4",
        "frames 7 merge samples 1-8",
        "frames 7 merge samples 1-12",
    ]
    (i0, m0), (i1, m1), (_, m2) = merges
    first_chunk = m0.depends_on[0]
    assert m0.payload["merges"] == [
        {
            "frame": 7,
            "inputs": [{"name": "frame_0007.s0000-0004.exr", "samples": 4}],
            "merged_output": None,
        }
    ]
    assert m0.payload["intermediate_outputs"] == []
    # Merge 1 reads chunk 0's own file, so it depends on that task as well.
    second_chunk = next(
        i for i, t in enumerate(tasks) if t.kind == "render" and t.payload["sample_offset"] == 4
    )
    assert m1.depends_on == (second_chunk, i0, first_chunk)
    assert m1.payload["merges"][0]["inputs"] == [
        {"name": "frame_0007.s0000-0004.exr", "samples": 4},
        {"name": "frame_0007.s0004-0008.exr", "samples": 4},
    ]
    assert m2.depends_on[1] == i1
    assert m2.payload["merges"][0]["inputs"][0] == {"name": merged_name(7, 8), "samples": 8}
    assert m2.payload["merges"][0]["merged_output"] == "frame_0007.s0000-0012.exr"
    assert m2.payload["intermediate_outputs"] == ["frame_0007.s0000-0012.exr"]
    assert m2.payload["output_name"] == "frame_####" and m2.payload["sample_end"] == 12
    assert all(t.frames == (7,) for _, t in merges)


def test_compile_is_pure_and_names_follow_blender() -> None:
    assert compile_job() == compile_job()
    assert chunk_name(-5, 0, 4) == "frame_-0005.s0000-0004.exr"
    assert chunk_name(12345, 100, 2000) == "frame_12345.s0100-2000.exr"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"samples": 0}, "samples"),
        ({"samples": None}, "samples"),
        ({"chunks": 0}, "chunks"),
        ({"samples": 3, "chunks": 4}, "chunks"),
        ({"chunk_samples": 0}, "chunk_samples"),
        ({"frames_per_task": 0}, "frames_per_task"),
        ({"file_format": "FFMPEG"}, "file_format"),
        ({"output": "//render/f_####"}, "output"),
        ({"output": "/r/frame_####.s0000-0004"}, "output"),  # would clash with a chunk file
        ({"frames": "1-"}, "frames"),
        ({"seed": 3}, "seed"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(SettingsError) as info:
        compile_job(**settings)
    assert info.value.field == field, str(info.value)


def test_report_counts_samples_reached_per_frame() -> None:
    tasks = compile_job(frames="1-3", samples=8, chunks=2, frames_per_task=2)
    rows = [
        {"kind": t.kind, "status": "queued", "frames": list(t.frames), "payload": t.payload}
        for t in tasks
    ]
    nothing = {"1": 0, "2": 0, "3": 0}
    assert report(rows) == {"samples": 8, "frame_samples": nothing, "frames_finished": 0}
    for row in rows:  # frames 1-2 merged their first chunk, frame 3 both
        if row["kind"] == "merge" and (row["frames"] == [3] or row["payload"]["sample_end"] == 4):
            row["status"] = "completed"
    reached = {"1": 4, "2": 4, "3": 8}
    assert report(rows) == {"samples": 8, "frame_samples": reached, "frames_finished": 1}


# -------------------------------------------------------- on the coordinator
async def put(
    client: Client, worker: dict[str, str], task: dict[str, Any], name: str, data: bytes
) -> None:
    resp = await client.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/{name}?frame=1&sha256={sha(data)}",
        data=data,
        headers=worker,
    )
    assert resp.status == 201, await resp.text()


async def next_task(client: Client, worker: dict[str, str], name: str) -> dict[str, Any]:
    task = await claim(client, worker)
    assert task is not None and task["payload"] is not None
    job = await get_job(client, task["job_id"])
    assert next(t["name"] for t in job["tasks"] if t["id"] == task["task_id"]) == name
    return task


async def test_chunks_stay_on_the_farm_and_merges_refine_the_delivered_frame(
    client: Client, tmp_path: Path
) -> None:
    out = tmp_path / "shot"
    job = await submit_progressive(client, out)
    worker = await register(client)

    chunk0 = await next_task(client, worker, "frames 1 samples 1-4")
    await put(client, worker, chunk0, "frame_0001.s0000-0004.exr", b"chunk 0")
    await finish(client, worker, chunk0["task_id"])
    assert not out.exists()  # an intermediate file is never delivered

    finish0 = await next_task(client, worker, "frames 1 finish samples 1-4")
    assert finish0["inputs"] == {"frame_0001.s0000-0004.exr": sha(b"chunk 0")}
    resp = await client.get(
        f"{API}/worker/tasks/{finish0['task_id']}/inputs/frame_0001.s0000-0004.exr", headers=worker
    )
    assert resp.status == 200 and await resp.read() == b"chunk 0"
    await put(client, worker, finish0, "frame_0001.png", b"4 samples")
    await finish(client, worker, finish0["task_id"])
    assert sorted(p.name for p in out.iterdir()) == ["frame_0001.png"]
    assert (out / "frame_0001.png").read_bytes() == b"4 samples"
    job_now = await get_job(client, job["id"])
    assert job_now["report"] == {"samples": 8, "frame_samples": {"1": 4}, "frames_finished": 0}

    chunk1 = await next_task(client, worker, "frames 1 samples 5-8")
    await put(client, worker, chunk1, "frame_0001.s0004-0008.exr", b"chunk 1")
    await finish(client, worker, chunk1["task_id"])
    merge1 = await next_task(client, worker, "frames 1 merge samples 1-8")
    assert merge1["inputs"] == {
        "frame_0001.png": sha(b"4 samples"),
        "frame_0001.s0000-0004.exr": sha(b"chunk 0"),
        "frame_0001.s0004-0008.exr": sha(b"chunk 1"),
    }
    await put(client, worker, merge1, "frame_0001.s0000-0008.exr", b"merged")
    await put(client, worker, merge1, "frame_0001.png", b"8 samples")
    await finish(client, worker, merge1["task_id"])

    assert sorted(p.name for p in out.iterdir()) == ["frame_0001.png"]  # no temp files either
    assert (out / "frame_0001.png").read_bytes() == b"8 samples"  # replaced in place
    job_now = await get_job(client, job["id"])
    assert job_now["status"] == "completed"
    assert job_now["report"]["frame_samples"] == {"1": 8}
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
    listed = (await resp.json())["outputs"]
    assert [(o["name"], o["intermediate"]) for o in listed] == [("frame_0001.png", False)]
    # The intermediate files are still there for whoever wants them, by name.
    resp = await client.get(
        f"{API}/jobs/{job['id']}/outputs/frame_0001.s0000-0008.exr", headers=AUTH
    )
    assert await resp.read() == b"merged"


async def test_a_merge_gets_only_its_dependencies_completed_attempts(
    client: Client, tmp_path: Path
) -> None:
    await submit_progressive(client, tmp_path / "out", samples=4, chunks=1)
    flaky, steady = await register(client, "flaky"), await register(client, "steady")
    first = await next_task(client, flaky, "frames 1 samples 1-4")
    # The first attempt uploads a chunk (a stray file is refused: not its output), then fails.
    await put(client, flaky, first, "frame_0001.s0000-0004.exr", b"attempt 1")
    resp = await client.put(
        f"{API}/worker/tasks/{first['task_id']}/outputs/frame_0001.stray.exr",
        data=b"attempt 1 stray",
        headers=flaky,
    )
    assert resp.status == 400
    assert "may upload: frame_0001.s0000-0004.exr" in (await resp.json())["error"]
    resp = await client.post(
        f"{API}/worker/tasks/{first['task_id']}/fail", json={"reason": "crashed"}, headers=flaky
    )
    assert (await resp.json())["task_status"] == "queued"
    second = await next_task(client, steady, "frames 1 samples 1-4")
    assert second["attempt"] == 2
    await put(client, steady, second, "frame_0001.s0000-0004.exr", b"attempt 2")
    await finish(client, steady, second["task_id"])
    merge = await next_task(client, steady, "frames 1 finish samples 1-4")
    # Only what the completed attempt uploaded: not the stray file of the failed one.
    assert merge["inputs"] == {"frame_0001.s0000-0004.exr": sha(b"attempt 2")}
    stray = await client.get(
        f"{API}/worker/tasks/{merge['task_id']}/inputs/frame_0001.stray.exr", headers=steady
    )
    assert stray.status == 404
    assert "not an input" in (await stray.json())["error"]
    # Another worker cannot read the held task's inputs.
    resp = await client.get(
        f"{API}/worker/tasks/{merge['task_id']}/inputs/frame_0001.s0000-0004.exr", headers=flaky
    )
    assert resp.status == 409


async def test_a_new_attempt_voids_what_the_last_one_uploaded(
    client: Client, tmp_path: Path
) -> None:
    await submit_progressive(client, tmp_path / "out", samples=4, chunks=1)
    worker, other = await register(client, "a"), await register(client, "b")
    first = await next_task(client, worker, "frames 1 samples 1-4")
    await put(client, worker, first, "frame_0001.s0000-0004.exr", b"attempt 1")
    await client.post(
        f"{API}/worker/tasks/{first['task_id']}/fail", json={"reason": "x"}, headers=worker
    )
    second = await next_task(client, other, "frames 1 samples 1-4")
    # The first attempt's chunk does not count: this attempt has not uploaded it.
    resp = await client.post(f"{API}/worker/tasks/{second['task_id']}/complete", headers=other)
    assert resp.status == 400
    assert "frame_0001.s0000-0004.exr has not been uploaded" in (await resp.json())["error"]
    await put(client, other, second, "frame_0001.s0000-0004.exr", b"attempt 2")
    await finish(client, other, second["task_id"])
    merge = await next_task(client, other, "frames 1 finish samples 1-4")
    assert merge["inputs"] == {"frame_0001.s0000-0004.exr": sha(b"attempt 2")}


async def test_overwrite_off_still_refines_the_jobs_own_frame(
    client: Client, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "frame_0002.png").write_bytes(b"the artist's own")
    await submit_progressive(client, out, frames="1-2", samples=2, chunks=2, overwrite=False)
    worker = await register(client)
    for _ in range(8):
        task = await claim(client, worker)
        assert task is not None
        payload = task["payload"]
        if task["kind"] == "render":
            for name in payload["intermediate_outputs"]:
                await put(client, worker, task, name, name.encode())
        else:
            for merge in payload["merges"]:
                if merge["merged_output"]:
                    await put(client, worker, task, merge["merged_output"], b"m")
                name, end = f"frame_{merge['frame']:04d}.png", payload["sample_end"]
                await put(client, worker, task, name, f"{end} samples".encode())
        await finish(client, worker, task["task_id"])
    assert (out / "frame_0001.png").read_bytes() == b"2 samples"  # its own: replaced
    assert (out / "frame_0002.png").read_bytes() == b"the artist's own"  # not its own: kept


def test_assignment_inputs_are_optional_on_the_wire() -> None:
    old = {
        "task_id": 1,
        "job_id": 2,
        "job_name": "j",
        "kind": "merge",
        "payload": {},
        "attempt": 1,
        "lease_seconds": 5,
    }
    assert Assignment.from_json(old).inputs == {}
    new = Assignment.from_json({**old, "inputs": {"a.exr": "0" * 64}})
    assert Assignment.from_json(new.to_json()) == new


# ----------------------------------------------------- merge runner, pure part
def fake_exr(path: Path, samples: dict[str, str]) -> Path:
    """An OpenEXR header with cycles.<layer>.samples attributes (no pixels)."""

    def attr(name: str, kind: str, value: bytes) -> bytes:
        return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value

    header = b"".join(attr(f"cycles.{k}.samples", "string", v.encode()) for k, v in samples.items())
    header += attr("compression", "compression", b"\x03")
    path.write_bytes(
        b"\x76\x2f\x31\x01" + struct.pack("<I", 2 | 0x400) + header + b"\0" + b"pixels"
    )
    return path


def test_a_4_4_subset_header_is_corrected_in_place(tmp_path: Path) -> None:
    exr = fake_exr(tmp_path / "c.exr", {"ViewLayer": "16", "Other": "4"})
    size = exr.stat().st_size
    changed = fix_sample_headers(str(exr), samples=4, total=16)
    assert changed == ["c.exr: ViewLayer samples 16 -> 4 (4.4+ subset)"]
    assert [(h.layer, h.value) for h in read_sample_headers(str(exr))] == [
        ("ViewLayer", 4),
        ("Other", 4),
    ]
    assert b"cycles.ViewLayer.samples\0string\0\x02\0\0\x0004" in exr.read_bytes()
    assert exr.stat().st_size == size and exr.read_bytes().endswith(b"pixels")
    assert fix_sample_headers(str(exr), samples=4, total=16) == []  # idempotent


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"ViewLayer": "8"}, "holds 8 samples of view layer 'ViewLayer', but this merge expects 4"),
        ({}, "no cycles.<layer>.samples header"),
        ({"ViewLayer": "four"}, "not a number"),
    ],
)
def test_inputs_from_other_settings_are_refused(
    tmp_path: Path, headers: dict[str, str], message: str
) -> None:
    exr = fake_exr(tmp_path / "c.exr", headers)
    with pytest.raises(MergeError, match=message):
        fix_sample_headers(str(exr), samples=4, total=16)


def test_not_an_exr_is_refused(tmp_path: Path) -> None:
    png = tmp_path / "x.exr"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(MergeError, match="not an OpenEXR"):
        read_sample_headers(str(png))


def test_merge_task_schema() -> None:
    good = {
        "blend": "/w/shot.blend",
        "output_dir": "/w/out",
        "merges": [
            {
                "frame": 1,
                "inputs": [{"path": "/w/a.exr", "samples": 4}, {"path": "/w/b.exr", "samples": 4}],
                "merged_output": "m.exr",
            }
        ],
        "samples": 8,
    }
    task = MergeTask.from_json(good)
    assert MergeTask.from_json(task.to_json()) == task
    assert task.render_task().frames == (1,)
    merge = good["merges"][0]
    for bad, message in (
        ({**good, "merges": [{**merge, "merged_output": None}]}, "merged_output"),
        ({**good, "merges": [{**merge, "inputs": []}]}, "one or two inputs"),
        ({**good, "merges": []}, "at least one frame"),
        ({**good, "samples": 3}, "between 1 and the total"),
        ({**good, "colour": 1}, "unknown"),
    ):
        with pytest.raises(MergeError, match=message):
            MergeTask.from_json(bad)
