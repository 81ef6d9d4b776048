"""What `submit` checks before it uploads anything: the settings against the
job type's schema as the coordinator serves it (`GET /job-types`), and the
output path. A project of many gigabytes should not travel to learn that
`chunk_size` was misspelt.

The coordinator stays the judge: it checks everything again when the job
arrives, including what its schema cannot describe (a setting's own check,
like the frame list's grammar, is the server's). This pass only refuses what
the served schema says is wrong, in the coordinator's own words, so the
message is the same whichever side refuses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from coordinator.cli.common import JSON, CliError
from coordinator.core.fileoutputs import reserved_name_problem
from coordinator.core.frames import parse_frames
from coordinator.core.protocol import parse_blender_version

log = logging.getLogger(__name__)

BOOLEANS = {"true", "yes", "1", "on", "false", "no", "0", "off"}


def check_settings(job_type: JSON, settings: Mapping[str, str]) -> None:
    """Refuse, naming every bad setting at once, what the coordinator would refuse."""
    schema = {s["name"]: s for s in job_type["settings"]}
    problems = [
        f"setting '{key}': unknown setting for this job type (known: {', '.join(sorted(schema))})"
        for key in settings
        if key not in schema
    ]
    for name, setting in schema.items():
        value = settings.get(name)
        problem = required_problem(setting) if value is None else value_problem(setting, value)
        if problem:
            problems.append(f"setting '{name}': {problem}")
    if problems:
        raise CliError("; ".join(problems))


def required_problem(setting: JSON) -> str | None:
    return "is required" if setting.get("required") else None


def value_problem(setting: JSON, text: str) -> str | None:
    """Why `text` (as typed after --set) does not fit the setting, or None."""
    kind = setting["type"]
    if kind == "bool":
        ok = text.strip().lower() in BOOLEANS
        return None if ok else f"expected true or false, got {text!r}"
    if kind == "choice":
        choices = setting.get("choices") or []
        return None if text in choices else f"{text!r} is not one of {', '.join(choices)}"
    if kind in ("int", "float"):
        return number_problem(setting, text)
    if setting["name"] == "frames":
        return frames_problem(text)
    return None


def number_problem(setting: JSON, text: str) -> str | None:
    try:
        value = int(text.strip()) if setting["type"] == "int" else float(text.strip())
    except ValueError:
        what = "a whole number" if setting["type"] == "int" else "a number"
        return f"expected {what}, got {text!r}"
    if not math.isfinite(value):
        return f"expected a finite number, got {text!r}"
    low, high = setting.get("minimum"), setting.get("maximum")
    if low is not None and value < low:
        return f"{value} is below the minimum {low:g}"
    if high is not None and value > high:
        return f"{value} is above the maximum {high:g}"
    return None


def frames_problem(text: str) -> str | None:
    """The frame list's grammar is core's, shared with the coordinator."""
    try:
        parse_frames(text)
    except ValueError as ex:
        return str(ex)
    return None


def check_output(settings: Mapping[str, str]) -> None:
    """An empty output would become the current folder itself: frames named
    `<cwd>0001.png` beside it. Refused here, where the folder is known; and a
    name the farm keeps for File Output files, before anything is uploaded."""
    if "output" in settings and not settings["output"].strip():
        raise CliError(
            "--output is empty; give the folder and name the frames should land in,"
            " e.g. --output /renders/shot010/frame_####"
        )
    name = settings.get("output", "").replace("\\", "/").rsplit("/", 1)[-1]
    problem = reserved_name_problem(name)
    if problem is not None:  # before the upload, in the coordinator's own words
        raise CliError(f"--output {settings['output']}: {problem}")


def check_blender_version(text: str) -> None:
    try:
        parse_blender_version(text)
    except ValueError as ex:
        raise CliError(f"--blender-version: {ex}") from ex
