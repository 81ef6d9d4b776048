"""Shared fixtures: a real coordinator app on a real SQLite file in tmp."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from coordinator.server.app import create_app
from coordinator.server.config import AppConfig, FarmConfig
from coordinator.server.farm import Farm
from coordinator.server.filestore import FileStore
from coordinator.server.hub import Hub
from coordinator.server.keys import FARM
from coordinator.server.store import Store
from tests.support import components
from tests.support.openapi_check import CheckedClient
from tests.support.waiting import wait_until as wait_until

TOKEN = "test-farm-token-strong"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked with a component it needs is skipped, saying what to install,
    when that component is missing (an error under make test)."""
    for marker in components.COMPONENT_MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        what = components.missing(marker)
        if what is None:
            continue
        if components.required():
            pytest.fail(f"needs {what}; {components.REQUIRE_ENV} is set", pytrace=False)
        pytest.skip(f"needs {what}")


@pytest.fixture(autouse=True, scope="session")
def _data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Per-user data (the CLI's record of submitted jobs, a default coordinator's
    folder) goes to a folder of this test run, in this process and every one it
    starts, never to the real home's (core.datadirs reads these variables)."""
    home = tmp_path_factory.mktemp("data-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(home))
        patch.setenv("LOCALAPPDATA", str(home))
        yield home


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_config(data_dir: Path, *, lease: float = 5.0, sweep: float = 0.05) -> AppConfig:
    return AppConfig(
        farm=FarmConfig(data_dir=data_dir, name="test farm", token=TOKEN, lease_seconds=lease),
        sweep_interval=sweep,
    )


@pytest.fixture
def aiohttp_client_cls() -> type[TestClient[Any, Any]]:
    """Every test client (make_client's, client, aiohttp_client's) checks each API
    answer against the OpenAPI document: an undocumented status or field fails
    the test that received it (tests/support/openapi_check.py)."""
    return CheckedClient


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], tmp_path: Path
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def factory(*, data_dir: Path | None = None, lease: float = 5.0) -> TestClient[Any, Any]:
        return await aiohttp_client(
            create_app(make_config(data_dir or tmp_path / "farm", lease=lease))
        )

    return factory


