"""The part of Submit that runs in the helper process: rewrite, upload, create the job.
No `bpy`.

The shell has already planned the pack and refused missing files (those need
bpy and Blender's main thread); what is left only needs files and the network.
The shell sends a `Submission` to the helper as JSON (`to_json`), and the
helper runs `run()`, reporting progress on a `background.Channel`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from coordinator.client.http import (
    AuthError,
    FarmClient,
    FarmClientError,
    NotFoundError,
    Unreachable,
)

from . import packcache
from .background import Channel
from .farms import farm_key
from .origins import IDENTITIES
from .packcache import PackCache
from .packing import (
    Cancelled,
    Missing,
    PackedFile,
    PackError,
    PackPlan,
    rewrite_job,
    run_rewrite,
    upload_files,
)
from .submission import (
    JobForm,
    SceneSnapshot,
    SubmitError,
    job_body,
    job_settings,
    output_dir,
    scene_settings_of,
)
from .sync import JobRecord, submitted_file_outputs, submitted_output

log = logging.getLogger(__name__)

# Progress texts are short: the bar sits in the narrow Properties editor.
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
    # The .blend the rewrite opens: the artist's file when it has no unsaved
    # changes, else the copy of them in pack_root ("": that copy)
    main_source: str = ""
    cache_path: Path | None = None  # packcache.PackCache's file; None: no cache
    restore: dict[str, str] = field(default_factory=dict)  # packing.RewriteJob.restore

    def to_json(self) -> dict[str, Any]:
        """What the helper process is sent: plain JSON, rebuilt by from_json()."""
        return {
            "url": self.client.url,
            "token": self.client.token or "",
            "plan": asdict(self.plan),
            "pack_root": str(self.pack_root),
            "rewrite_command": list(self.rewrite_command),
            "snapshot": asdict(self.snapshot),
            "form": {**asdict(self.form), "scene_settings": _listed(self.form.scene_settings)},
            "deliver": self.deliver,
            "main_source": self.main_source,
            "cache_path": str(self.cache_path) if self.cache_path else "",
            "restore": dict(self.restore),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Submission:
        plan = dict(data["plan"])
        for key, kind in (("files", PackedFile), ("blends", PackedFile), ("missing", Missing)):
            plan[key] = [kind(**item) for item in plan[key]]
        form = dict(data["form"])
        if form["scene_settings"] is not None:
            form["scene_settings"] = frozenset(form["scene_settings"])
        return cls(
            client=FarmClient(data["url"], token=data.get("token") or None),
            plan=PackPlan(**plan),
            pack_root=Path(data["pack_root"]),
            rewrite_command=list(data["rewrite_command"]),
            snapshot=SceneSnapshot(**data["snapshot"]),
            form=JobForm(**form),
            deliver=bool(data["deliver"]),
            main_source=str(data.get("main_source", "")),
            cache_path=Path(data["cache_path"]) if data.get("cache_path") else None,
            restore=dict(data.get("restore") or {}),
        )


def _listed(names: frozenset[str] | None) -> list[str] | None:
    return None if names is None else sorted(names)


def run(sub: Submission, channel: Channel) -> dict[str, Any]:
    """Rewrite paths in the copy, upload what the farm lacks, create the job."""
    channel.progress("prepare", 0.01, "Contacting the farm")
    sub.client.jobs(limit=1)  # unreachable or a wrong token: say so before any work
    origin = IDENTITIES.origin(sub.client, sub.snapshot.blend_path)
    form = with_schema(sub.form, sub.client.job_types())
    job_settings(sub.snapshot, form)  # what the scene can't give: refused before uploading
    blends, prepared = _prepared(sub, channel)
    files = {
        rel: path
        for rel, path in upload_files(sub.plan, sub.pack_root).items()
        if rel not in blends
    }
    channel.progress("hash", _PREPARE, f"Checking {len(files)} file(s)")
    hashes, sent = sub.client.upload_project(files, progress=_upload_progress(channel))
    _check(channel.cancel)
    if prepared:
        PackCache(sub.cache_path).put(prepared, {rel: hashes[rel] for rel in _blend_relpaths(sub)})
    hashes.update(blends)
    channel.progress("submit", _PREPARE + _UPLOAD, "Creating the job")
    body = job_body(
        sub.snapshot,
        form,
        files=hashes,
        blend=sub.plan.blend_relpath,
        deliver=sub.deliver,
        origin=origin,
    )
    created: dict[str, Any] = sub.client.submit(body)
    created["_uploaded_bytes"] = sent
    log.info("job %s submitted: %d files, %d bytes sent", created.get("id"), len(hashes), sent)
    return created


def _blend_relpaths(sub: Submission) -> list[str]:
    return [sub.plan.blend_relpath, *(b.relpath for b in sub.plan.blends)]


def _prepared(sub: Submission, channel: Channel) -> tuple[dict[str, str], str]:
    """({relpath: sha} of .blend files the farm already has, key to remember them by).

    A hit skips the rewrite and their upload; a miss prepares them in pack_root,
    and they are remembered under the key once uploaded."""
    main = Path(sub.main_source) if sub.main_source else sub.pack_root / sub.plan.blend_relpath
    sources = [main, *(Path(b.source) for b in sub.plan.blends)]
    k = packcache.key(sub.plan, sources, extra=sub.restore)
    known = PackCache(sub.cache_path).get(k)
    complete = bool(known) and set(known or {}) == set(_blend_relpaths(sub))
    if known and complete and not sub.client.missing(sorted(set(known.values()))):
        channel.progress("prepare", _PREPARE, "The farm has this file already")
        return known, ""
    channel.progress("prepare", 0.02, "Preparing the copy")
    job = rewrite_job(sub.plan, sub.pack_root, sub.main_source, sub.restore)
    run_rewrite(sub.rewrite_command, job, sub.pack_root / ".work", cancel=channel.cancel)
    _check(channel.cancel)
    return {}, k


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


def record_of(sub: Submission, job: dict[str, Any]) -> JobRecord:
    """How this computer remembers the job (sync.JobRecords), for this .blend."""
    settings = job.get("settings") or {}
    out = submitted_output(sub.snapshot, sub.form, reply=settings.get("output"))
    return JobRecord(
        job_id=int(job["id"]),
        coordinator=sub.client.url,
        blend=os.path.abspath(sub.snapshot.blend_path),
        name=str(job.get("name", "")),
        output_dir=output_dir(out) if out else "",
        deliver=sub.deliver or not out,
        overwrite=bool(settings.get("overwrite", True)),
        farm=farm_key(sub.client.token or ""),
        file_outputs=submitted_file_outputs(sub.snapshot),
        use_file_extension=sub.snapshot.use_file_extension,
    )


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
