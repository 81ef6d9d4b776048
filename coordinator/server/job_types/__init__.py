"""Job types: settings schema + `compile(settings) -> list[TaskSpec]`, one module each.

Adding a job type = adding a module with NAME, LABEL, DESCRIPTION, SCHEMA and
compile() (and optionally report()), and listing it in `_MODULES`. compile() is pure: same settings,
same tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from coordinator.core.protocol import TaskSpec
from coordinator.server.job_types import blender_render, blender_render_progressive, sleep
from coordinator.server.job_types.schema import (
    JSON,
    MAX_TASKS_PER_JOB,
    Setting,
    SettingsError,
    check_task_count,
    validate,
)

__all__ = ["MAX_TASKS_PER_JOB", "REGISTRY", "JobType", "SettingsError", "describe_all", "get"]


@dataclass(frozen=True)
class JobType:
    name: str  # the id used in the API, e.g. "blender-render"
    label: str  # for menus
    description: str  # one or two sentences for artists
    schema: tuple[Setting, ...]  # its settings
    compile_fn: Callable[[JSON], list[TaskSpec]]  # pure
    needs_blend: bool  # a job of this type must come with a .blend
    # Optional: a summary of a job's progress in the type's own terms (e.g. samples
    # reached per frame), from its tasks' kind, status, frames and payload.
    report_fn: Callable[[list[JSON]], JSON] | None = None

    def validate(self, settings: Any) -> JSON:
        return validate(self.schema, settings)

    def compile(self, settings: JSON) -> list[TaskSpec]:
        tasks = self.compile_fn(settings)
        check_task_count(len(tasks))
        return tasks

    def describe(self) -> JSON:
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "needs_blend": self.needs_blend,
            "settings": [s.describe() for s in self.schema],
        }


def _from_module(module: ModuleType) -> JobType:
    return JobType(
        name=module.NAME,
        label=module.LABEL,
        description=module.DESCRIPTION,
        schema=tuple(module.SCHEMA),
        compile_fn=module.compile,
        needs_blend=module.NEEDS_BLEND,
        report_fn=getattr(module, "report", None),
    )


_MODULES: Sequence[ModuleType] = (sleep, blender_render, blender_render_progressive)
REGISTRY: dict[str, JobType] = {m.NAME: _from_module(m) for m in _MODULES}


def get(name: str) -> JobType:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise SettingsError("type", f"unknown job type {name!r} (known: {known})") from None


def describe_all() -> list[JSON]:
    return [jt.describe() for jt in REGISTRY.values()]
