"""A worker driven from a CLI test through FarmClient, in a thread: it takes
the tasks of one job and does what the test says with each, so `--wait`,
`wait`, `pull` and the followers can be tested without Blender."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from coordinator.client.http import FarmClient, WorkerCredentials
from coordinator.core.protocol import Assignment
from tests.cli.conftest import unique
from tests.support.coordinator_process import CoordinatorProcess

Handler = Callable[[FarmClient, Assignment], None]


class FakeWorker:
    """A worker driven from the test: takes the tasks of one job, in a thread."""

    def __init__(self, farm: CoordinatorProcess, job_name: str, *, sign_off: bool = False) -> None:
        self.farm, self.job_name = farm, job_name
        self.sign_off = sign_off  # leave when done, so it counts as no worker online
        self.errors: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def start(self, handle: Handler, *, tasks: int) -> None:
        def body() -> None:
            try:
                self._work(handle, tasks)
            except BaseException as ex:
                self.errors.append(ex)

        self._thread = threading.Thread(target=body, daemon=True)
        self._thread.start()

    def _work(self, handle: Handler, tasks: int) -> None:
        farm_client = self.farm.client()
        try:
            creds = farm_client.register_worker(
                name=unique("fake"), host="test", blender_version="4.2.0", devices=["CPU"]
            )
            self._wait_for_job(farm_client)
            worker = FarmClient(self.farm.url, token=creds.secret)
            try:
                self._run_tasks(worker, creds, handle, tasks)
                if self.sign_off:
                    worker.sign_off()
            finally:
                worker.session.close()
        finally:
            farm_client.session.close()

    def _wait_for_job(self, client: FarmClient) -> None:
        """Only start asking for work once our job (priority 100) is queued."""
        deadline = time.monotonic() + 15
        while not client.jobs(name=self.job_name)["jobs"]:
            assert time.monotonic() < deadline, f"job {self.job_name} never appeared"
            time.sleep(0.05)

    def _run_tasks(
        self,
        worker: FarmClient,
        creds: WorkerCredentials,
        handle: Handler,
        tasks: int,
    ) -> None:
        for _ in range(tasks):
            assignment = worker.next_task(wait=5)
            assert assignment is not None, "no task for the fake worker"
            assert assignment.job_name == self.job_name, assignment
            handle(worker, assignment)

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(20)
        assert not self._thread.is_alive()
        if self.errors:
            raise self.errors[0]


def render_frames(frames: dict[str, bytes], scratch: Path) -> Handler:
    """A fake render of one task: uploads `frames` (name -> bytes) as its outputs."""

    def render(worker: FarmClient, task: Assignment) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        for i, (file_name, data) in enumerate(frames.items(), 1):
            path = scratch / file_name
            path.write_bytes(data)
            worker.upload_output(task.task_id, path, name=file_name, frame=i)
        worker.complete_task(task.task_id)

    return render


def complete(worker: FarmClient, task: Assignment) -> None:
    worker.update_task(task.task_id, progress=0.5, log=f"hello from task {task.task_id}\n")
    worker.complete_task(task.task_id)


def fail(worker: FarmClient, task: Assignment) -> None:
    worker.fail_task(task.task_id, reason="boom", log="render died: out of memory\n")
