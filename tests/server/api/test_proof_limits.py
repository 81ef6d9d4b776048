"""POST /proof is public, so it must not let anyone hold a connection or make
the coordinator work: a large or slow body is refused and the connection
closed within the deadline; the key is looked up without rehashing every
worker on each question."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.core import trust
from coordinator.server.api import meta
from tests.conftest import TOKEN, register


async def trickle(
    client: TestClient[Any, Any], length: int | None, *, chunked: bool = False
) -> tuple[float, bytes]:
    """Open a raw connection, send a proof header announcing `length` body bytes,
    then one byte every 0.2 s; -> (seconds until the server closed it, what it sent)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = "POST /api/v1/proof HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    elif length is not None:
        head += f"Content-Length: {length}\r\n"
    writer.write((head + "\r\n").encode())
    await writer.drain()
    start = time.monotonic()
    received = b""

    async def feed() -> None:
        while True:
            await asyncio.sleep(0.2)
            writer.write(b"1\r\n{\r\n" if chunked else b"{")
            try:
                await writer.drain()
            except ConnectionError:
                return

    feeder = asyncio.create_task(feed())
    try:
        while time.monotonic() - start < 20:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 20)
            except ConnectionError:
                break
            if not chunk:
                break
            received += chunk
    finally:
        feeder.cancel()
        writer.close()
    return time.monotonic() - start, received


async def test_three_trickled_megabyte_bodies_are_refused_and_closed_at_once(
    client: TestClient[Any, Any],
) -> None:
    results = await asyncio.gather(*(trickle(client, 1_000_000) for _ in range(3)))
    for seconds, received in results:
        assert seconds < meta.PROOF_BODY_SECONDS, received
        assert received.startswith(b"HTTP/1.1 413"), received
        assert b"at most 1024 bytes" in received


async def test_a_small_body_sent_slowly_gets_408_and_is_closed(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(meta, "PROOF_BODY_SECONDS", 1.0)
    results = await asyncio.gather(*(trickle(client, 1000) for _ in range(3)))
    for seconds, received in results:
        assert 0.9 < seconds < 3.0, (seconds, received)
        assert received.startswith(b"HTTP/1.1 408"), received
        assert b"did not arrive whole within 1 seconds" in received


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_question_without_a_length_is_refused(
    client: TestClient[Any, Any], chunked: bool
) -> None:
    seconds, received = await trickle(client, None, chunked=chunked)
    assert seconds < 2.0
    assert received.startswith(b"HTTP/1.1 400"), received
    assert b"needs a Content-Length" in received


async def test_worker_keys_are_not_rehashed_on_every_question(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_ = []
    for n in range(3):
        headers = await register(client, name=f"w{n}")
        secrets_.append(headers["Authorization"].removeprefix("Bearer "))
    hashed: list[str] = []
    real_key_id = trust.key_id

    def counting_key_id(key: str) -> str:
        hashed.append(key)
        return real_key_id(key)

    monkeypatch.setattr(trust, "key_id", counting_key_id)

    async def ask(secret: str) -> int:
        key_id = real_key_id(trust.proof_key(secret))
        body = json.dumps({"nonce": trust.new_nonce(), "key_id": key_id})
        resp = await client.post(
            "/api/v1/proof", data=body, headers={"Content-Type": "application/json"}
        )
        return resp.status

    for _ in range(5):
        assert await ask(secrets_[2]) == 200
    assert await ask("not-a-worker-secret-nor-the-token") == 401
    # one rebuild of the 3 workers' ids, then only the farm key's id per question
    assert len(hashed) <= 3 + 6, len(hashed)
    # a worker registered now is found (the table changed, the ids are rebuilt)
    headers = await register(client, name="late")
    assert await ask(headers["Authorization"].removeprefix("Bearer ")) == 200
    assert await ask(TOKEN) == 200
