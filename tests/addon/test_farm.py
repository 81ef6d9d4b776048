"""The add-on's farm plumbing against real processes on loopback, without Blender:
a detached local farm, zeroconf discovery of it, and result sync.

Every Zeroconf is bound to 127.0.0.1; farm names are unique per run.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from coordinator.core.hashing import sha256_file
from coordinator.core.network import free_port
from flamenco_addon import local_farm, submitting
from flamenco_addon.background import Channel
from flamenco_addon.finder import Finder, label
from flamenco_addon.packing import Cancelled, Dependency, plan_pack
from flamenco_addon.submission import JobForm, SceneSnapshot
from flamenco_addon.sync import HashCache, JobRecord, JobRecords, Syncer, sync_job
from tests.support.addon_helpers import REPO, site_packages
from tests.support.localfarm import LocalFarm
from tests.support.waiting import wait_for

LO = ["127.0.0.1"]
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def farm_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "local-farm"
    yield root
    local_farm.stop(root, local_farm.WORKER, timeout=5)
    local_farm.stop(root, local_farm.COORDINATOR, timeout=5)


def test_local_farm_outlives_its_starter_is_found_and_stops(farm_root: Path) -> None:
    name = f"addon test farm {os.getpid()} {uuid.uuid4().hex[:4]}"
    # Started by a Python that then exits, as Blender does when it closes.
    starter = (
        "import json, sys; from pathlib import Path; from flamenco_addon import local_farm;"
        f" s = local_farm.start_coordinator(Path({str(farm_root)!r}), python=sys.executable,"
        f" pythonpath={[str(REPO), site_packages()]!r}, name={name!r}, lan=False);"
        " print(json.dumps({'url': s.url, 'token': s.token, 'pid': s.coordinator_pid}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", starter], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    started = json.loads(out.stdout.strip().splitlines()[-1])
    state = local_farm.status(farm_root)  # found again through the pid file
    assert state.running and state.coordinator_pid == started["pid"]
    assert os.getsid(started["pid"]) == started["pid"]  # its own session: no hangup from Blender's
    assert state.token and state.token == started["token"]
    assert FarmClient(state.url, token=state.token).jobs()["total"] == 0
    assert (
        local_farm.start_coordinator(  # a second Start finds the running one
            farm_root, python=sys.executable, pythonpath=[], name=name
        ).coordinator_pid
        == started["pid"]
    )

    finder = Finder()
    finder.start(online=False, interfaces=LO)
    try:
        wait_for(lambda: any(c.name == name for c in finder.entries()), what="the farm to appear")
        (found,) = [c for c in finder.entries() if c.name == name]
        assert found.url.endswith(f":{state.url.rsplit(':', 1)[-1]}")
        assert label(found).startswith(f"{name}: 0 workers")
        assert local_farm.stop(farm_root, local_farm.COORDINATOR)
        # its goodbye on the LAN, else the knock it no longer answers (2 x 3 s)
        wait_for(
            lambda: all(c.name != name for c in finder.entries()), timeout=25, what="the farm to go"
        )
    finally:
        finder.stop()
    assert not local_farm.status(farm_root).running
    assert not local_farm.stop(farm_root, local_farm.COORDINATOR)  # nothing left to stop


def test_the_worker_command_is_for_the_shell_of_this_kind_of_computer() -> None:
    # The token by environment (a command line is visible to every user in
    # `ps`), in the form the shell of that computer takes.
    command = functools.partial(local_farm.worker_command, "http://h:1")
    run = "blender -b -c farm_worker --coordinator http://h:1"
    assert command("tok", windows=False) == f"FARM_TOKEN=tok {run}"
    assert command("tok", windows=True) == f"$env:FARM_TOKEN='tok'; {run}"
    assert command("tok") == command("tok", windows=sys.platform == "win32")
    # a token a person chose may hold what a shell reads as its own
    posix = command("it's $HOME", windows=False)
    assert posix == f"FARM_TOKEN='it'\"'\"'s $HOME' {run}"
    said = subprocess.run(
        ["sh", "-c", posix.replace(run, "printenv FARM_TOKEN")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert said.stdout == "it's $HOME\n"
    assert command("it's $HOME", windows=True) == f"$env:FARM_TOKEN='it''s $HOME'; {run}"


def test_a_port_taken_between_choosing_and_binding_is_replaced(
    farm_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another program (here: a socket of this test) takes the port found free
    # before the coordinator binds it, as a parallel start can; seen from
    # here, that port keeps looking free. Start retries on a later port.
    asked: list[tuple[str, int]] = []

    def looks_free(host: str, *, start: int) -> int:
        asked.append((host, start))
        return busy if start <= busy else free_port(host, start=start)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(local_farm, "free_port", looks_free)
        state = local_farm.start_coordinator(
            farm_root, python=sys.executable, pythonpath=[str(REPO), site_packages()],
            name=f"port race {uuid.uuid4().hex[:4]}", lan=False, zeroconf_interfaces=LO,
        )  # fmt: skip
    assert state.running and not state.url.endswith(f":{busy}")
    # asked on the address it binds, each time after the ports already tried
    assert [host for host, _ in asked] == ["127.0.0.1", "127.0.0.1"]
    assert asked[1][1] == busy + 1
    assert FarmClient(state.url, token=state.token).jobs()["total"] == 0
    log = (farm_root / "coordinator.log").read_text()
    assert f"--port {busy} is taken" in log  # the first try did meet the taken port


def test_a_lan_farm_looks_for_a_port_free_on_every_address(
    farm_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A LAN farm binds 0.0.0.0: a port another program holds on one address
    # only (here a second loopback address, as a LAN one would be) is free on
    # 127.0.0.1 but not there, and the coordinator could never bind it.
    with socket.socket() as held:
        held.bind(("127.0.0.2", 0))
        held.listen()
        port = held.getsockname()[1]
        assert free_port("127.0.0.1", start=port, count=1) == port
        assert local_farm.free_port("0.0.0.0", start=port) != port
    asked: list[str] = []

    def no_port(host: str, *, start: int) -> int:
        asked.append(host)
        raise local_farm.LocalFarmError("no free port (this test stops here)")

    monkeypatch.setattr(local_farm, "free_port", no_port)
    with pytest.raises(local_farm.LocalFarmError, match="this test stops here"):
        local_farm.start_coordinator(farm_root, python=sys.executable, pythonpath=[], name="lan")
    assert asked == ["0.0.0.0"]  # a LAN farm's port is looked for where it binds


def test_a_port_the_artist_chose_is_not_silently_replaced(
    farm_root: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(local_farm.LocalFarmError, match=f"--port {busy} is taken"):
            local_farm.start_coordinator(
                farm_root, python=sys.executable, pythonpath=[str(REPO), site_packages()],
                name="chosen port", lan=False, port=busy, zeroconf_interfaces=LO,
            )  # fmt: skip
    assert not local_farm.status(farm_root).running


def test_a_farm_gone_without_a_goodbye_leaves_the_list_and_comes_back(farm_root: Path) -> None:
    # kill -9 (as a power cut): no goodbye on the LAN, its records would stay
    # cached for over an hour; the Finder's knocks take it off the list.
    name = f"silent farm {uuid.uuid4().hex[:6]}"
    start = functools.partial(
        local_farm.start_coordinator, farm_root, python=sys.executable,
        pythonpath=[str(REPO), site_packages()], name=name, lan=False, zeroconf_interfaces=LO,
    )  # fmt: skip
    state = start()
    finder = Finder()
    finder.start(online=False, interfaces=LO)
    try:
        listed = lambda: any(c.name == name for c in finder.entries())  # noqa: E731
        wait_for(listed, what="the farm to appear")
        assert state.coordinator_pid is not None
        os.kill(state.coordinator_pid, signal.SIGKILL)
        finder.changed.clear()
        wait_for(lambda: not listed(), timeout=25, what="the silent farm to leave the list")
        assert finder.changed.is_set()  # the panel was told
        # Restarted on the same port: it answers again, and is listed again
        start(port=int(state.url.rsplit(":", 1)[1]))
        wait_for(listed, timeout=25, what="the farm to come back")
    finally:
        finder.stop()


def test_a_stale_pid_file_never_signals_another_process(tmp_path: Path) -> None:
    (tmp_path / "coordinator.pid").write_text(str(os.getpid()))  # this pytest: not a coordinator
    assert local_farm.status(tmp_path).coordinator_pid is None
    assert not local_farm.stop(tmp_path, local_farm.COORDINATOR)


# ------------------------------------------------------------------ sync


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    with LocalFarm(root=tmp_path_factory.mktemp("farm")) as farm:
        farm.start_coordinator("--no-zeroconf")
        yield farm


def finished_job(farm: LocalFarm, frames: dict[str, bytes], tmp_path: Path) -> int:
    """A blender-render job with deliver=false of these frames, uploaded by a fake worker."""
    client = farm.client()
    blend = tmp_path / "shot.blend"
    blend.write_bytes(b"BLENDER-v304 fake")
    hashes, _ = client.upload_project({"shot.blend": blend})
    job = client.submit(
        {
            "name": "sync me",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": hashes,
            "deliver": False,
            "settings": {
                "frames": ",".join(name[2:6].lstrip("0") for name in frames),
                "chunk_size": 2,
                "output": "/elsewhere/f_####",
                "preview": False,  # one task, its frames: the fake worker renders no preview
            },
        }
    )
    creds = client.register_worker(name="fake", host="h", blender_version="4.2", devices=["CPU"])
    worker = client.with_token(creds.secret)
    task = worker.next_task(wait=5)
    assert task is not None
    for name, data in frames.items():
        path = tmp_path / name
        path.write_bytes(data)
        worker.upload_output(task.task_id, path, name=name, frame=int(name[2:6]))
    worker.complete_task(task.task_id)
    return int(job["id"])


def test_sync_fetches_each_frame_once(farm: LocalFarm, tmp_path: Path) -> None:
    frames = {"f_0001.png": b"one", "f_0002.png": b"two"}
    job_id = finished_job(farm, frames, tmp_path)
    out = tmp_path / "home"
    record = JobRecord(job_id, farm.url, str(tmp_path / "shot.blend"), "sync me", str(out), False)
    cache = HashCache()
    first = sync_job(farm.client(), record, cache=cache)
    assert sorted(first.fetched) == sorted(frames) and first.finished
    assert {p.name: p.read_bytes() for p in out.iterdir()} == frames
    again = sync_job(farm.client(), record, cache=cache)
    assert (again.fetched, again.present) == ([], 2)  # already home: not fetched twice
    (out / "f_0002.png").write_bytes(b"touched by the artist")
    kept = sync_job(farm.client(), JobRecord(**{**record.__dict__, "overwrite": False}))
    assert kept.kept == ["f_0002.png"] and kept.fetched == []
    replaced = sync_job(farm.client(), record)
    assert replaced.fetched == ["f_0002.png"]
    assert sha256_file(out / "f_0002.png") == sha256_file(tmp_path / "f_0002.png")


def test_sync_with_overwrite_off_refines_its_own_frames_only(
    farm: LocalFarm, tmp_path: Path
) -> None:
    """A progressive frame comes in noisy, then refined: with Overwrite off the
    refined one still replaces the download the sync made itself (remembered
    across Blender sessions), never a file of the artist's."""
    frames = {"f_0001.png": b"noisy preview", "f_0002.png": b"noisy 2"}
    job_id = finished_job(farm, frames, tmp_path)
    blend = str(tmp_path / "shot.blend")
    out = tmp_path / "home"
    records = JobRecords(tmp_path / "user" / "jobs.json")
    records.add(JobRecord(job_id, farm.url, blend, "j", str(out), deliver=False, overwrite=False))
    out.mkdir()
    (out / "f_0002.png").write_bytes(b"the artist's own")

    def session() -> Syncer:  # a new Blender session each time: state only in the records
        syncer = Syncer(JobRecords(records.path), lambda _url: farm.token)
        syncer.blends.add(os.path.normcase(os.path.abspath(blend)))
        return syncer

    session().run_once()
    assert (out / "f_0001.png").read_bytes() == b"noisy preview"
    # The farm refines frame 1 (a later merge uploads it again).
    client = farm.client()
    creds = client.register_worker(name="refiner", host="h", blender_version="4.2", devices=["CPU"])
    task_id = client.job(job_id)["tasks"][0]["id"]
    client.requeue_task(task_id)
    worker = client.with_token(creds.secret)
    task = worker.next_task(wait=5)
    assert task is not None and task.task_id == task_id
    for name, data in {"f_0001.png": b"refined", "f_0002.png": b"farm frame 2"}.items():
        (tmp_path / name).write_bytes(data)
        worker.upload_output(task_id, tmp_path / name, name=name, frame=int(name[2:6]))
    worker.complete_task(task_id)
    records.add(JobRecord(**{**records.load()[0].__dict__, "done": False}))
    session().run_once()
    assert (out / "f_0001.png").read_bytes() == b"refined"
    assert (out / "f_0002.png").read_bytes() == b"the artist's own"  # overwrite is off


