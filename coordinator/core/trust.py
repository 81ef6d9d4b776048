"""The proof a coordinator gives before a client trusts it. Stdlib only.

Anyone on a LAN can advertise a farm, and anyone can serve TLS with a
certificate of their own; only the real coordinator holds the farm token.
A client opens TLS without checking the certificate, notes the SHA-256
fingerprint of the one it was shown, and sends a fresh random nonce. The
coordinator answers HMAC-SHA256(key, context || nonce || fingerprint of its
own certificate), the key being a slow PBKDF2 of the farm token (or the
SHA-256 of a worker's secret, which is all the coordinator keeps of it). The
client sends the key's id so the coordinator can pick the key; whoever reads
it can test token guesses against it offline, so for the farm token (which a
person may have chosen) each guess costs a whole PBKDF2. Worker secrets are
random 256-bit values made by the coordinator, marked by a prefix: guessing
them is hopeless, so their key stays one fast hash. The client
computes the same with the token it holds and the fingerprint it saw: they
match only if the other end holds the key and serves that very certificate.
So an impostor cannot answer, and a relay to the real farm gets an answer
for the real farm's certificate, not its own. Then the client pins the
fingerprint for every later request and sends the token, inside TLS.
Nothing it sent before is secret or derived from the token in a way a
coordinator would accept.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets

CONTEXT = b"lanfarm coordinator proof v1\x00"
NONCE_BYTES = 32
NONCE_PATTERN = "^[0-9a-f]{64}$"
KEY_ID_PATTERN = "^[0-9a-f]{32}$"
FINGERPRINT_PATTERN = "^([0-9A-F]{2}:){31}[0-9A-F]{2}$"
# What marks a worker's secret (made by the coordinator: the prefix and 256
# random bits); a farm token may not start with it (`serve` refuses one).
WORKER_SECRET_PREFIX = "lfw1_"
WORKER_SECRET_BYTES = 32
# The farm token's key: PBKDF2-HMAC-SHA256 with a fixed salt (there is one farm
# token per farm; the salt keeps tables made for other programs useless).
# 500,000 rounds cost 0.22-0.29 s per derivation on the 2-core development
# machine (measured December 2026), once per token per process (cached).
FARM_KDF_SALT = b"lanfarm farm token key v2\x00"
FARM_KDF_ROUNDS = 500_000


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 as people compare it: "AB:CD:...", 32 pairs."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def is_fingerprint(text: str) -> bool:
    return re.fullmatch(FINGERPRINT_PATTERN, text) is not None


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def new_farm_token() -> str:
    """A new random farm token: 192 bits in token_urlsafe's alphabet, never
    starting with "-" (a command line would read `--token -x...` as an option)."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def new_worker_secret() -> str:
    """A worker's secret: the prefix and 256 random bits (no KDF needed)."""
    return WORKER_SECRET_PREFIX + secrets.token_urlsafe(WORKER_SECRET_BYTES)


def is_worker_secret(token: str) -> bool:
    return token.startswith(WORKER_SECRET_PREFIX)


def secret_key(secret: str) -> str:
    """A worker secret's key: its SHA-256, which is what the coordinator stores."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=64)
def farm_key(token: str) -> str:
    """The farm token's key: slow to derive, so that a key id seen on the LAN
    does not let anyone test guesses of the token quickly. Cached per process."""
    derived = hashlib.pbkdf2_hmac("sha256", token.encode("utf-8"), FARM_KDF_SALT, FARM_KDF_ROUNDS)
    return derived.hex()


def proof_key(token: str) -> str:
    """The HMAC key for a farm token (slow PBKDF2) or a worker secret (fast SHA-256)."""
    return secret_key(token) if is_worker_secret(token) else farm_key(token)


def key_id(key: str) -> str:
    """Which key the client holds, for the coordinator to pick it (the farm
    token's, or one worker's): a hash of the key, useless as a credential."""
    return hashlib.sha256(b"lanfarm key id\x00" + key.encode("ascii")).hexdigest()[:32]


def proof(key: str, nonce: str, cert_fingerprint: str) -> str:
    """What only a holder of `key` serving that certificate can compute."""
    message = CONTEXT + nonce.encode("ascii") + b"\x00" + cert_fingerprint.encode("ascii")
    return hmac.new(key.encode("ascii"), message, hashlib.sha256).hexdigest()


def proves(answer: str, *, key: str, nonce: str, cert_fingerprint: str) -> bool:
    expected = proof(key, nonce, cert_fingerprint)
    return hmac.compare_digest(answer.encode("utf-8", "replace"), expected.encode())
