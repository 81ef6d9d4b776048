"""What the dashboard's browser tests share: the farm they drive, signing in, and
jobs moved along by a fake worker through FarmClient (the fixtures that start
the coordinator and Chromium are in conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.client.http import FarmClient

TOKEN = "dashboard-test-token"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 8000


@dataclass(frozen=True)
class Farm:
    url: str  # the coordinator's address
    api: FarmClient  # with the farm token
    root: Path  # tmp folder of this module


def sign_in(page: Any, farm: Farm, token: str = TOKEN) -> None:
    page.goto(f"{farm.url}/")
    page.get_by_label("Farm token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def sleep_job(farm: Farm, name: str, *, tasks: int = 3, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = farm.api.submit(
        {
            "name": name,
            "type": "sleep",
            "settings": {"task_count": tasks, "seconds": 1},
            "submitter": extra.pop("submitter", "ana@desk-3"),
            **extra,
        }
    )
    return job


def fake_worker(farm: Farm, name: str, *, blender: str = "4.2.3") -> FarmClient:
    creds = farm.api.register_worker(
        name=name, host=f"{name}.lan", blender_version=blender, devices=["CPU", "CUDA:0 RTX 4090"]
    )
    return FarmClient(farm.url, token=creds.secret)


def claim_of(worker: FarmClient, job_id: int) -> Any:
    task = worker.next_task(wait=0)
    assert task is not None and task.job_id == job_id, task
    return task


def render_job(
    farm: Farm, tmp_path: Path, name: str, *, frames: str, chunk_size: int = 4, **extra: Any
) -> dict[str, Any]:
    """A blender-render job with a stand-in .blend (the fake worker never opens it);
    extra: more of the job's fields."""
    blend = tmp_path / f"{name}.blend"
    blend.write_bytes(b"BLENDER-v304REND" + os.urandom(512))
    hashes, _ = farm.api.upload_project({f"{name}.blend": blend})
    job: dict[str, Any] = farm.api.submit(
        {
            "name": name,
            "type": "blender-render",
            "blend": f"{name}.blend",
            "files": hashes,
            "blender_version": "4.2",
            "submitter": "ana@desk-3",
            "priority": 100,
            "deliver": False,  # frames stay on the farm: the path is only for the picture
            "settings": {
                "frames": frames,
                "chunk_size": chunk_size,
                "output": f"/srv/projects/{name}/render/frame_####",
            },
            **extra,
        }
    )
    return job