def test_sync_resumes_from_the_records_when_the_file_is_opened_again(
    farm: LocalFarm, tmp_path: Path
) -> None:
    job_id = finished_job(farm, {"f_0001.png": b"x"}, tmp_path)
    blend = str(tmp_path / "shot.blend")
    records = JobRecords(tmp_path / "user" / "jobs.json")
    out = tmp_path / "frames"
    records.add(JobRecord(job_id, farm.url, blend, "j", str(out), deliver=False))
    records.add(JobRecord(999, farm.url, blend, "delivered", str(out), deliver=True))
    assert [r.job_id for r in records.for_blend(blend)] == [job_id, 999]
    # A new Blender session: a fresh Syncer reads the records and fetches.
    syncer = Syncer(JobRecords(records.path), lambda _url: farm.token)
    syncer.blends.add(os.path.normcase(os.path.abspath(blend)))
    assert [r.job_id for r in syncer.pending()] == [job_id]
    syncer.run_once()
    assert (out / "f_0001.png").read_bytes() == b"x"
    assert syncer.pending() == []  # done: the job ended and its frames are home
    assert syncer.status[job_id] == "1 frame(s) home"


def test_sync_says_why_it_cannot_reach_the_farm(tmp_path: Path) -> None:
    records = JobRecords(tmp_path / "jobs.json")
    blend = str(tmp_path / "a.blend")
    records.add(JobRecord(1, "http://127.0.0.1:9", blend, "j", str(tmp_path), deliver=False))
    syncer = Syncer(records, lambda _url: "")
    syncer.blends.add(os.path.normcase(blend))
    syncer.run_once()
    assert "can't sync" in syncer.status[1] and "cannot reach" in syncer.status[1]


