"""Blender properties: the job form (per scene, saved) and the live farm view (unsaved)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import bpy

from coordinator.core.protocol import JobStatus

from . import requirements
from .runtime import STATE

# EnumProperty item callbacks must keep their strings alive (Blender keeps
# pointers into them), so the lists are cached here by their content.
_ITEM_CACHE: dict[tuple[str, ...], list[Any]] = {}

# The Jobs list's status filter offers the farm's own statuses, in their order
# (waiting, running, held, then the three ends).
JOB_STATUSES = tuple(status.value for status in JobStatus)


def _cached(items: list[tuple[str, str, str]]) -> list[Any]:
    """Items with stable numbers: Blender saves an enum as its number, so the
    number must follow the name, not the position in the coordinator's list."""
    key = tuple(f"{a}\x1f{b}" for a, b, _ in items)
    numbered = [(a, b, c, "NONE", _number(a)) for a, b, c in items]
    return _ITEM_CACHE.setdefault(key, numbered)


def _number(name: str) -> int:
    return 0 if name == "blender-render" else 1 + zlib.crc32(name.encode()) % 0x3FFFFFFF


def _job_type_items(_self: Any, context: Any) -> list[Any]:
    url = context.window_manager.farm.coordinator_in_use if context else ""
    types = STATE.job_types.get(url) or []
    items = [(t["name"], t.get("label") or t["name"], t.get("description", "")) for t in types]
    items.sort(key=lambda i: i[0] != "blender-render")  # rendering frames first
    if not items or items[0][0] != "blender-render":
        items.insert(0, ("blender-render", "Render frames", "Render the scene's frames"))
    return _cached(items)


def _choice_items(self: Any, _context: Any) -> list[Any]:
    choices = [c for c in self.choices.split("\x1f") if c]
    return _cached([(c, c, "") for c in choices] or [("NONE", "(none)", "")])


class FarmSettingValue(bpy.types.PropertyGroup):
    """One setting of a job type, drawn from the coordinator's schema."""

    kind: bpy.props.StringProperty()
    label: bpy.props.StringProperty()
    description: bpy.props.StringProperty()
    choices: bpy.props.StringProperty()
    str_value: bpy.props.StringProperty(name="Value")
    int_value: bpy.props.IntProperty(name="Value")
    float_value: bpy.props.FloatProperty(name="Value")
    bool_value: bpy.props.BoolProperty(name="Value")
    choice_value: bpy.props.EnumProperty(name="Value", items=_choice_items)
    # A number the schema leaves unset by default ("Samples per chunk" instead of a
    # chunk count): sent only when ticked, never as the 0 a number field shows.
    optional: bpy.props.BoolProperty(default=False)
    use_value: bpy.props.BoolProperty(name="Use", default=False)

    def value(self) -> Any:
        if self.optional and not self.use_value:
            return None
        if self.kind == "int":
            return self.int_value
        if self.kind == "float":
            return self.float_value
        if self.kind == "bool":
            return self.bool_value
        if self.kind == "choice":
            return None if self.choice_value == "NONE" else self.choice_value
        return self.str_value or None


