"""The coordinator's TLS key is private from its first byte, whatever was left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from coordinator.server import tls


def test_a_leftover_world_readable_temporary_key_does_not_keep_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / tls.TLS_DIR
    folder.mkdir(mode=0o700)
    leftover = folder / f".{tls.KEY_FILE}.{os.getpid()}"
    leftover.write_text("old", encoding="ascii")
    leftover.chmod(0o644)

    tls.make_certificate(folder, "farm")

    key = folder / tls.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in key.read_text(encoding="ascii")
    assert not leftover.exists()
