"""Files ahead of time: while a task renders, the agent fetches the next job's files.

A real coordinator app on a real SQLite file, served on 127.0.0.1 from a
thread, with a middleware in front of its file downloads that can serve a
file corrupted or cut off; the agent runs in this process with the fake
Blender of test_agent_loop. Job A (one task) is rendered first; job B comes
next and has a 3 MB file: it must be in the cache before B's first task is
claimed, fetched once in all, and a prefetch that goes wrong must cost nothing.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import web

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.protocol import API_PREFIX, Assignment
from coordinator.server.app import create_app
from coordinator.server.keys import FARM
from tests.conftest import TOKEN, make_config
from tests.support.threaded_app import served_in_thread
from tests.worker_agent.conftest import LiveFarm
from tests.worker_agent.test_agent_loop import (
    config,
    fake_blender,
    run,
    signal_handlers,  # noqa: F401 (a fixture: cli.main installs signal handlers)
)
from worker_agent import cli
from worker_agent.agent import Agent, AgentConfig
from worker_agent.cache import BlobCache
from worker_agent.kinds import KINDS
from worker_agent.prefetch import Prefetcher, PrefetchLimits
from worker_agent.task_run import TaskRun

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SHA_A = "a" * 64
SHA_B = "b" * 64


@dataclass
class Faults:
    """What the file downloads do: sha -> faults to serve, one per request, in order."""

    serve: dict[str, list[str]] = field(default_factory=dict)
    gets: list[str] = field(default_factory=list)  # sha of every file download asked for

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        prefix = f"{API_PREFIX}/files/"
        if request.method != "GET" or not request.path.startswith(prefix):
            return await handler(request)
        sha = request.path[len(prefix) :]
        self.gets.append(sha)
        pending = self.serve.get(sha)
        if not pending:
            return await handler(request)
        fault = pending.pop(0)
        data = request.app[FARM].files.blob_path(sha).read_bytes()
        if fault == "corrupt":  # every byte there, one of them wrong
            return web.Response(body=bytes([data[0] ^ 0xFF]) + data[1:])
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        assert request.transport is not None
        request.transport.close()  # "cut": the connection drops halfway
        return response


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def farm(tmp_path: Path, faults: Faults) -> Iterator[LiveFarm]:
    app = create_app(make_config(tmp_path / "farm", lease=10.0))
    app.middlewares.append(faults.middleware)
    with served_in_thread(app, "coordinator") as url:
        yield LiveFarm(url, FarmClient(url, token=TOKEN), tmp_path)


def no_preview(run: TaskRun) -> None:
    """A job's preview movie (when its job type makes one) is not what is tested here."""
    run.report(progress=1.0)