class FarmJobSettings(bpy.types.PropertyGroup):
    """The Job box of the panel; saved with the scene like any render setting."""

    job_type: bpy.props.EnumProperty(name="Type", items=_job_type_items)
    job_name: bpy.props.StringProperty(name="Name", description="Job name (empty: the file's name)")
    frames: bpy.props.StringProperty(
        name="Frames",
        description="Frames to render, e.g. 1-100,120 (empty: the scene's frame range)",
    )
    chunk_size: bpy.props.IntProperty(
        name="Chunk size",
        description="Frames per task: larger chunks start Blender less often, smaller ones"
        " spread better over many machines",
        default=4,
        min=1,
        max=10000,
    )
    priority: bpy.props.IntProperty(
        name="Priority", description="Higher runs first", default=50, min=0, max=100
    )
    # What the job asks of its workers (requirements.py): the farm's pools and needs
    require_tags: bpy.props.StringProperty(
        name="Requires tags",
        description="Only workers with all these tags (their pools) get the job, e.g. gpu, fast"
        " (empty: any worker)",
    )
    need_device: bpy.props.EnumProperty(
        name="Device", items=requirements.DEVICES, default=requirements.ANY
    )
    need_engine: bpy.props.EnumProperty(
        name="Engine", items=requirements.ENGINES, default=requirements.ANY
    )
    need_memory_gb: bpy.props.IntProperty(
        name="Memory (GiB)",
        description="Only workers with at least this much memory (one that reports 90% of it"
        " qualifies, as an OS counts a little less than the machine has); 0: any",
        default=0,
        min=0,
        max=4096,
    )
    need_os: bpy.props.EnumProperty(name="System", items=requirements.SYSTEMS, default="ANY")
    settings: bpy.props.CollectionProperty(type=FarmSettingValue)
    settings_for: bpy.props.StringProperty()
    # Comma-separated: the job type's settings taken from the scene (frames, output, ...)
    scene_settings: bpy.props.StringProperty(default="frames,chunk_size,output")

    def filled(self) -> set[str]:
        return set(filter(None, self.scene_settings.split(",")))

    def extra(self) -> dict[str, Any]:
        return {s.name: s.value() for s in self.settings if s.value() is not None}

    def requirements(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        """(requires_tags, needs) as the API takes them; SubmitError when one is wrong."""
        return requirements.requirements(
            self.require_tags,
            device=self.need_device,
            engine=self.need_engine,
            memory_gb=self.need_memory_gb,
            system=self.need_os,
        )


def load_schema(
    form: FarmJobSettings,
    job_type: str,
    settings: list[Mapping[str, Any]],
    scene_settings: Iterable[str] = (),
) -> None:
    """Rebuild the drawn settings when the job type (or its schema) changes."""
    filled = ",".join(sorted(scene_settings))
    key = job_type + "|" + ",".join(s["name"] for s in settings) + "|" + filled
    if form.settings_for == key:
        return
    form.scene_settings = filled
    old = {s.name: s.value() for s in form.settings}
    form.settings.clear()
    for spec in settings:
        item = form.settings.add()
        item.name, item.kind = spec["name"], spec["type"]
        item.label, item.description = (
            spec.get("label") or spec["name"],
            spec.get("description", ""),
        )
        item.choices = "\x1f".join(spec.get("choices") or [])
        item.optional = (
            spec["type"] in ("int", "float")
            and spec.get("default") is None
            and not spec.get("required")
        )
        value = old.get(spec["name"], spec.get("default"))
        item.use_value = value is not None
        _set_value(item, value)
    form.settings_for = key


def _set_value(item: FarmSettingValue, value: Any) -> None:
    if value is None:
        return
    if item.kind == "int":
        item.int_value = int(value)
    elif item.kind == "float":
        item.float_value = float(value)
    elif item.kind == "bool":
        item.bool_value = bool(value)
    elif item.kind == "choice":
        if value in item.choices.split("\x1f"):
            item.choice_value = value
    else:
        item.str_value = str(value)


class FarmJobItem(bpy.types.PropertyGroup):
    """One row of the Jobs list (a copy of what the coordinator said)."""

    job_id: bpy.props.IntProperty()
    status: bpy.props.StringProperty()
    job_type: bpy.props.StringProperty()
    progress: bpy.props.FloatProperty(subtype="PERCENTAGE", min=0, max=100)
    output: bpy.props.StringProperty()
    reason: bpy.props.StringProperty()
    actions: bpy.props.StringProperty()  # comma-separated: panel_text.offered(job)
    own: bpy.props.BoolProperty()  # sent from this .blend to this farm (its origin)
    eta: bpy.props.StringProperty()  # panel_text.eta_text: "about 5 min left", or ""


def _status_items() -> list[tuple[str, str, str]]:
    items = [("ALL", "All", "Every status")]
    return items + [(s, s.capitalize(), f"Only {s} jobs") for s in JOB_STATUSES]


class FarmView(bpy.types.PropertyGroup):
    """Live, unsaved state of the panel (on the window manager)."""

    coordinator_url: bpy.props.StringProperty(
        name="Coordinator", description="The coordinator chosen from the list"
    )
    coordinator_in_use: bpy.props.StringProperty()
    jobs: bpy.props.CollectionProperty(type=FarmJobItem)
    jobs_index: bpy.props.IntProperty()
    scope: bpy.props.EnumProperty(
        name="Show",
        items=[
            ("FILE", "This file", "Jobs submitted from this .blend"),
            ("ALL", "All", "Every job"),
        ],
        default="FILE",  # the Jobs panel asks for the other list at its next draw
    )
    status_filter: bpy.props.EnumProperty(name="Status", items=_status_items())
    type_filter: bpy.props.StringProperty(name="Type", description="Job type, e.g. blender-render")
    name_filter: bpy.props.StringProperty(
        name="Name", description="Name contains, or a glob like shot_*"
    )
    submitting: bpy.props.BoolProperty()
    progress: bpy.props.FloatProperty(subtype="FACTOR", min=0, max=1)
    progress_text: bpy.props.StringProperty()
    # Blender before 4.0 has no progress bar widget: a read-only slider in percent
    progress_percent: bpy.props.FloatProperty(
        subtype="PERCENTAGE", min=0, max=100, precision=0, get=lambda self: self.progress * 100
    )


CLASSES = (FarmSettingValue, FarmJobSettings, FarmJobItem, FarmView)


def register() -> None:
    # setattr: the stubs know no such attributes; Blender adds them here.
    setattr(bpy.types.Scene, "farm_job", bpy.props.PointerProperty(type=FarmJobSettings))  # noqa: B010
    setattr(bpy.types.WindowManager, "farm", bpy.props.PointerProperty(type=FarmView))  # noqa: B010


def unregister() -> None:
    delattr(bpy.types.WindowManager, "farm")
    delattr(bpy.types.Scene, "farm_job")
