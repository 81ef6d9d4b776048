"""The coordinator's TLS: a certificate it makes on first start, kept in its
data folder, and the server context that serves it.

The certificate is self-signed: clients trust it because the coordinator
proves it holds the farm token for this very certificate
(`coordinator.core.trust`), not because an authority signed it. Deleting
`tls/` makes a new one on the next start; clients then prove it again, and a
person comparing fingerprints sees a new one.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from coordinator.core import trust
from coordinator.core.selfsigned import self_signed

log = logging.getLogger(__name__)

TLS_DIR = "tls"  # in the data folder
CERT_FILE, KEY_FILE = "cert.pem", "key.pem"


@dataclass(frozen=True)
class ServerTls:
    context: ssl.SSLContext  # for the listening socket
    fingerprint: str  # SHA-256 of the certificate, "AB:CD:..."
    cert_path: Path  # where it is, for a person who wants to install it in a browser


def load_tls(data_dir: Path, name: str) -> ServerTls:
    """The data folder's certificate and key, made now if there are none."""
    folder = data_dir / TLS_DIR
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if not (cert.is_file() and key.is_file()):
        make_certificate(folder, name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii"))
    return ServerTls(context, trust.fingerprint(der), cert)


def make_certificate(folder: Path, name: str) -> None:
    """A new key (0600, in a 0700 folder) and its self-signed certificate."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    common_name = "".join(c for c in name if c.isprintable())[:60] or "lanfarm coordinator"
    cert_pem, key_pem = self_signed(common_name)
    key_path = folder / KEY_FILE
    tmp = folder / f".{KEY_FILE}.{os.getpid()}"
    # A leftover file of that name would keep its own mode through O_TRUNC: remove
    # it, then create anew and exclusively, so the key is 0600 from its first byte.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key_pem)
    os.replace(tmp, key_path)
    (folder / CERT_FILE).write_text(cert_pem, encoding="ascii")
    log.info("made a new TLS certificate in %s", folder)
