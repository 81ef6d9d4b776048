"""Files in and frames out: the content-addressed store, and delivery of
rendered outputs into the artist's output folder."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from coordinator.server import filestore
from coordinator.server.services import deliveries as deliveries_module
from tests.conftest import (
    API,
    AUTH,
    claim,
    farm_of,
    register,
    sha,
    submit_render,
    submit_sleep,
    upload_blob,
    wait_until,
)

Client = TestClient[Any, Any]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ------------------------------------------------------------------- files
async def test_missing_then_upload_then_not_missing(client: Client) -> None:
    a, b = b"texture bytes", b"the .blend"
    resp = await client.post(
        f"{API}/files/missing", json={"hashes": [sha(a), sha(b), sha(a)]}, headers=AUTH
    )
    assert resp.status == 200
    assert (await resp.json())["missing"] == sorted({sha(a), sha(b)})
    await upload_blob(client, a)
    resp = await client.post(
        f"{API}/files/missing", json={"hashes": [sha(a), sha(b)]}, headers=AUTH
    )
    assert (await resp.json())["missing"] == [sha(b)]


@pytest.mark.parametrize(
    "body", [{}, {"hashes": "abc"}, {"hashes": ["abc"]}, {"hashes": [None]}, [], {"hashes": [1]}]
)
async def test_missing_refuses_bad_bodies(client: Client, body: Any) -> None:
    resp = await client.post(f"{API}/files/missing", json=body, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error"]


async def test_upload_with_the_wrong_content_is_refused(client: Client, tmp_path: Path) -> None:
    expected = sha(b"what the client promised")
    resp = await client.put(f"{API}/files/{expected}", data=b"something else", headers=AUTH)
    assert resp.status == 400
    assert "does not match" in (await resp.json())["error"]
    assert (await client.get(f"{API}/files/{expected}", headers=AUTH)).status == 404
    assert list((tmp_path / "farm" / "tmp").iterdir()) == []


async def test_reupload_is_idempotent(client: Client) -> None:
    data = b"x" * 100_000
    first = await client.put(f"{API}/files/{sha(data)}", data=data, headers=AUTH)
    again = await client.put(f"{API}/files/{sha(data)}", data=data, headers=AUTH)
    assert first.status == again.status == 201
    assert await first.json() == await again.json() == {"sha256": sha(data), "size": len(data)}


@pytest.mark.parametrize("bad", ["ABC", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "..%2F" + "0" * 60])
async def test_bad_hashes_in_urls(client: Client, bad: str) -> None:
    url = URL(f"{API}/files/{bad}", encoded=True)
    assert (await client.put(url, data=b"x", headers=AUTH)).status == 400
    assert (await client.get(url, headers=AUTH)).status == 400


async def test_download_with_farm_token_or_worker_secret(client: Client) -> None:
    data = b"project file"
    digest = await upload_blob(client, data)
    worker = await register(client)
    for headers in (AUTH, worker):
        resp = await client.get(f"{API}/files/{digest}", headers=headers)
        assert resp.status == 200
        assert await resp.read() == data
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = await client.get(f"{API}/files/{digest}", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]
    resp = await client.get(f"{API}/files/{sha(b'absent')}", headers=worker)
    assert resp.status == 404


async def test_workers_cannot_upload_files(client: Client) -> None:
    """Only downloads are open to worker secrets; the store is the artist's."""
    worker = await register(client)
    data = b"sneaky"
    resp = await client.put(f"{API}/files/{sha(data)}", data=data, headers=worker)
    assert resp.status == 401


async def test_submit_with_unuploaded_files_lists_them(client: Client) -> None:
    present = await upload_blob(client, b"uploaded")
    absent = [sha(b"tex 1"), sha(b"tex 2")]
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={
            "name": "x",
            "type": "sleep",
            "files": {"a.png": absent[0], "sub/b.png": absent[1], "ok.png": present},
        },
    )
    assert resp.status == 409
    error = await resp.json()
    assert error["field"] == "files"
    for digest in absent:
        assert digest in error["error"]
    assert present not in error["error"]
    assert (await client.get(f"{API}/jobs", headers=AUTH)).status == 200
    assert (await (await client.get(f"{API}/jobs", headers=AUTH)).json())["total"] == 0


@pytest.mark.parametrize(
    "relpath",
    [
        "../x",
        "a/../../x",
        "/abs",
        "a//b",
        "./a",
        "a/.",
        "a\x00b",
        "a\\b",
        "C:/x",
        "c:x",
        "",
        "a/" + "b" * 256,
        "a/" * 2100,
    ],
)
async def test_submit_refuses_bad_project_paths(client: Client, relpath: str) -> None:
    digest = await upload_blob(client, b"content")
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={"name": "x", "type": "sleep", "files": {relpath: digest}},
    )
    assert resp.status == 400, await resp.text()
    assert "project path" in (await resp.json())["error"]


