"""Which Blender saved a .blend, read from the file's first bytes.

Standard library only: the CLI reads this before it uploads a file, so a
worker too old for the file is never handed it, and nothing here needs
Blender. Both header layouts are described in Blender's
`BLO_core_blend_header.hh`.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

# Up to 4.x: 'BLENDER' + pointer size '-'/'_' + endianness 'v'/'V' + '304' = 3.4.
_HEADER_V0 = re.compile(rb"BLENDER[-_][vV](\d{3})")
# 5.0+: 'BLENDER' + header size '17' + '-' + format version '01' + 'v' + '0500' = 5.0.
_HEADER_V1 = re.compile(rb"BLENDER(\d\d)-(\d\d)v(\d{4})")
GZIP_MAGIC = b"\x1f\x8b"  # files saved with "Compress" before Blender 3.0
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # files saved with "Compress" from Blender 3.0 on
_HEAD_SIZE = 64  # enough for either header


def version_from_header(head: bytes) -> str | None:
    """'3.4' from the first bytes of an uncompressed .blend; None if they are no header.

    The number is BLENDER_FILE_VERSION: major * 100 + minor (304, 279, 500).
    """
    match = _HEADER_V1.match(head) or _HEADER_V0.match(head)
    if match is None:
        return None
    number = int(match.groups()[-1])
    return f"{number // 100}.{number % 100}"


def read_blend_version(path: Path) -> tuple[str | None, str]:
    """(the Blender version that saved the file, or None; why it could not be read).

    The reason is for a person: a caller that cannot tell the version still
    goes on, and says why.
    """
    try:
        head = _read_head(path)
    except (OSError, EOFError) as ex:
        return None, f"cannot read its header ({ex})"
    if head.startswith(ZSTD_MAGIC):
        return None, "it is zstd-compressed, which this Python cannot read"
    version = version_from_header(head)
    return version, "" if version else "it does not start with a .blend header"


def _read_head(path: Path) -> bytes:
    """The first bytes of the file, unzipped when it was saved gzip-compressed."""
    with path.open("rb") as f:
        head = f.read(_HEAD_SIZE)
        if not head.startswith(GZIP_MAGIC):
            return head
        f.seek(0)
        with gzip.GzipFile(fileobj=f) as unzipped:
            return unzipped.read(_HEAD_SIZE)