@pytest.fixture
async def client(
    make_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> TestClient[Any, Any]:
    return await make_client()


@pytest.fixture
def make_farm(tmp_path: Path) -> Iterator[Callable[..., Farm]]:
    """Farms without HTTP (the services over a real SQLite file in tmp), for
    tests that drive them directly; each store is closed afterwards."""
    stores: list[Store] = []

    def factory(name: str = "farm", *, lease: float = 60.0) -> Farm:
        data_dir = tmp_path / name
        data_dir.mkdir(exist_ok=True)
        store = Store(data_dir / "farm.sqlite3")
        stores.append(store)
        config = FarmConfig(data_dir=data_dir, name=name, token=TOKEN, lease_seconds=lease)
        return Farm(config, store, FileStore(data_dir, max_upload=1 << 20), Hub())

    yield factory
    for store in stores:
        store.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def register(
    client: TestClient[Any, Any], name: str = "w1", blender: str = "4.2.0"
) -> dict[str, str]:
    """Register a worker; returns headers carrying its secret."""
    resp = await client.post(
        "/api/v1/workers", json={"name": name, "blender_version": blender}, headers=AUTH
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return {"Authorization": f"Bearer {body['secret']}", "X-Worker-Id": body["worker_id"]}


async def submit_sleep(
    client: TestClient[Any, Any], *, count: int = 2, seconds: float = 0, **extra: Any
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/jobs",
        headers=AUTH,
        json={
            "name": extra.pop("name", "sleepy"),
            "type": "sleep",
            "settings": {"task_count": count, "seconds": seconds},
            **extra,
        },
    )
    assert resp.status == 201, await resp.text()
    job: dict[str, Any] = await resp.json()
    return job


# ---------------------------------------------------------------------------
# Helpers for the API suites (test_api_*.py, test_restart.py): small async
# wrappers over the worker protocol so each test reads as the scenario it is.

API = "/api/v1"


async def claim(
    client: TestClient[Any, Any], worker: dict[str, str], *, wait: float = 0
) -> dict[str, Any] | None:
    """One long-poll for work: the assignment, or None on 204."""
    resp = await client.post(f"{API}/worker/task?wait={wait}", headers=worker)
    if resp.status == 204:
        return None
    assert resp.status == 200, await resp.text()
    task: dict[str, Any] = await resp.json()
    return task


async def finish(client: TestClient[Any, Any], worker: dict[str, str], task_id: int) -> None:
    resp = await client.post(f"{API}/worker/tasks/{task_id}/complete", headers=worker)
    assert resp.status == 200, await resp.text()


async def get_job(client: TestClient[Any, Any], job_id: int) -> dict[str, Any]:
    resp = await client.get(f"{API}/jobs/{job_id}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    job: dict[str, Any] = await resp.json()
    return job


async def get_task(client: TestClient[Any, Any], task_id: int) -> dict[str, Any]:
    resp = await client.get(f"{API}/tasks/{task_id}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    task: dict[str, Any] = await resp.json()
    return task


async def upload_blob(client: TestClient[Any, Any], data: bytes) -> str:
    digest = sha(data)
    resp = await client.put(f"{API}/files/{digest}", data=data, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return digest


async def submit_render(
    client: TestClient[Any, Any], output: str, *, frames: str = "1-4", **settings: Any
) -> dict[str, Any]:
    """A blender-render job whose .blend is uploaded first, as the add-on does."""
    blend_sha = await upload_blob(client, b"BLENDER-v304 not really a blend")
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={
            "name": "shot",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": {"shot.blend": blend_sha},
            "settings": {"frames": frames, "output": output, "chunk_size": 2, **settings},
        },
    )
    assert resp.status == 201, await resp.text()
    job: dict[str, Any] = await resp.json()
    return job


async def submit_progressive(
    client: TestClient[Any, Any], output: Path, **settings: Any
) -> dict[str, Any]:
    """A blender-render-progressive job of frame 1 in 2 sample chunks (settings override)."""
    blend_sha = await upload_blob(client, b"BLENDER-v304 not really a blend")
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={
            "name": "progressive",
            "type": "blender-render-progressive",
            "blend": "shot.blend",
            "files": {"shot.blend": blend_sha},
            "settings": {
                "frames": "1",
                "samples": 8,
                "chunks": 2,
                "output": str(output / "frame_####"),
                **settings,
            },
        },
    )
    assert resp.status == 201, await resp.text()
    job: dict[str, Any] = await resp.json()
    return job


# ---------------------------------------------------------------------------
# The app's routes, for tests that walk all of them (security, OpenAPI).

PUBLIC = {("GET", f"{API}/health"), ("GET", f"{API}/version"), ("POST", f"{API}/proof")}
# Sensible values for each path parameter, so a request reaches its handler.
PATH_VALUES = {
    "job_id": "1",
    "task_id": "1",
    "sha256": "0" * 64,
    "name": "frame_0001.png",
    "worker_id": "0",
}


def api_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every API route the app serves, HEAD aside."""
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD" and path and path.startswith(API):
            out.add((route.method, path))
    return sorted(out)


def concrete(template: str, **values: str) -> str:
    """A path template with its {params} filled in (PATH_VALUES unless given)."""
    return re.sub(r"\{(\w+)\}", lambda m: {**PATH_VALUES, **values}[m[1]], template)


def app_of(client: TestClient[Any, Any]) -> web.Application:
    """The application behind a test client (its server's, typed)."""
    app = client.app
    assert isinstance(app, web.Application)
    return app


def farm_of(client: TestClient[Any, Any]) -> Farm:
    """The farm behind a test client, for driving its services by hand
    (`farm_of(client).sweeps.sweep(now=...)`)."""
    return app_of(client)[FARM]