async def test_submit_accepts_nested_project_paths(client: Client) -> None:
    digest = await upload_blob(client, b"content")
    job = await submit_sleep(client, files={"textures/wood/oak 1.png": digest, "é.blend": digest})
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None and task["job_id"] == job["id"]
    assert task["files"] == {"textures/wood/oak 1.png": digest, "é.blend": digest}


# ----------------------------------------------------------------- outputs
async def _render_task(
    client: Client, out_dir: Path, **settings: Any
) -> tuple[dict[str, Any], dict[str, str], int]:
    job = await submit_render(client, str(out_dir / "frame_####"), **settings)
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    return job, worker, task["task_id"]


async def _upload(
    client: Client, worker: dict[str, str], task_id: int, name: str, data: bytes
) -> Any:
    return await client.put(
        f"{API}/worker/tasks/{task_id}/outputs/{name}?sha256={sha(data)}&frame=1",
        data=data,
        headers=worker,
    )


async def test_output_is_delivered_into_the_output_folder(client: Client, tmp_path: Path) -> None:
    out_dir = tmp_path / "shot" / "renders"  # does not exist yet
    job, worker, task_id = await _render_task(client, out_dir)
    resp = await _upload(client, worker, task_id, "frame_0001.png", b"pixels 1")
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert out["delivery_note"] == "delivered"
    assert out["delivered_path"] == str(out_dir / "frame_0001.png")
    assert (out_dir / "frame_0001.png").read_bytes() == b"pixels 1"
    assert tree(out_dir) == {"frame_0001.png"}  # no temporary file left behind
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
    (listed,) = (await resp.json())["outputs"]
    assert (listed["name"], listed["frame"], listed["task_id"]) == ("frame_0001.png", 1, task_id)
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs/frame_0001.png", headers=AUTH)
    assert await resp.read() == b"pixels 1"


async def test_a_different_file_is_replaced_when_overwrite_is_on(
    client: Client, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "frame_0001.png").write_bytes(b"yesterday's render")
    _, worker, task_id = await _render_task(client, out_dir, overwrite=True)
    out = await (await _upload(client, worker, task_id, "frame_0001.png", b"today")).json()
    assert out["delivery_note"] == "replaced an older file"
    assert (out_dir / "frame_0001.png").read_bytes() == b"today"
    resp = await client.get(f"{API}/tasks/{task_id}/log", headers=AUTH)
    assert "replaced an older file" in await resp.text()
    assert tree(out_dir) == {"frame_0001.png"}


async def test_a_different_file_is_kept_when_overwrite_is_off(
    client: Client, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "frame_0001.png").write_bytes(b"keep me")
    job, worker, task_id = await _render_task(client, out_dir, overwrite=False)
    resp = await _upload(client, worker, task_id, "frame_0001.png", b"new")
    assert resp.status == 201
    out = await resp.json()
    assert out["delivered_path"] is None
    assert "kept what is already at" in out["delivery_note"]
    assert "overwrite is off" in out["delivery_note"]
    assert (out_dir / "frame_0001.png").read_bytes() == b"keep me"
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs/frame_0001.png", headers=AUTH)
    assert await resp.read() == b"new"  # the farm still has the render


async def test_the_same_file_is_already_there(client: Client, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "frame_0001.png").write_bytes(b"same")
    before = (out_dir / "frame_0001.png").stat().st_mtime_ns
    _, worker, task_id = await _render_task(client, out_dir, overwrite=False)
    out = await (await _upload(client, worker, task_id, "frame_0001.png", b"same")).json()
    assert out["delivery_note"] == "already there"
    assert out["delivered_path"] == str(out_dir / "frame_0001.png")
    assert (out_dir / "frame_0001.png").stat().st_mtime_ns == before


async def test_a_folder_output_delivers_into_that_folder(client: Client, tmp_path: Path) -> None:
    """render.filepath "/x/renders/" means frames named 0001.png in /x/renders."""
    out_dir = tmp_path / "renders"
    job = await submit_render(client, str(out_dir) + "/")
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    out = await (await _upload(client, worker, task["task_id"], "0001.png", b"px")).json()
    assert out["delivered_path"] == str(out_dir / "0001.png")
    assert (out_dir / "0001.png").read_bytes() == b"px"
    assert job["settings"]["output"].endswith("/")