class Recording(Agent):
    """The agent, noting for each task it got whether its job's files were all in the
    cache at that moment (before any of its own fetching)."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config, kinds={**KINDS, "preview": no_preview})
        self.cached_at_claim: dict[int, bool] = {}

    def _run_task(self, client: FarmClient, assignment: Assignment) -> Assignment | None:
        here = all(self.cache.has(sha) for sha in assignment.files.values())
        self.cached_at_claim.setdefault(assignment.job_id, here)
        return super()._run_task(client, assignment)


def submit(farm: LiveFarm, name: str, files: dict[str, bytes]) -> tuple[int, dict[str, str]]:
    """A one-task render job of these project files; -> (job id, relpath -> sha)."""
    folder = farm.root / name
    paths = {}
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[rel] = path
    hashes, _ = farm.client.upload_project(paths)
    body = {
        "name": name,
        "type": "blender-render",
        "blend": "shot.blend",
        "files": hashes,
        "settings": {
            "frames": "1-2",
            "chunk_size": 2,
            "output": str(farm.root / f"out-{name}" / "frame_####"),
            "file_format": "PNG",
        },
    }
    return int(farm.client.submit(body)["id"]), hashes


def two_jobs(farm: LiveFarm) -> tuple[int, int, str]:
    """Job A, then job B with a 3 MB texture; -> (A, B, the texture's sha)."""
    a, _ = submit(farm, "A", {"shot.blend": b"BLENDER-v304 job A"})
    texture = os.urandom(3 << 20)
    b, files = submit(farm, "B", {"shot.blend": b"BLENDER-v304 job B", "tex/wood.png": texture})
    return a, b, files["tex/wood.png"]


def render_both(farm: LiveFarm, a: int, b: int, **options: Any) -> Recording:
    # pause: A's task lasts about two seconds, time enough to fetch B's 3 MB
    agent = Recording(
        config(farm, fake_blender(farm.root / "bin", pause=0.5), burst=True, **options)
    )
    assert run(agent) == 0
    for job_id in (a, b):
        job = farm.client.job(job_id)
        assert job["status"] == "completed", job
    return agent


def first_task_log(farm: LiveFarm, job_id: int) -> str:
    """The log of the job's render task (its first)."""
    task = farm.client.tasks(job_id)["tasks"][0]
    assert task["kind"] == "render"
    return farm.client.task_log(task["id"])


def test_the_next_jobs_files_are_in_the_cache_before_its_first_task_is_claimed(
    farm: LiveFarm, faults: Faults
) -> None:
    a, b, texture = two_jobs(farm)
    agent = render_both(farm, a, b)
    assert agent.cached_at_claim == {a: False, b: True}
    assert agent.prefetcher is not None and agent.prefetcher.fetched_jobs == [b]
    assert "project files ready (0 downloaded, 2 from cache)" in first_task_log(farm, b)
    assert faults.gets.count(texture) == 1  # fetched ahead once, not again for the task


def test_without_prefetch_the_task_fetches_its_files(farm: LiveFarm, faults: Faults) -> None:
    a, b, texture = two_jobs(farm)
    agent = render_both(farm, a, b, prefetch=None)
    assert agent.cached_at_claim == {a: False, b: False}
    assert "project files ready (2 downloaded, 0 from cache)" in first_task_log(farm, b)
    assert faults.gets.count(texture) == 1


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
def test_a_prefetch_served_corrupt_or_cut_fails_nothing(
    farm: LiveFarm, faults: Faults, fault: str
) -> None:
    a, b, texture = two_jobs(farm)
    faults.serve[texture] = [fault]  # the first download of it: the prefetch's
    agent = render_both(farm, a, b)
    assert faults.serve[texture] == []  # the fault was served
    # The broken download was not kept; it was fetched again once more: by the
    # look-ahead of A's next task, if A has one (a preview), else by B's task itself
    # (or by both at once: the one waits for the other's download).
    assert faults.gets.count(texture) == 2
    assert agent.prefetcher is not None and agent.prefetcher.fetched_jobs in ([], [b])
    assert "project files ready (" in first_task_log(farm, b)
    for job_id in (a, b):
        for task in farm.client.tasks(job_id)["tasks"]:
            assert task["attempts"] == 1, task
    assert agent.cache.has(texture)  # verified when the task fetched it
    assert not list(agent.cache.blobs.rglob("*.part"))  # no half file left behind


# ------------------------------------------------ the coordinator's word, checked


def prefetcher(tmp_path: Path, **limits: int) -> Prefetcher:
    return Prefetcher(BlobCache(tmp_path / "cache"), PrefetchLimits(**limits))


def answer(**fields: Any) -> dict[str, Any]:
    base = {
        "job_id": 7,
        "blend": "shot.blend",
        "files": {"shot.blend": SHA_A, "tex/wood.png": SHA_B},
        "sizes": {SHA_A: 100, SHA_B: 2000},
    }
    return {**base, **fields}


def test_a_plan_fetches_what_the_cache_lacks(tmp_path: Path) -> None:
    plan = prefetcher(tmp_path).plan(answer(), current_job=3)
    assert plan is not None and plan.job_id == 7
    assert plan.missing == {SHA_A: 100, SHA_B: 2000}


@pytest.mark.parametrize(
    "reply",
    [
        None,
        [],
        {"job_id": None},
        {"job_id": 3},  # the job it renders now: its files are here
        answer(job_id=3),
    ],
)
def test_nothing_to_fetch(tmp_path: Path, reply: Any) -> None:
    assert prefetcher(tmp_path).plan(reply, current_job=3) is None


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (answer(files={"../../etc/passwd": SHA_A}), "project path"),
        (answer(files={"/abs/shot.blend": SHA_A}), "project path"),
        (answer(files={"C:/shot.blend": SHA_A}), "project path"),
        (answer(files={"shot.blend": "not-a-hash"}), "no sha256"),
        (answer(files={"shot.blend": SHA_A + "\n"}), "no sha256"),
        (answer(sizes={SHA_A: -1}), "not a number of bytes"),
        (answer(sizes={SHA_A: 1 << 60}), "not a number of bytes"),
        (answer(sizes={SHA_A: True}), "not a number of bytes"),
        (answer(sizes={"../x": 1}), "not a sha256"),
        (answer(job_id=True), "job id"),
        (answer(job_id="7"), "job id"),
        (answer(files=["shot.blend"]), "must be objects"),
    ],
)
def test_an_answer_that_fails_a_check_is_not_fetched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, reply: Any, said: str
) -> None:
    assert prefetcher(tmp_path).plan(reply, current_job=3) is None
    assert said in caplog.text


