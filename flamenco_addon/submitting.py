"""The part of Submit that runs in a thread: rewrite, upload, create the job. No `bpy`.

The shell has already planned the pack, refused missing files and saved the
copy (those need bpy and the main thread); what is left only needs files and
the network, and reports progress on a `background.Channel`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coordinator.client.http import (
    AuthError,
    FarmClient,
    FarmClientError,
    NotFoundError,
    Unreachable,
)

from .background import Channel
from .packing import Cancelled, PackError, PackPlan, rewrite_job, run_rewrite, upload_files
from .submission import (
    JobForm,
    SceneSnapshot,
    SubmitError,
    job_body,
    job_settings,
    scene_settings_of,
)

log = logging.getLogger(__name__)

# Share of the progress bar per stage: the rewrite is a Blender start, the
# upload is what takes time on a real project.
_PREPARE, _UPLOAD = 0.15, 0.80


@dataclass(frozen=True)
class Submission:
    """Everything the thread needs, gathered on the main thread."""

    client: FarmClient  # coordinator URL + token
    plan: PackPlan  # where every file goes
    pack_root: Path  # holds the saved copy at plan.blend_relpath
    rewrite_command: Sequence[str]  # runs rewrite_paths.py; the job file is appended
    snapshot: SceneSnapshot  # the scene as it was at Submit
    form: JobForm  # the artist's choices
    deliver: bool  # the coordinator writes into the output folder itself


def run(sub: Submission, channel: Channel) -> dict[str, Any]:
    """Rewrite paths in the copy, upload what the farm lacks, create the job."""
    channel.progress("prepare", 0.01, f"Contacting the farm at {sub.client.url}")
    sub.client.jobs(limit=1)  # unreachable or a wrong token: say so before any work
    form = with_schema(sub.form, sub.client.job_types())
    job_settings(sub.snapshot, form)  # what the scene can't give: refused before uploading
    channel.progress("prepare", 0.02, "Preparing a copy of the file for the farm")
    job = rewrite_job(sub.plan, sub.pack_root)
    run_rewrite(sub.rewrite_command, job, sub.pack_root / ".work", cancel=channel.cancel)
    _check(channel.cancel)
    files = upload_files(sub.plan, sub.pack_root)
    channel.progress("hash", _PREPARE, f"Checking {len(files)} file(s) against the farm")
    hashes, sent = sub.client.upload_project(files, progress=_upload_progress(channel))
    _check(channel.cancel)
    channel.progress("submit", _PREPARE + _UPLOAD, "Creating the job")
    body = job_body(
        sub.snapshot, form, files=hashes, blend=sub.plan.blend_relpath, deliver=sub.deliver
    )
    created: dict[str, Any] = sub.client.submit(body)
    created["_uploaded_bytes"] = sent
    log.info("job %s submitted: %d files, %d bytes sent", created.get("id"), len(files), sent)
    return created


def with_schema(form: JobForm, job_types: list[dict[str, Any]]) -> JobForm:
    """The form, told which of its job type's settings the scene fills in."""
    for job_type in job_types:
        if job_type.get("name") == form.job_type:
            return replace(form, scene_settings=scene_settings_of(job_type))
    names = ", ".join(sorted(str(t.get("name")) for t in job_types))
    raise SubmitError(f"the farm has no job type {form.job_type!r}; it has {names}")


def _upload_progress(channel: Channel) -> Any:
    last = [-1.0]  # the share last posted: one message per percent is plenty

    def report(done: int, total: int) -> None:
        _check(channel.cancel)  # raised inside the upload: requests stops sending
        share = done / total if total else 1.0
        if share - last[0] < 0.01 and done < total:
            return
        last[0] = share
        mib = f"{done / 1048576:.1f} of {total / 1048576:.1f} MiB"
        channel.progress("upload", _PREPARE + _UPLOAD * share, f"Uploading {mib}")

    return report


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled()


def done_text(job: dict[str, Any]) -> str:
    sent = job.get("_uploaded_bytes", 0)
    upload = f"uploaded {sent / 1048576:.1f} MiB" if sent else "nothing new to upload"
    return f'Job {job.get("id")} "{job.get("name")}" is on the farm ({upload})'


def artist_message(ex: BaseException, *, url: str = "") -> str:
    """One sentence an artist can act on, for any failure of the farm calls."""
    where = f" at {url}" if url else ""
    if isinstance(ex, Unreachable):
        return (
            f"Can't reach the farm coordinator{where}. Is it running, and is the address"
            " in the add-on preferences right?"
        )
    if isinstance(ex, AuthError):
        return (
            f"The farm{where} refused the farm token. Copy the token the coordinator printed"
            " (or the one shown in the Farm panel) into the add-on preferences."
        )
    if isinstance(ex, NotFoundError):
        return f"The farm no longer knows that job: {ex}"
    if isinstance(ex, FarmClientError):
        return f"The farm refused: {ex.message}"
    if isinstance(ex, SubmitError | PackError):
        return str(ex)
    if isinstance(ex, OSError):
        return f"Could not read or write a file: {ex}"
    return f"Unexpected problem ({type(ex).__name__}): {ex}"