async def test_a_windows_output_path_is_not_written_here(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coordinator on Linux cannot reach C:\\ of the artist's machine: it keeps the
    frame for the add-on to fetch and writes nothing relative to its own folder."""
    if os.name == "nt":
        pytest.skip("on Windows this is a real path")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    job = await submit_render(client, "C:\\Users\\ana\\shot\\frame_####")
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    resp = await _upload(client, worker, task["task_id"], "frame_0001.png", b"px")
    assert resp.status == 201
    out = await resp.json()
    assert out["delivered_path"] is None
    assert "not a folder on this machine" in out["delivery_note"]
    assert tree(cwd) == set()
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs/frame_0001.png", headers=AUTH)
    assert await resp.read() == b"px"


async def test_output_names_with_braces_and_spaces_round_trip(
    client: Client, tmp_path: Path
) -> None:
    """ "{{v2}}" in a 4.5+ template is a literal "{v2}" in the frame's name."""
    out_dir = tmp_path / "out"
    job = await submit_render(client, str(out_dir / "shot {v2}_####"))
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    name = quote("shot {v2}_0001.png")
    resp = await _upload(client, worker, task["task_id"], name, b"px")
    assert resp.status == 201, await resp.text()
    assert (out_dir / "shot {v2}_0001.png").read_bytes() == b"px"
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs/{name}", headers=AUTH)
    assert resp.status == 200 and await resp.read() == b"px"


async def test_no_delivery_when_the_job_says_so(client: Client, tmp_path: Path) -> None:
    blend = await upload_blob(client, b"blend")
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={
            "name": "remote artist",
            "type": "blender-render",
            "blend": "a.blend",
            "files": {"a.blend": blend},
            "deliver": False,
            "settings": {"frames": "1", "output": str(tmp_path / "out" / "f_####")},
        },
    )
    assert resp.status == 201
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    out = await (await _upload(client, worker, task["task_id"], "f_0001.png", b"px")).json()
    assert (out["delivered_path"], out["delivery_note"]) == (None, "")
    assert not (tmp_path / "out").exists()