# ------------------------------------------------------------ submitting


def submission(farm: LocalFarm, tmp_path: Path, payload: bytes) -> submitting.Submission:
    """A Submission whose 'rewrite' is a no-op Python: the farm side is what is tested."""
    project = tmp_path / "project"
    (project / "tex").mkdir(parents=True, exist_ok=True)
    (project / "tex" / "big.bin").write_bytes(payload)
    blend = project / "shot.blend"
    blend.write_bytes(b"BLENDER-v304 fake")
    plan = plan_pack(str(blend), [Dependency("image", "big", str(project / "tex" / "big.bin"))])
    pack = tmp_path / "pack"
    pack.mkdir(exist_ok=True)
    (pack / "shot.blend").write_bytes(blend.read_bytes())
    snap = SceneSnapshot(str(blend), "Scene", "Camera", 1, 2, 1, "//out/f_####", "PNG")
    return submitting.Submission(
        client=farm.client(),
        plan=plan,
        pack_root=pack,
        rewrite_command=[sys.executable, "-c", "print('REWRITE_DONE')"],
        snapshot=snap,
        form=JobForm(chunk_size=1),
        deliver=True,
    )


class CancelOnUpload(Channel):
    """Presses Cancel as soon as bytes start going out."""

    def progress(self, stage: str, fraction: float, text: str) -> None:
        super().progress(stage, fraction, text)
        if stage == "upload":
            self.cancel.set()


