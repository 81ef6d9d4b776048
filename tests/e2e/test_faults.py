"""Faults on a real farm: processes on loopback, Debian's Blender, real signals.

Each test breaks one thing while a job renders (the coordinator killed or
paused, Blender crashing, the output disk full or read-only, a connection cut
mid-upload) and then checks the same promises: the job completes, every frame
arrives exactly once and intact (sha256 against the coordinator's outputs, no
temp files left in the output folder or the coordinator's tmp/), no task stays
active, the worker takes the next job, and the logs say what happened.
(kill -9 of a worker mid-render is in test_e2e_render.py.) docs/faults.md
describes each case for admins.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient

from coordinator.client.http import FarmClient
from coordinator.core.hashing import sha256_file
from tests.conftest import API, AUTH, get_job, register, submit_sleep
from tests.support.blendgen import DEBIAN_BLENDER, make_scene
from tests.support.localfarm import Child, LocalFarm
from tests.support.waiting import wait_for

Test = TypeVar("Test", bound=Callable[..., Any])


def real_farm(test: Test) -> Test:
    """Marks a test on real processes, rendering with Debian's Blender."""
    marked: Test = pytest.mark.blender(pytest.mark.slow(test))
    return marked


MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
FRAMES = [1, 2, 3]
NAMES = [f"frame_{n:04d}.png" for n in FRAMES]


# ---------------------------------------------------------------- helpers


def submit(client: FarmClient, scene: Path, out: Path, *, chunk: int = 3) -> int:
    files, _ = client.upload_project({"shot.blend": scene})
    job = client.submit(
        {
            "name": f"faults {out.name}",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": files,
            "blender_version": "3.4",
            "settings": {
                "frames": "1-3",
                "chunk_size": chunk,
                "output": str(out / "frame_####"),
                "preview": False,  # the subject is the render tasks; a preview only costs time
            },
        }
    )
    return int(job["id"])


def blender_started(farm: LocalFarm, worker: str, job_id: int) -> bool:
    """The worker has the project and starts Blender (it writes task.json just before)."""
    return any((farm.root / worker / "jobs" / str(job_id)).glob("out-*/task.json"))


def worker_frames(farm: LocalFarm, worker: str, job_id: int) -> list[Path]:
    """Frames Blender has written in the worker's work folder for the job."""
    return sorted((farm.root / worker / "jobs" / str(job_id)).glob("out-*/frame_*.png"))


def assert_job_done_once(farm: LocalFarm, job_id: int, out: Path) -> dict[str, Any]:
    """The job completed, each frame is in the output folder once, intact, and nothing
    else is: no task active, no temp file here or in the coordinator's tmp/."""
    client = farm.client()
    job = farm.wait_for_job(job_id, timeout=120)
    assert job["status"] == "completed", f"{job['status_reason']}\n{farm.describe()}"
    detail = client.job(job_id)
    assert {t["status"] for t in detail["tasks"]} == {"completed"}
    outputs = client.outputs(job_id)
    assert [o["name"] for o in outputs] == NAMES
    wait_for(lambda: all(o["delivered_path"] for o in client.outputs(job_id)), 20, "every delivery")
    assert sorted(os.listdir(out)) == NAMES  # no .part files, no duplicates
    for o in outputs:
        assert sha256_file(out / o["name"]) == o["sha256"], o["name"]
        assert o["size"] == (out / o["name"]).stat().st_size
    assert list((farm.root / "coordinator" / "tmp").iterdir()) == []
    assert not [w for w in client.workers() if w["task"] is not None]
    return detail


def assert_workers_take_the_next_job(farm: LocalFarm) -> None:
    """No worker is wedged: every one of them runs a task of a new job."""
    client = farm.client()
    alive = [w for w in farm.workers if w.process.poll() is None]
    job = client.submit(
        {"name": "next", "type": "sleep", "settings": {"task_count": len(alive), "seconds": 2}}
    )
    done = farm.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "completed"
    ran = {t["worker_id"] for t in client.job(job["id"])["tasks"]}
    assert ran == {w["id"] for w in client.workers() if w["status"] != "offline"}


