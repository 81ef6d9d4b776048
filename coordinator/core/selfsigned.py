"""A self-signed TLS certificate made with the standard library only.

The coordinator makes one on its first start, also inside Blender's own
Python (the add-on's "farm on this computer" runs there, with no
`cryptography` wheel and no `openssl` command on Windows). Nobody verifies
it against an authority: clients pin its SHA-256 fingerprint once the
coordinator has proved it knows the farm token (`coordinator.core.trust`),
so all it must be is a well-formed X.509 certificate with a strong key that
OpenSSL (Python's `ssl`) and browsers accept.

RSA-2048 with SHA-256 (PKCS #1 v1.5 signature): the one key type every TLS
stack and Chromium take. The primes come from `secrets` and pass 40
Miller-Rabin rounds; the private key is written PKCS #1 PEM, which
`ssl.SSLContext.load_cert_chain` reads.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass

KEY_BITS = 2048
PUBLIC_EXPONENT = 65537
_MR_ROUNDS = 40
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]

OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
OID_COMMON_NAME = "2.5.4.3"
OID_BASIC_CONSTRAINTS = "2.5.29.19"
# DER of DigestInfo's prefix for SHA-256 (RFC 8017, 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


# ------------------------------------------------------------------ DER
def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def der_int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return _tlv(0x02, raw)


def der_seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _utf8(text: str) -> bytes:
    return _tlv(0x0C, text.encode("utf-8"))


def _bits(data: bytes) -> bytes:
    return _tlv(0x03, b"\x00" + data)


def _time(epoch: float) -> bytes:
    t = time.gmtime(epoch)
    if t.tm_year < 2050:
        return _tlv(0x17, time.strftime("%y%m%d%H%M%SZ", t).encode())
    return _tlv(0x18, time.strftime("%Y%m%d%H%M%SZ", t).encode())


def _explicit(number: int, body: bytes) -> bytes:
    return _tlv(0xA0 | number, body)


# ------------------------------------------------------------------ RSA
def _probably_prime(n: int) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(_MR_ROUNDS):
        x = pow(2 + secrets.randbelow(n - 3), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        # The top two bits set, so that p * q has exactly 2 * bits bits.
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if (candidate - 1) % PUBLIC_EXPONENT and _probably_prime(candidate):
            return candidate


@dataclass(frozen=True)
class RsaKey:
    n: int  # modulus
    e: int  # public exponent
    d: int  # private exponent
    p: int  # the primes
    q: int

    @classmethod
    def generate(cls, bits: int = KEY_BITS) -> RsaKey:
        while True:
            p, q = _prime(bits // 2), _prime(bits // 2)
            if abs(p - q) >> (bits // 2 - 100):  # far apart (FIPS 186-4, B.3.1)
                break
        d = pow(PUBLIC_EXPONENT, -1, (p - 1) * (q - 1))
        return cls(p * q, PUBLIC_EXPONENT, d, p, q)

    def sign_sha256(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2)."""
        size = (self.n.bit_length() + 7) // 8
        digest = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        encoded = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
        return pow(int.from_bytes(encoded, "big"), self.d, self.n).to_bytes(size, "big")

    def public_der(self) -> bytes:
        """SubjectPublicKeyInfo."""
        algorithm = der_seq(der_oid(OID_RSA_ENCRYPTION), b"\x05\x00")
        return der_seq(algorithm, _bits(der_seq(der_int(self.n), der_int(self.e))))

    def private_pem(self) -> str:
        """PKCS #1 RSAPrivateKey, PEM."""
        p, q, d = self.p, self.q, self.d
        fields = (0, self.n, self.e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))
        return _pem("RSA PRIVATE KEY", der_seq(*(der_int(v) for v in fields)))


def _pem(label: str, der: bytes) -> str:
    text = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def _name(common_name: str) -> bytes:
    return der_seq(_tlv(0x31, der_seq(der_oid(OID_COMMON_NAME), _utf8(common_name))))


def self_signed(
    common_name: str, *, days: int = 3650, key: RsaKey | None = None
) -> tuple[str, str]:
    """A new key and a certificate for it, signed by itself. -> (cert PEM, key PEM)"""
    key = key or RsaKey.generate()
    now = time.time()
    algorithm = der_seq(der_oid(OID_SHA256_WITH_RSA), b"\x05\x00")
    not_a_ca = der_seq(der_oid(OID_BASIC_CONSTRAINTS), _tlv(0x01, b"\xff"), _tlv(0x04, der_seq()))
    tbs = der_seq(
        _explicit(0, der_int(2)),  # X.509 v3
        der_int(secrets.randbits(63) | 1),
        algorithm,
        _name(common_name),
        der_seq(_time(now - 86400), _time(now + days * 86400)),
        _name(common_name),
        key.public_der(),
        _explicit(3, der_seq(not_a_ca)),
    )
    cert = der_seq(tbs, algorithm, _bits(key.sign_sha256(tbs)))
    return _pem("CERTIFICATE", cert), key.private_pem()
