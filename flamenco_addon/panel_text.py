"""What the panel says, decided without Blender. No `bpy` here.

The panel must not jump under the mouse: the result line has one fixed place
and wraps instead of being cut off, buttons stay where they are and are only
greyed when they make no sense, and secrets are not shown in plain text.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .packing import Missing
from .submission import SceneSnapshot, SubmitError, check_format, file_output_setting

# Roughly the width of one character of Blender's UI font at scale 1, in pixels,
# and what the panel's margins and icon take from a row.
CHAR_PX = 7.0
MARGIN_PX = 60.0
MAX_LINES = 6  # a longer message is shortened at the end, the log has all of it

# Job actions the panel offers, in its order, by the coordinator's action names.
JOB_BUTTONS = ("cancel", "pause", "resume", "requeue", "regenerate")


def wrap(text: str, width_px: float, scale: float = 1.0) -> list[str]:
    """The message in lines that fit a region `width_px` wide at UI `scale`."""
    columns = max(16, int((width_px - MARGIN_PX * scale) / (CHAR_PX * scale)))
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, columns, break_long_words=True) or [""]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], lines[MAX_LINES - 1][: columns - 1] + "…"]
    return lines


def masked(token: str) -> str:
    """A token as the panel shows it: enough to tell two apart, not to use one."""
    if len(token) <= 8:
        return "•" * len(token)
    return f"{token[:4]}{'•' * 8}"


def default_job_name(blend_path: str, *, now: float | None = None) -> str:
    """File name and time of day, so that jobs of one file tell apart in lists."""
    stem = blend_path.replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem[: -len(".blend")] if stem.lower().endswith(".blend") else stem
    stamp = time.strftime("%m-%d %H:%M", time.localtime(now))
    return f"{stem or 'untitled'} {stamp}"


def offered(job: Mapping[str, Any]) -> set[str]:
    """The actions that make sense for the job now: the coordinator says which
    (its `actions`); without that list, by status."""
    actions: Iterable[str] | None = job.get("actions")
    if actions is not None:
        return set(actions) & set(JOB_BUTTONS)
    status = job.get("status", "")
    if status in ("queued", "active"):
        return {"cancel", "pause"}
    if status == "paused":
        return {"cancel", "resume"}
    if status in ("failed", "canceled"):
        return {"requeue", "regenerate"}
    return {"regenerate"}  # completed


def submit_warnings(
    snap: SceneSnapshot | None, *, url: str, token: str, missing: list[Missing]
) -> list[str]:
    """What Submit would refuse or what would fail on the farm, said before the click."""
    out = []
    if url and not token:
        out.append("No farm token: copy the token the farm printed into the add-on preferences")
    if snap is not None and not snap.blend_path:
        out.append("Save your .blend file first: the farm packs it from where it lives")
    if snap is not None:
        try:
            check_format(snap)
        except SubmitError as ex:
            out.append(str(ex)[:1].upper() + str(ex)[1:])
    if snap is not None and snap.blend_path and snap.file_outputs:
        try:  # a File Output node whose files could not come home
            file_output_setting(snap)
        except SubmitError as ex:
            out.append(str(ex)[:1].upper() + str(ex)[1:])
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        listed = "; ".join(m.describe() for m in missing[:3])
        out.append(f"Missing files: {listed}{more}")
    return out


def eta_text(seconds: Any) -> str:
    """What is left of a job, as the farm estimates it (`eta_seconds`): "about 5 min
    left"; "" when the farm has no estimate or sends something that is not one."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return ""
    if not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"about {minutes} min left"
    hours = seconds / 3600
    return f"about {hours:.0f} h left" if hours >= 10 else f"about {hours:.1f} h left"


def job_detail(status: str, reason: str, eta: str) -> str:
    """The line under the Jobs list for the selected job: why it is where it is,
    and how long it has left when the farm can tell."""
    text = reason or status.capitalize()
    running = status in ("queued", "active")  # a paused or finished job has no time left
    return f"{text}, {eta}" if eta and running else text


def stop_asks(local_url: str, listed_url: str, running: int | None) -> bool:
    """Whether Stop Farm asks first: when the farm this computer runs has queued or
    rendering jobs (anyone's: they all stop with it), or when that can't be told
    (the list shows another farm, or has not been fetched yet)."""
    if not local_url:
        return False
    if listed_url != local_url or running is None:
        return True
    return running > 0
