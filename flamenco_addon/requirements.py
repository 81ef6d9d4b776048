"""What a job asks of the workers that run it: the panel's "Workers" rows made into
the API's `requires_tags` and `needs`. No `bpy` here.

The rules are the farm's own (coordinator/core/tags.py), so the panel refuses
what the coordinator and `lanfarm submit --require-tag/--need` refuse, with the
same words, before anything is packed.
"""

from __future__ import annotations

from typing import Any

from coordinator.core.tags import check_needs, check_tags

from .submission import SubmitError

ANY = "ANY"  # an enum's "no need" (Blender enums have no empty identifier)
# (identifier, label, description) for the panel's enums; ANY first
DEVICES = (
    (ANY, "Any", "Any worker, whatever it renders with"),
    ("GPU", "Any GPU", "Workers whose Blender sees a GPU device (CUDA, OptiX, HIP, Metal, oneAPI)"),
    ("OPTIX", "OptiX", "Workers with an NVIDIA OptiX device"),
    ("CUDA", "CUDA", "Workers with an NVIDIA CUDA device"),
    ("HIP", "HIP", "Workers with an AMD HIP device"),
    ("METAL", "Metal", "Workers with an Apple Metal device"),
    ("ONEAPI", "oneAPI", "Workers with an Intel oneAPI device"),
)
ENGINES = (
    (ANY, "Any", "Any worker, whatever engines its Blender has"),
    ("CYCLES", "Cycles", "Workers whose Blender has Cycles"),
    ("BLENDER_EEVEE", "EEVEE", "Workers whose Blender has EEVEE (5.0, and 4.1 and older)"),
    ("BLENDER_EEVEE_NEXT", "EEVEE Next", "Workers whose Blender has EEVEE Next (4.2-4.4)"),
    ("BLENDER_WORKBENCH", "Workbench", "Workers whose Blender has Workbench"),
)
SYSTEMS = (
    (ANY, "Any", "Workers on any operating system"),
    ("linux", "Linux", "Only Linux workers"),
    ("windows", "Windows", "Only Windows workers"),
    ("darwin", "macOS", "Only macOS workers"),
)


def requirements(
    tags: str, *, device: str = ANY, engine: str = ANY, memory_gb: int = 0, system: str = ANY
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(requires_tags, needs) from the panel: tags as typed ("gpu, fast"), the
    enums' identifiers, memory in GiB (0: any). SubmitError says what is wrong."""
    needs = {
        "device": "" if device == ANY else device,
        "engine": "" if engine == ANY else engine,
        "memory_mb": max(0, int(memory_gb)) * 1024,
        "os": "" if system == ANY else system,
    }
    try:
        required = check_tags(tags, "Requires tags")
        checked = check_needs(needs)
    except ValueError as ex:
        raise SubmitError(str(ex).replace("'needs.", "'")) from ex
    return tuple(required), checked


def describe(requires_tags: tuple[str, ...], needs: dict[str, Any]) -> str:
    """One line for the panel: 'Only workers with tag gpu, 16 GiB memory' ("" for any)."""
    parts = [f"tag {t}" for t in requires_tags]
    labels = {k: dict((i, label) for i, label, _ in items) for k, items in _ENUMS.items()}
    for key in ("device", "engine", "os"):
        if needs.get(key):
            parts.append(labels[key].get(needs[key], needs[key]))
    if needs.get("memory_mb"):
        parts.append(f"{needs['memory_mb'] // 1024} GiB memory")
    return f"Only workers with {', '.join(parts)}" if parts else ""


_ENUMS = {"device": DEVICES, "engine": ENGINES, "os": SYSTEMS}
