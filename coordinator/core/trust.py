"""The proof a coordinator gives before a client trusts it. Stdlib only.

Anyone on a LAN can advertise a farm, and anyone can serve TLS with a
certificate of their own; only the real coordinator holds the farm token.
A client opens TLS without checking the certificate, notes the SHA-256
fingerprint of the one it was shown, and sends a fresh random nonce. The
coordinator answers HMAC-SHA256(key, context || nonce || fingerprint of its
own certificate), the key being the SHA-256 of the farm token (or of a
worker's secret, which is all the coordinator keeps of it). The client
computes the same with the token it holds and the fingerprint it saw: they
match only if the other end holds the key and serves that very certificate.
So an impostor cannot answer, and a relay to the real farm gets an answer
for the real farm's certificate, not its own. Then the client pins the
fingerprint for every later request and sends the token, inside TLS.
Nothing it sent before is secret or derived from the token in a way a
coordinator would accept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

CONTEXT = b"lanfarm coordinator proof v1\x00"
NONCE_BYTES = 32
NONCE_PATTERN = "^[0-9a-f]{64}$"
KEY_ID_PATTERN = "^[0-9a-f]{32}$"
FINGERPRINT_PATTERN = "^([0-9A-F]{2}:){31}[0-9A-F]{2}$"


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 as people compare it: "AB:CD:...", 32 pairs."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def is_fingerprint(text: str) -> bool:
    return re.fullmatch(FINGERPRINT_PATTERN, text) is not None


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def proof_key(token: str) -> str:
    """The HMAC key for a farm token or a worker secret: its SHA-256, which is
    what the coordinator stores of a worker's secret."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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
