"""`sleep`: tasks that only wait. For tests, demos and farm health checks."""

from __future__ import annotations

from coordinator.core.protocol import TaskSpec
from coordinator.server.job_types.schema import JSON, Setting

NAME = "sleep"
LABEL = "Sleep (test)"
DESCRIPTION = "Each task waits a few seconds. Checks that workers pick up and finish tasks."
NEEDS_BLEND = False

SCHEMA = (
    Setting("task_count", "int", "Tasks", "How many tasks", default=3, minimum=1, maximum=100_000),
    Setting(
        "seconds",
        "float",
        "Seconds",
        "How long each task waits",
        default=1.0,
        minimum=0.0,
        maximum=86_400.0,
    ),
    Setting(
        "uneven",
        "float",
        "Uneven",
        "Tasks of uneven length: each waits Seconds times 1 - Uneven, 1, or 1 + Uneven, in turn",
        default=0.0,
        minimum=0.0,
        maximum=1.0,
    ),
)


def compile(settings: JSON) -> list[TaskSpec]:
    count, seconds = settings["task_count"], settings["seconds"]
    uneven = settings.get("uneven") or 0.0
    return [
        TaskSpec(
            name=f"sleep {i + 1}/{count}",
            kind="sleep",
            payload={"seconds": seconds * (1 + uneven * (i % 3 - 1))},
        )
        for i in range(count)
    ]