def test_the_limits_hold(tmp_path: Path) -> None:
    assert prefetcher(tmp_path, max_bytes=2099).plan(answer(), current_job=3) is None
    assert prefetcher(tmp_path, max_bytes=2100).plan(answer(), current_job=3) is not None
    everything = prefetcher(tmp_path).cache.free_bytes()
    assert prefetcher(tmp_path, keep_free=everything).plan(answer(), current_job=3) is None


def test_a_file_longer_than_its_size_is_not_kept(farm: LiveFarm) -> None:
    """The download stops at the size the coordinator gave for it."""
    path = farm.root / "big.bin"
    path.write_bytes(os.urandom(5000))
    (sha,) = farm.client.upload_project({"big.bin": path})[0].values()
    cache = BlobCache(farm.root / "cache")
    with pytest.raises(FarmClientError, match="longer than 4999 bytes"):
        cache.fetch(farm.client, sha, max_bytes=4999)
    assert not cache.has(sha)
    assert cache.fetch(farm.client, sha, max_bytes=5000) == (cache.path(sha), True)


def test_the_coordinator_says_the_next_job(farm: LiveFarm) -> None:
    """GET /worker/upcoming: what a claim would give, with files unless it is warm_job;
    nothing is claimed."""
    a, _ = submit(farm, "A", {"shot.blend": b"BLENDER-v304 job A"})
    creds = farm.client.register_worker(name="w", host="h", blender_version="3.4.1", devices=[])
    worker = farm.client.with_token(creds.secret)
    said = worker.upcoming()
    (sha,) = said["files"].values()
    assert said == {
        "job_id": a,
        "blend": "shot.blend",
        "files": {"shot.blend": sha},
        "sizes": {sha: len(b"BLENDER-v304 job A")},
    }
    assert worker.upcoming(warm_job=a) == {"job_id": a}
    task = farm.client.tasks(a)["tasks"][0]
    assert task["status"] == "queued"  # nothing claimed
    with pytest.raises(FarmClientError, match="warm_job"):
        worker._json("GET", "/worker/upcoming", params={"warm_job": "x"})
    assert worker.next_task(wait=0) is not None
    # its only render task is taken (and anything after it waits for it)
    assert worker.upcoming(warm_job=a) == {"job_id": None}


# ------------------------------------------------------------ the worker command


def test_the_worker_command_refuses_a_negative_prefetch_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--prefetch-gb", "-1", "--token", "x" * 20]) == 2
    err = capsys.readouterr().err
    assert err == "error: --prefetch-gb must be 0 or more\n"


@pytest.mark.usefixtures("signal_handlers")
@pytest.mark.parametrize(
    ("given", "limits"),
    [
        ([], PrefetchLimits()),
        (["--prefetch-gb", "0.5"], PrefetchLimits(max_bytes=1 << 29)),
        (["--prefetch-gb", "0"], None),
    ],
)
def test_the_worker_command_passes_its_prefetch_limit(
    tmp_path: Path, given: list[str], limits: PrefetchLimits | None
) -> None:
    argv = ["--coordinator", "http://127.0.0.1:9", "--token", "x" * 20]
    argv += ["--blender", str(fake_blender(tmp_path / "bin")), "--cache-dir", str(tmp_path)]
    with mock.patch.object(cli, "Agent", autospec=True) as made:
        made.return_value.run.return_value = 0
        assert cli.main(argv + given) == 0
    assert made.call_args.args[0].prefetch == limits
