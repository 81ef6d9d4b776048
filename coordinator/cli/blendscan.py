"""Whether a .blend may use other files, read from its block headers without Blender.

`submit` traces a .blend's files in a headless Blender (tracing.py); a file
that holds no datablock able to point at a file (no image, library, sound,
font, cache, volume, movie clip, sequencer strip, point cache, cache-reading
modifier, geometry-node bake or File Output node) needs no tracing, and no Blender, to be sent
alone. Anything this cannot read (compressed files, an unknown layout) is
"cannot tell", which needs the tracer.

The blocks are read by blendblocks.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

from coordinator.cli.blendblocks import Unreadable, read_blocks

# ID block codes of datablocks that hold a path (the ID's two letters, zero-padded).
FILE_IDS = {
    b"LI\0\0": "library",
    b"IM\0\0": "image",
    b"SO\0\0": "sound",
    b"VF\0\0": "font",
    b"CF\0\0": "cache",
    b"VO\0\0": "volume",
    b"MC\0\0": "movie clip",
}
# Structs of data blocks that hold a path or read a folder (DNA names).
FILE_STRUCTS = {
    "Sequence": "sequencer strip",  # until 4.4
    "Strip": "sequencer strip",  # 4.4+
    "MeshCacheModifierData": "mesh cache",
    "OceanModifierData": "ocean cache",
    "FluidDomainSettings": "fluid cache",
    "PointCache": "simulation cache",
    "NodesModifierData": "geometry-node bake",
    # A compositor File Output node: not a file it reads, but the trace lists the files
    # it writes, so that they come home (core/fileoutputs.py); 3.x-5.0 keep its storage
    "NodeImageMultiFile": "File Output node",
}


def file_users(path: Path) -> list[str] | None:
    """What in the .blend may point at other files ("image", "library", ...; empty:
    nothing), or None when this cannot tell (compressed, unknown layout)."""
    try:
        with path.open("rb") as f:
            blocks, dna, _order = read_blocks(f)
    except (OSError, Unreadable, struct.error, ValueError, IndexError, UnicodeError):
        return None
    found = {FILE_IDS[b.code] for b in blocks if b.code in FILE_IDS}
    for index in {b.sdna for b in blocks if b.code == b"DATA"}:
        if dna is None or not 0 <= index < len(dna.structs):
            return None
        name = dna.structs[index][0]
        if name in FILE_STRUCTS:
            found.add(FILE_STRUCTS[name])
    return sorted(found)