def _refuse_writes_in(folder: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    """Make `folder` unwritable for delivery, even for root (which ignores chmod)."""
    real = filestore.create_new

    def create_new(path: Path) -> int:
        if path.parent == folder:
            raise OSError(err, os.strerror(err))
        return real(path)

    monkeypatch.setattr(filestore, "create_new", create_new)


@pytest.mark.parametrize("err", [errno.EACCES, errno.EROFS])
async def test_an_unwritable_output_folder_is_noted_and_the_output_kept(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int
) -> None:
    out_dir = tmp_path / "locked"
    out_dir.mkdir()
    _refuse_writes_in(out_dir, monkeypatch, err)
    job, worker, task_id = await _render_task(client, out_dir)
    resp = await _upload(client, worker, task_id, "frame_0001.png", b"px")
    assert resp.status == 201
    out = await resp.json()
    assert out["delivered_path"] is None
    assert (
        out["delivery_note"] == f"could not write {out_dir / 'frame_0001.png'}: {os.strerror(err)}"
    )
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs/frame_0001.png", headers=AUTH)
    assert await resp.read() == b"px"
    assert tree(out_dir) == set()

    # the sweeper retries later, logging the trouble once rather than every second
    farm = farm_of(client)
    for _ in range(3):
        assert await farm.deliveries.retry(now=time.time() + 10) == 1
    resp = await client.get(f"{API}/tasks/{task_id}/log", headers=AUTH)
    assert (await resp.text()).count("could not write") == 1
    monkeypatch.undo()
    assert await farm.deliveries.retry(now=time.time() + 10) == 1
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
    (listed,) = (await resp.json())["outputs"]
    assert listed["delivery_note"] == "delivered"
    assert (out_dir / "frame_0001.png").read_bytes() == b"px"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
async def test_a_read_only_output_folder_for_real(client: Client, tmp_path: Path) -> None:
    out_dir = tmp_path / "locked"
    out_dir.mkdir()
    out_dir.chmod(0o555)
    try:
        _, worker, task_id = await _render_task(client, out_dir)
        out = await (await _upload(client, worker, task_id, "frame_0001.png", b"px")).json()
        assert out["delivered_path"] is None
        assert "Permission denied" in out["delivery_note"]
    finally:
        out_dir.chmod(0o755)


@pytest.mark.parametrize(
    "name",
    [
        "%2E%2E",
        "%2E",
        "..%2F..%2Fescaped.png",
        "a%2Fb.png",
        "a%5Cb.png",
        "a%00b.png",
        "a" * 300,
        ".hidden",
        "x%3A.png",
    ],
)
async def test_bad_output_names_write_nothing(client: Client, tmp_path: Path, name: str) -> None:
    out_dir = tmp_path / "out"
    job, worker, task_id = await _render_task(client, out_dir)
    before = tree(tmp_path)
    url = URL(f"{API}/worker/tasks/{task_id}/outputs/{name}", encoded=True)
    resp = await client.put(url, data=b"evil", headers=worker)
    assert resp.status == 400, await resp.text()
    assert "not an acceptable output file name" in (await resp.json())["error"]
    assert tree(tmp_path) == before
    url = URL(f"{API}/jobs/{job['id']}/outputs/{name}", encoded=True)
    assert (await client.get(url, headers=AUTH)).status == 400


async def test_a_reuploaded_output_replaces_the_stored_one(client: Client, tmp_path: Path) -> None:
    job, worker, task_id = await _render_task(client, tmp_path / "out")
    await _upload(client, worker, task_id, "frame_0001.png", b"first try")
    out = await (await _upload(client, worker, task_id, "frame_0001.png", b"second")).json()
    assert out["sha256"] == sha(b"second")
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
    assert [o["sha256"] for o in (await resp.json())["outputs"]] == [sha(b"second")]
    assert (tmp_path / "out" / "frame_0001.png").read_bytes() == b"second"


class _HeldDelivery:
    """filestore.deliver, held until released: a very slow disk. Held at its start,
    or (after=True) once the file is in place, before it returns."""

    def __init__(self, *, after: bool = False) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.after = after

    def __call__(self, *args: Any, **kwargs: Any) -> filestore.Delivery:
        self.calls += 1
        result = filestore.deliver(*args, **kwargs) if self.after else None
        self.entered.set()
        assert self.release.wait(30), "the test never released the delivery"
        return result if result is not None else filestore.deliver(*args, **kwargs)


async def _until(event: threading.Event) -> None:
    for _ in range(300):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the delivery never started")


async def test_a_slow_delivery_does_not_hold_up_other_requests(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = _HeldDelivery()
    monkeypatch.setattr(deliveries_module, "deliver", held)
    job, worker, task_id = await _render_task(client, tmp_path / "out")
    upload = asyncio.ensure_future(_upload(client, worker, task_id, "frame_0001.png", b"v1"))
    await _until(held.entered)
    # The copy is stuck in its thread; the coordinator still answers.
    resp = await asyncio.wait_for(client.get(f"{API}/jobs/{job['id']}", headers=AUTH), 10)
    assert resp.status == 200
    assert not upload.done()
    held.release.set()
    resp = await asyncio.wait_for(upload, 10)
    assert resp.status == 201 and (await resp.json())["delivery_note"] == "delivered"
    assert (tmp_path / "out" / "frame_0001.png").read_bytes() == b"v1"


@pytest.mark.parametrize("overwrite", [True, False])
async def test_an_upload_during_a_delivery_ends_with_the_newest_file(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    """Even with overwrite off: the older copy that landed first is this job's own."""
    held = _HeldDelivery(after=True)  # the old frame is in the folder when the new comes
    monkeypatch.setattr(deliveries_module, "deliver", held)
    job, worker, task_id = await _render_task(client, tmp_path / "out", overwrite=overwrite)
    first = asyncio.ensure_future(_upload(client, worker, task_id, "frame_0001.png", b"old"))
    await _until(held.entered)
    second = asyncio.ensure_future(_upload(client, worker, task_id, "frame_0001.png", b"new"))

    async def stored() -> bool:  # the second upload is stored and waits for the first copy
        resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
        return bool((await resp.json())["outputs"][0]["sha256"] == sha(b"new"))

    await wait_until(stored, what="the second upload to be stored")
    held.release.set()
    for resp in await asyncio.wait_for(asyncio.gather(first, second), 10):
        assert resp.status == 201
    assert (tmp_path / "out" / "frame_0001.png").read_bytes() == b"new"
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
    (listed,) = (await resp.json())["outputs"]
    assert listed["sha256"] == sha(b"new")
    assert listed["delivered_path"] == str(tmp_path / "out" / "frame_0001.png")
    assert held.calls == 2
    assert farm_of(client).deliveries._delivering == {}  # no lock left behind per output


async def test_a_copy_running_when_the_output_moves_does_not_cancel_the_move(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A regenerate with a new output folder while a frame is still being copied into
    the old one: the frame still ends up in the new folder."""
    held = _HeldDelivery()
    monkeypatch.setattr(deliveries_module, "deliver", held)
    job, worker, task_id = await _render_task(client, tmp_path / "a", frames="1")
    upload = asyncio.ensure_future(_upload(client, worker, task_id, "frame_0001.png", b"px"))
    await _until(held.entered)
    resp = await client.post(f"{API}/worker/tasks/{task_id}/complete", json={}, headers=worker)
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"{API}/jobs/{job['id']}/regenerate",
        json={"settings": {"output": str(tmp_path / "b" / "frame_####")}},
        headers=AUTH,
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["regenerated"]["kept"] == 1
    held.release.set()
    assert (await asyncio.wait_for(upload, 10)).status == 201
    wanted = str(tmp_path / "b" / "frame_0001.png")

    async def moved() -> bool:
        resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
        return bool((await resp.json())["outputs"][0]["delivered_path"] == wanted)

    await wait_until(moved, what="the frame to reach the new folder")
    assert (tmp_path / "b" / "frame_0001.png").read_bytes() == b"px"
