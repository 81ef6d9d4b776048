"""A coordinator that lies: the real app on 127.0.0.1, with crafted replies.

The real app (real SQLite, real auth) answers everything, so jobs, tasks and
failures are real; a middleware inside it then rewrites the replies a test
names: the outputs a job lists (names with "..", absolute paths, drives), the
bytes it serves for them, a job's output setting, and the fields of an
assignment a worker claims. What a receiver does with them is what is tested.
Every request is recorded, so a test can show what was (not) fetched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from coordinator.client.http import FarmClient
from coordinator.core.protocol import API_PREFIX
from coordinator.server.app import create_app
from tests.conftest import TOKEN, make_config
from tests.support.threaded_app import served_in_thread

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_OUTPUTS = re.compile(re.escape(API_PREFIX) + r"/jobs/(\d+)/outputs")
_OUTPUT = re.compile(re.escape(API_PREFIX) + r"/jobs/(\d+)/outputs/(.+)")
_JOB = re.compile(re.escape(API_PREFIX) + r"/jobs/(\d+)")
_JOBS = API_PREFIX + "/jobs"
_CLAIM = API_PREFIX + "/worker/task"


@dataclass
class CraftedFarm:
    url: str  # http://127.0.0.1:port
    token: str  # the farm token the real app accepts
    # job id -> {name: bytes}: GET /jobs/{id}/outputs lists these names, and
    # GET /jobs/{id}/outputs/{name} serves the bytes.
    outputs: dict[int, dict[str, bytes]] = field(default_factory=dict)
    settings: dict[int, dict[str, Any]] = field(default_factory=dict)  # merged into job replies
    created: dict[str, Any] = field(default_factory=dict)  # merged into POST /jobs' settings
    # job name -> fields merged into the assignments of its tasks (by name: a worker
    # may claim a task before its job's id is back to the test)
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # "METHOD /path" of every request

    def client(self) -> FarmClient:
        return FarmClient(self.url, token=self.token)

    def fetched(self, job_id: int) -> list[str]:
        """The output names a client downloaded from a crafted job."""
        prefix = f"GET {API_PREFIX}/jobs/{job_id}/outputs/"
        return [r[len(prefix) :] for r in self.requests if r.startswith(prefix)]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        crafted = self._crafted_output(request)
        if crafted is not None:
            return crafted
        response = await handler(request)
        if request.method == "POST" and request.path == _JOBS and self.created:
            return _patched(response, lambda d: d["settings"].update(self.created))
        job = _JOB.fullmatch(request.path)
        if job and int(job[1]) in self.settings:
            return _patched(response, lambda d: d["settings"].update(self.settings[int(job[1])]))
        if request.path == _CLAIM and isinstance(response, web.Response) and response.body:
            claimed = json.loads(bytes(response.body))  # type: ignore[arg-type]
            craft = self.assignments.get(str(claimed["job_name"]))
            if craft is not None:
                return web.json_response({**claimed, **craft})
        return response

    def _crafted_output(self, request: web.Request) -> web.StreamResponse | None:
        listing = _OUTPUTS.fullmatch(request.path)
        if listing and int(listing[1]) in self.outputs:
            files = self.outputs[int(listing[1])]
            return web.json_response(
                {"outputs": [_output(name, data) for name, data in files.items()]}
            )
        one = _OUTPUT.fullmatch(request.path)
        if one and int(one[1]) in self.outputs:
            data = self.outputs[int(one[1])].get(one[2])
            return web.Response(body=data) if data is not None else web.Response(status=404)
        return None


def _output(name: str, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    return {"name": name, "sha256": digest, "size": len(data), "task_id": 1, "frame": 1}


def _patched(
    response: web.StreamResponse, change: Callable[[dict[str, Any]], None]
) -> web.Response:
    assert isinstance(response, web.Response) and response.body is not None
    data = json.loads(bytes(response.body))  # type: ignore[arg-type]
    change(data)
    return web.json_response(data, status=response.status)


@contextmanager
def crafted_farm(data_dir: Path) -> Iterator[CraftedFarm]:
    """The real coordinator app, lying where told, served from a thread on 127.0.0.1."""
    farm = CraftedFarm("", TOKEN)  # its address once it serves
    app = create_app(make_config(data_dir, lease=10.0))
    app.middlewares.append(farm.middleware)  # innermost: after the real auth
    with served_in_thread(app, "crafted coordinator") as farm.url:
        yield farm


def files_under(root: Path) -> dict[str, bytes | str]:
    """Every file and link under root (relative path -> bytes, or a link's target)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = f"-> {path.readlink()}"
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found