def task_log(farm: LocalFarm, job_id: int) -> str:
    client = farm.client()
    return "".join(client.task_log(t["id"]) for t in client.job(job_id)["tasks"])


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("scene") / "shot.blend", frames=(1, 3), samples=16)


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[LocalFarm]:
    with LocalFarm(root=tmp_path / "farm", lease_seconds=2.0) as farm:
        yield farm


# ------------------------------------------------------ the coordinator away
@real_farm
def test_coordinator_killed_mid_job_gets_the_workers_reports_when_it_returns(
    tmp_path: Path, scene: Path
) -> None:
    """kill -9 while a worker renders; Blender finishes while nobody listens; the
    coordinator comes back on the same data dir and port, and the worker's
    uploads and its completion, retried all along, are accepted: nothing is
    rendered twice."""
    with LocalFarm(root=tmp_path / "farm", lease_seconds=30.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        worker = farm.start_worker("w", blender=DEBIAN_BLENDER)
        out = tmp_path / "out"
        job_id = submit(farm.client(), scene, out)
        wait_for(lambda: blender_started(farm, "w", job_id), 30, "the worker to start Blender")
        assert farm.coordinator is not None
        farm.coordinator.kill()
        wait_for(lambda: len(worker_frames(farm, "w", job_id)) == 3, 60, "Blender to finish")
        wait_for(lambda: "coordinator unreachable" in worker.log(), 20, "a failed report")
        assert worker.process.poll() is None

        farm.start_coordinator("--no-zeroconf")
        detail = assert_job_done_once(farm, job_id, out)
        task = detail["tasks"][0]
        assert task["attempts"] == 1  # the same render was accepted, not redone
        assert farm.client().task(task["id"])["failures"] == []
        log = task_log(farm, job_id)
        assert all(f"[agent] uploaded {name}" in log for name in NAMES)
        coordinator = farm.coordinator.log()
        assert "the coordinator started: giving the workers of 1 running task(s)" in coordinator
        assert f"task {task['id']} completed by w" in coordinator
        assert "requeueing" not in coordinator
        assert_workers_take_the_next_job(farm)


@real_farm
def test_coordinator_paused_longer_than_the_lease_blames_nobody(
    farm: LocalFarm, tmp_path: Path, scene: Path
) -> None:
    """SIGSTOP for 2.5 leases, then SIGCONT: the workers could not renew their
    leases, so the coordinator gives them another instead of requeueing."""
    farm.start_coordinator("--no-zeroconf")
    worker = farm.start_worker("w", blender=DEBIAN_BLENDER)
    out = tmp_path / "out"
    job_id = submit(farm.client(), scene, out)
    wait_for(lambda: f"(job {job_id} " in worker.log(), 30, "the worker to take the task")
    assert farm.coordinator is not None
    coordinator = farm.coordinator.process
    coordinator.send_signal(signal.SIGSTOP)
    try:
        time.sleep(farm.lease_seconds * 2.5)
    finally:
        coordinator.send_signal(signal.SIGCONT)
    detail = assert_job_done_once(farm, job_id, out)
    task = detail["tasks"][0]
    assert task["attempts"] == 1
    assert farm.client().task(task["id"])["failures"] == []
    log = farm.coordinator.log()
    assert "the coordinator was stalled for" in log
    assert "requeueing" not in log
    assert_workers_take_the_next_job(farm)


# ------------------------------------------------------------ Blender crashes
# Blender's SIGABRT handler only empties its temp folder and carries on (a real
# abort() kills it all the same); SIGSEGV goes through its crash handler, which
# writes blender.crash.txt and dies of the signal, as a real crash does.
CRASHING_BLENDER = """#!{python}
# Runs the real Blender and crashes it (SIGSEGV) right after it saved its first
# frame, once per marker file: whichever worker renders first crashes.
import os, signal, subprocess, sys

proc = subprocess.Popen([{blender!r}, *sys.argv[1:]], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
for raw in proc.stdout:
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    if b'"event":"frame_saved"' in raw:
        try:
            os.close(os.open({marker!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        proc.send_signal(signal.SIGSEGV)
code = proc.wait()
if code < 0:  # die the way Blender died
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def crashing_blender(folder: Path) -> Path:
    wrapper = folder / "crashing-blender"
    folder.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        CRASHING_BLENDER.format(
            python=sys.executable, blender=DEBIAN_BLENDER, marker=str(folder / "crashed")
        )
    )
    wrapper.chmod(0o755)
    return wrapper


@real_farm
def test_blender_crashing_mid_chunk_is_retried_elsewhere(
    farm: LocalFarm, tmp_path: Path, scene: Path
) -> None:
    blender = crashing_blender(tmp_path / "bin")
    farm.start_coordinator("--no-zeroconf")
    workers = [
        farm.start_worker(name, blender=str(blender), wait_registered=False)
        for name in ("w1", "w2")
    ]
    wait_for(lambda: len(farm.client().workers()) == 2, 60, "both workers to register")
    out = tmp_path / "out"
    job_id = submit(farm.client(), scene, out)
    detail = assert_job_done_once(farm, job_id, out)
    assert (tmp_path / "bin" / "crashed").exists()
    task = detail["tasks"][0]
    assert task["attempts"] == 2
    failures = farm.client().task(task["id"])["failures"]
    assert len(failures) == 1
    reason = failures[0]["reason"]
    assert "Blender crashed (killed by SIGSEGV" in reason, reason
    assert "frames 2, 3 were not written" in reason
    crashed = next(w for w in farm.client().workers() if w["id"] == failures[0]["worker_id"])
    other = next(w for w in farm.client().workers() if w["id"] != crashed["id"])
    assert task["worker_id"] == other["id"]  # the crashing worker never got it again
    by_name = {w.name: w for w in workers}
    assert f"task {task['id']} failed: Blender crashed" in by_name[crashed["name"]].log()
    log = farm.coordinator.log() if farm.coordinator else ""
    assert f"task {task['id']} failed on {crashed['name']}: Blender crashed" in log
    assert "-> queued" in log
    # Blender's own crash report (its backtrace) is kept in the task log.
    assert "[blender crash] shot.crash.txt:" in task_log(farm, job_id)
    assert_workers_take_the_next_job(farm)


# ------------------------------------------------------ the output disk
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at path (root only); skips the test where mounting is denied."""
    path.mkdir(parents=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as ex:
        pytest.skip(f"cannot mount a tmpfs here ({ex}); this test needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as ex:
        assert ex.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def notes(client: FarmClient, job_id: int) -> set[str]:
    return {o["delivery_note"] for o in client.outputs(job_id)}


@real_farm
def test_full_then_read_only_output_disk_delivers_once_it_is_writable(
    farm: LocalFarm, tmp_path: Path, scene: Path
) -> None:
    """The frames stay in the coordinator's store while the artist's folder cannot
    be written, the job log says why, and the sweep delivers them later."""
    with small_disk(tmp_path / "disk", "256k") as out:
        filler = fill(out)
        farm.start_coordinator("--no-zeroconf")
        farm.start_worker("w", blender=DEBIAN_BLENDER)
        client = farm.client()
        job_id = submit(client, scene, out)
        job = farm.wait_for_job(job_id, timeout=120)
        assert job["status"] == "completed", job["status_reason"]  # rendering is done
        assert all(o["delivered_path"] is None for o in client.outputs(job_id))
        assert {n.split(": ")[-1] for n in notes(client, job_id)} == {"No space left on device"}
        assert sorted(os.listdir(out)) == ["filler"]  # no half-written frame left behind
        assert f"could not write {out}/frame_0001.png: No space left on device" in task_log(
            farm, job_id
        )

        _mount("-o", "remount,ro", str(out))
        wait_for(
            lambda: notes(client, job_id) == {f"could not write {out}/{n}: Read-only file system"
                                              for n in NAMES},
            30,
            "a delivery retry on the read-only disk",
        )  # fmt: skip
        _mount("-o", "remount,rw", str(out))
        filler.unlink()
        assert_job_done_once(farm, job_id, out)
        log = task_log(farm, job_id)
        assert "Read-only file system ===" in log
        assert farm.coordinator is not None
        admin = farm.coordinator.log()  # once per frame and problem, not once per retry
        assert f"job {job_id}: output frame_0001.png: could not write" in admin
        assert admin.count("Read-only file system") == 3
        assert_workers_take_the_next_job(farm)


# ------------------------------------------------ a connection cut mid-upload
class CuttingProxy:
    """A TCP proxy that cuts its connection once: by default in the middle of the
    first upload of an output (after the headers and a few body bytes); with
    method=b"GET", path=b"/inputs/", as the first merge input is asked for."""

    KEEP = 256  # body bytes of an upload that get through before the cut

    def __init__(
        self, upstream: int, *, method: bytes = b"PUT", path: bytes = b"/outputs/"
    ) -> None:
        self.upstream = upstream
        self.MARK = method + b" /api/v1/worker/tasks/"
        self.path = path
        self.keep = self.KEEP if method == b"PUT" else -4  # a GET is cut before its end
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.cut = threading.Event()
        self._armed = True
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
                link = _Link(client, upstream)
                threading.Thread(target=self._copy, args=(link,), daemon=True).start()
                threading.Thread(target=self._forward, args=(link,), daemon=True).start()

    def _copy(self, link: _Link) -> None:
        """Coordinator to client, as it is."""
        with contextlib.suppress(OSError):
            while data := link.upstream.recv(65536):
                link.client.sendall(data)
        link.done(link.client)

    def _forward(self, link: _Link) -> None:
        """Client to coordinator, cutting the first output upload short."""
        held = b""
        with contextlib.suppress(OSError):
            while data := link.client.recv(65536):
                if not held and self.MARK in data and self.path in data:
                    with self._lock:
                        cutting, self._armed = self._armed, False
                    if cutting:
                        held, data = data, b""
                elif held:
                    held += data
                if not held:
                    link.upstream.sendall(data)
                    continue
                end = held.find(b"\r\n\r\n")
                if end >= 0 and len(held) >= end + 4 + self.keep:
                    link.upstream.sendall(held[: max(0, end + 4 + self.keep)])
                    link.cut()
                    self.cut.set()
                    break
        link.done(link.upstream)


class _Link:
    """The two sockets of one proxied connection; closed once both directions end."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self._ended = 0
        self._lock = threading.Lock()

    def cut(self) -> None:
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def done(self, peer: socket.socket) -> None:
        """One direction ended: pass the end on to peer; close both after the second."""
        with contextlib.suppress(OSError):
            peer.shutdown(socket.SHUT_WR)
        with self._lock:
            self._ended += 1
            last = self._ended == 2
        if last:
            self.client.close()
            self.upstream.close()


@real_farm
def test_connection_cut_mid_upload_is_retried_and_leaves_no_partial_file(
    farm: LocalFarm, tmp_path: Path, scene: Path
) -> None:
    farm.start_coordinator("--no-zeroconf")
    proxy = CuttingProxy(farm.port)
    try:
        worker = start_worker_at(farm, "w", proxy.url)
        out = tmp_path / "out"
        job_id = submit(farm.client(), scene, out)
        detail = assert_job_done_once(farm, job_id, out)
        assert proxy.cut.is_set(), "the proxy never saw an output upload"
        task = detail["tasks"][0]
        assert task["attempts"] == 1
        assert "coordinator unreachable" in worker.log()
        assert farm.coordinator is not None
        log = farm.coordinator.log()
        assert f"PUT /api/v1/worker/tasks/{task['id']}/outputs/" in log
        assert "connection lost mid-request" in log
        assert "Traceback" not in log
        assert_workers_take_the_next_job(farm)
    finally:
        proxy.close()


@real_farm
def test_connection_cut_fetching_a_merge_input_is_waited_out(
    farm: LocalFarm, tmp_path: Path, scene: Path
) -> None:
    """A merge whose input download is cut (the coordinator restarting, a network
    blip) tries again rather than failing the attempt, as project files do."""
    farm.start_coordinator("--no-zeroconf")
    proxy = CuttingProxy(farm.port, method=b"GET", path=b"/inputs/")
    try:
        worker = start_worker_at(farm, "w", proxy.url)
        client = farm.client()
        files, _ = client.upload_project({"shot.blend": scene})
        out = tmp_path / "out"
        job = client.submit(
            {
                "name": "merge through a cut",
                "type": "blender-render-progressive",
                "blend": "shot.blend",
                "files": files,
                "blender_version": "3.4",
                "settings": {"frames": "1", "samples": 8, "chunks": 2, "output": str(out / "f_#")},
            }
        )
        done = farm.wait_for_job(job["id"], timeout=120)
        assert done["status"] == "completed", farm.describe()
        assert proxy.cut.is_set(), "the proxy never saw a merge input download"
        detail = client.job(job["id"])
        merges = [t for t in detail["tasks"] if t["kind"] == "merge"]
        assert merges and all(t["attempts"] == 1 for t in merges), merges
        assert "coordinator unreachable" in worker.log()
        assert sorted(os.listdir(out)) == ["f_1.png"]
    finally:
        proxy.close()


def start_worker_at(farm: LocalFarm, name: str, url: str) -> Child:
    """A worker that reaches the coordinator at url (the proxy) instead of farm.url."""
    real = farm.url
    child = farm.start_worker(name, "--coordinator", url, blender=DEBIAN_BLENDER)
    assert farm.url == real
    return child


# ------------------------------------------- a worker that leaves mid-poll
async def test_a_worker_that_signed_off_mid_poll_gets_no_task(make_client: MakeClient) -> None:
    """A worker interrupted while waiting for work signs off and exits; its poll used
    to stay open on the coordinator, claim the next job's task for it (and mark it
    online again), answer nobody, and hold the task until its lease ran out."""
    client = await make_client()
    worker = await register(client)
    poll = asyncio.create_task(client.post(f"{API}/worker/task?wait=30", headers=worker))
    await asyncio.sleep(0.2)
    resp = await client.post(f"{API}/worker/sign-off", headers=worker, json={})
    assert resp.status == 200
    job = await submit_sleep(client, count=1)
    resp = await asyncio.wait_for(poll, 5)
    assert resp.status == 204
    assert [t["status"] for t in (await get_job(client, job["id"]))["tasks"]] == ["queued"]
    workers = await (await client.get(f"{API}/workers", headers=AUTH)).json()
    assert [w["status"] for w in workers["workers"]] == ["offline"]


def test_a_worker_that_hung_up_mid_poll_gets_no_task(tmp_path: Path) -> None:
    """kill -9 while polling: the connection closes, nobody is left to answer. (A real
    coordinator: aiohttp's test server cancels handlers of lost connections, the
    production server does not.)"""
    with LocalFarm(root=tmp_path) as farm:
        farm.start_coordinator("--no-zeroconf")
        client = farm.client()
        creds = client.register_worker(name="w", host="h", blender_version="3.4", devices=[])
        with socket.create_connection((farm.host, farm.port)) as poll:
            poll.sendall(
                f"POST {API}/worker/task?wait=30 HTTP/1.1\r\nHost: x\r\nAuthorization:"
                f" Bearer {creds.secret}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            time.sleep(0.3)
        job = client.submit({"name": "j", "type": "sleep", "settings": {"task_count": 1}})
        time.sleep(0.5)
        assert [t["status"] for t in client.job(job["id"])["tasks"]] == ["queued"]
