"""POST /proof: the coordinator proves it holds the client's key (the farm
token's, or a worker's), bound to the certificate it serves, and learns
nothing it could use from the question."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from coordinator.core import trust
from tests.conftest import TOKEN, register


async def ask(client: TestClient[Any, Any], token: str, nonce: str) -> tuple[int, Any]:
    key_id = trust.key_id(trust.proof_key(token))
    resp = await client.post("/api/v1/proof", json={"nonce": nonce, "key_id": key_id})
    return resp.status, await resp.json()


async def test_the_farm_token_is_proven_for_the_served_certificate(
    client: TestClient[Any, Any],
) -> None:
    nonce = trust.new_nonce()
    status, answer = await ask(client, TOKEN, nonce)
    assert status == 200
    fingerprint = answer["fingerprint"]  # plain HTTP in this test: no certificate
    key = trust.proof_key(TOKEN)
    assert trust.proves(answer["proof"], key=key, nonce=nonce, cert_fingerprint=fingerprint)
    # Bound to the nonce and to the certificate: no other question or connection.
    assert not trust.proves(answer["proof"], key=key, nonce=trust.new_nonce(), cert_fingerprint="")
    other_cert = "AB:" * 31 + "CD"
    assert not trust.proves(answer["proof"], key=key, nonce=nonce, cert_fingerprint=other_cert)


async def test_a_worker_secret_is_proven_too(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    secret = worker["Authorization"].removeprefix("Bearer ")
    nonce = trust.new_nonce()
    status, answer = await ask(client, secret, nonce)
    assert status == 200
    key = trust.proof_key(secret)
    assert trust.proves(answer["proof"], key=key, nonce=nonce, cert_fingerprint="")


async def test_an_unknown_key_or_a_bad_question_is_refused(client: TestClient[Any, Any]) -> None:
    status, answer = await ask(client, "not-the-farm-token-at-all", trust.new_nonce())
    assert status == 401 and "knows no such farm token" in answer["error"]
    for body, field in (
        ({"nonce": "xyz", "key_id": "0" * 32}, "nonce"),
        ({"nonce": "0" * 64, "key_id": "Z" * 32}, "key_id"),
    ):
        resp = await client.post("/api/v1/proof", json=body)
        assert resp.status == 400
        assert (await resp.json())["field"] == field
    resp = await client.post("/api/v1/proof", json={"nonce": "0" * 64, "key_id": "0" * 32, "x": 1})
    assert resp.status == 400


async def test_registered_workers_get_marked_secrets(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    secret = worker["Authorization"].removeprefix("Bearer ")
    assert trust.is_worker_secret(secret)
