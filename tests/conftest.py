"""Shared fixtures: a real coordinator app on a real SQLite file in tmp."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.app import AppConfig, create_app
from coordinator.farm import FarmConfig

TOKEN = "test-farm-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_config(data_dir: Path, *, lease: float = 5.0, sweep: float = 0.05) -> AppConfig:
    return AppConfig(
        farm=FarmConfig(data_dir=data_dir, name="test farm", token=TOKEN, lease_seconds=lease),
        sweep_interval=sweep,
    )


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