def test_submitting_uploads_only_what_the_farm_lacks(farm: LocalFarm, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    sub = submission(farm, tmp_path, payload)
    channel = Channel()
    job = submitting.run(sub, channel)
    assert job["_uploaded_bytes"] >= len(payload)
    stages = [m.stage for m in channel.drain(budget=1.0) if hasattr(m, "stage")]
    assert stages[0] == "prepare" and "upload" in stages and stages[-1] == "submit"
    again = submitting.run(sub, Channel())  # unchanged project: nothing new to send
    assert again["_uploaded_bytes"] == 0
    assert "nothing new to upload" in submitting.done_text(again)


# Saves like Blender does: the same scene, different bytes each time.
NOISY_REWRITE = (
    "import json, os, sys; job = json.load(open(sys.argv[-1]));"
    " [open(b['save'], 'wb').write(open(b['open'], 'rb').read() + os.urandom(16))"
    " for b in job['blends']]; print('REWRITE_DONE')"
)


def test_an_unchanged_blend_is_neither_prepared_nor_uploaded_again(
    farm: LocalFarm, tmp_path: Path
) -> None:
    sub = submission(farm, tmp_path, os.urandom(100_000))
    runs = tmp_path / "rewrites.txt"
    command = [sys.executable, "-c", f"open({str(runs)!r}, 'a').write('x'); {NOISY_REWRITE}"]
    source = tmp_path / "project" / "shot.blend"
    cached = replace(
        sub,
        rewrite_command=command,
        main_source=str(source),
        cache_path=tmp_path / "user" / "prepared.json",
    )
    first = submitting.run(cached, Channel())
    assert first["_uploaded_bytes"] > 100_000
    second = submitting.run(cached, Channel())
    assert second["_uploaded_bytes"] == 0
    assert runs.read_text() == "x"  # the copy was not prepared again
    assert farm.client().job(second["id"])["blend"] == first["blend"]

    source.write_bytes(b"BLENDER-v304 the artist saved a change")
    third = submitting.run(cached, Channel())
    assert 0 < third["_uploaded_bytes"] < 100_000  # the new .blend only, not the texture
    assert runs.read_text() == "xx"

    uncached = replace(cached, cache_path=None)
    assert submitting.run(uncached, Channel())["_uploaded_bytes"] > 0  # what the cache saves


def test_cancel_during_upload_creates_no_job(farm: LocalFarm, tmp_path: Path) -> None:
    before = farm.client().jobs()["total"]
    sub = submission(farm, tmp_path, os.urandom(3_000_000))
    with pytest.raises(Cancelled):
        submitting.run(sub, CancelOnUpload())
    assert farm.client().jobs()["total"] == before


def test_a_wrong_token_is_refused_before_any_work(farm: LocalFarm, tmp_path: Path) -> None:
    sub = submission(farm, tmp_path, b"x")
    bad = submitting.Submission(**{**sub.__dict__, "client": farm.client().with_token("nope")})
    channel = Channel()
    with pytest.raises(Exception) as caught:
        submitting.run(bad, channel)
    assert "refused the farm token" in submitting.artist_message(caught.value)
    assert not (sub.pack_root / ".work").exists()  # the copy was never prepared


def test_a_blends_digest_ignores_the_stack_address_blender_wrote(tmp_path: Path) -> None:
    """Two writes of the same data from different call depths differ only there."""
    from flamenco_addon.packcache import blend_digest

    header = b"BLENDER-v304GLOB" + (152).to_bytes(4, "little")
    body = b"\x98\x00\x00\x00\x01\x00\x00\x00   6 the scene"
    one, two, other = tmp_path / "1.blend", tmp_path / "2.blend", tmp_path / "3.blend"
    one.write_bytes(header + bytes.fromhex("d0b0cc7efc7f0000") + body)
    two.write_bytes(header + bytes.fromhex("20b1cc7efc7f0000") + body)
    other.write_bytes(header + bytes.fromhex("20b1cc7efc7f0000") + body + b"!")
    assert blend_digest(one) == blend_digest(two) != blend_digest(other)
    plain = tmp_path / "tex.png"
    plain.write_bytes(b"\x89PNG not a blend")
    assert blend_digest(plain) == sha256_file(plain)
