"""The key id a client sends before trusting a farm: for the farm token (which a
person may have chosen) testing one guess against it costs a whole slow KDF;
worker secrets (random, 256 bits, marked) stay one fast hash."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coordinator.core import trust
from coordinator.server.serve import MAKE_TOKEN, ServeError, load_token, token_problem


def test_the_farm_tokens_key_is_a_slow_pbkdf2_and_is_cached() -> None:
    token = secrets.token_urlsafe(24)  # never derived before in this process
    start = time.perf_counter()
    key = trust.proof_key(token)
    first = time.perf_counter() - start
    assert trust.FARM_KDF_ROUNDS >= 300_000
    expected = hashlib.pbkdf2_hmac(
        "sha256", token.encode(), trust.FARM_KDF_SALT, trust.FARM_KDF_ROUNDS
    ).hex()
    assert key == expected
    # no fast way from a guess to the key id seen on the LAN
    fast = hashlib.sha256(token.encode()).hexdigest()
    assert key != fast and trust.key_id(key) != trust.key_id(fast)
    assert first > 0.05, f"one derivation took {first:.3f} s"
    start = time.perf_counter()
    assert trust.proof_key(token) == key
    assert time.perf_counter() - start < 0.01  # once per token per process


def test_a_worker_secret_is_marked_random_and_its_key_fast() -> None:
    secret = trust.new_worker_secret()
    assert trust.is_worker_secret(secret)
    assert len(secret) == len(trust.WORKER_SECRET_PREFIX) + 43  # 256 bits, urlsafe
    assert secret != trust.new_worker_secret()
    # what the coordinator stores of it, so it can answer without the secret
    assert trust.proof_key(secret) == hashlib.sha256(secret.encode()).hexdigest()


def test_serve_refuses_a_farm_token_that_looks_like_a_worker_secret() -> None:
    problem = token_problem(trust.new_worker_secret())
    assert problem is not None and "worker's secret" in problem
    assert token_problem(secrets.token_urlsafe(24)) is None


def test_a_new_farm_token_never_reads_as_a_command_line_option() -> None:
    # token_urlsafe starts with "-" once in 64; `--token -x...` is then refused
    # by argparse ("expected one argument"), which once failed CI at random
    tokens = [trust.new_farm_token() for _ in range(2000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) == 32 and token_problem(t) is None for t in tokens)


def test_a_long_token_of_few_kinds_of_characters_is_too_weak_and_says_how_to_make_one(
    tmp_path: Path,
) -> None:
    # 16 digits: long enough and varied, yet about 53 bits: guessable offline
    problem = token_problem("3141592653589793")
    assert problem is not None and problem.startswith("is too weak to resist guessing (about 53")
    assert token_problem("31415926535897932384626433832795028841971") is None  # 136 bits
    with pytest.raises(ServeError) as refused:
        load_token(tmp_path, "3141592653589793")
    message = str(refused.value)
    assert message.startswith("the farm token (--token) is too weak")
    assert message.endswith(f"make one with: {MAKE_TOKEN}")
    # and the way it names makes a token that passes
    made = subprocess.run(
        [sys.executable, "-c", MAKE_TOKEN.split("-c ", 1)[1].strip("'")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert token_problem(made) is None and not made.startswith("-")
    assert not (tmp_path / "token.txt").exists()  # nothing saved for a refused token
