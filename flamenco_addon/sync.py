"""Results home: finished frames from a coordinator on another machine. No `bpy` here.

When the coordinator runs elsewhere (deliver=false), the add-on downloads
each job's outputs into the folder of its output path while Blender is open.
Which jobs belong to which .blend is kept in a small JSON file in the
add-on's user folder (not in the .blend: submitting must not touch the
artist's file), so syncing resumes when the file is opened again. A frame
already in the folder with the same sha256 is not fetched again. With
Overwrite off, a different file already there is kept, unless it is this
job's own earlier download (a progressive frame's noisier preview): the
record remembers what it fetched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.fileoutputs import FileOutputError, local_destination, parse_setting
from coordinator.core.hashing import sha256_file
from coordinator.core.names import UnsafeNameError, check_plain_name, inside
from coordinator.core.protocol import TERMINAL_JOB_STATUSES

from .submission import (
    JobForm,
    SceneSnapshot,
    SubmitError,
    file_output_setting,
    resolve_output,
)

log = logging.getLogger(__name__)


@dataclass
class JobRecord:
    job_id: int  # the coordinator's id
    coordinator: str  # its URL at submit time
    blend: str  # the artist's .blend, absolute
    name: str  # job name, for the panel
    output_dir: str  # where frames land
    deliver: bool  # True: the coordinator writes the frames itself, nothing to sync
    overwrite: bool = True  # replace a different file already there (render.use_overwrite)
    done: bool = False  # every output fetched and the job finished
    submitted_at: float = field(default_factory=time.time)
    fetched: dict[str, str] = field(default_factory=dict)  # name -> sha256 this job brought
    farm: str = ""  # farms.farm_key of the farm's token; "" in records before 0.2
    # The job's File Output files as this computer submitted them (core.fileoutputs'
    # setting text) and the scene's use_file_extension: where those files land
    file_outputs: str = ""
    use_file_extension: bool = True


class JobRecords:
    """The jobs this computer submitted, per .blend, in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> list[JobRecord]:
        with self._lock:
            return self._load()

    def _load(self) -> list[JobRecord]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        known = set(JobRecord.__dataclass_fields__)
        return [JobRecord(**{k: v for k, v in r.items() if k in known}) for r in raw]

    def _save(self, records: list[JobRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in records], indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def add(self, record: JobRecord) -> None:
        with self._lock:
            records = [r for r in self._load() if not _same(r, record)]
            self._save([*records, record])

    def mark_done(self, record: JobRecord) -> None:
        with self._lock:
            records = self._load()
            for r in records:
                if _same(r, record):
                    r.done = True
            self._save(records)

    def save_fetched(self, record: JobRecord) -> None:
        """Remember what the sync brought home for this job (for Overwrite off)."""
        with self._lock:
            records = self._load()
            for r in records:
                if _same(r, record):
                    r.fetched = dict(record.fetched)
            self._save(records)

    def for_blend(self, blend: str) -> list[JobRecord]:
        key = os.path.normcase(os.path.abspath(blend)) if blend else ""
        return [r for r in self.load() if os.path.normcase(r.blend) == key]


def submitted_output(snapshot: SceneSnapshot, form: JobForm, *, reply: Any) -> str:
    """The output pattern this computer submitted, "" when the job has none.

    Frames come home to the folder the artist asked for, never to one the
    coordinator's reply names (a rogue one could name Blender's startup
    scripts). `reply` (the job's output as the coordinator returned it) only
    says whether the job writes files at all.
    """
    if not reply:
        return ""
    asked = form.extra.get("output")
    if not asked:
        try:
            asked = resolve_output(snapshot)
        except SubmitError:
            asked = ""
    if str(reply) != asked:
        log.warning("the farm says the job writes to %r; syncing to %r as submitted", reply, asked)
    return str(asked)


def submitted_file_outputs(snapshot: SceneSnapshot) -> str:
    """The File Output files this computer submitted (resolved here again from the
    scene, as the job's settings were): their files come home where the artist's
    Blender would write them, never where a reply says."""
    if not snapshot.file_outputs:
        return ""
    try:
        return file_output_setting(snapshot)
    except SubmitError:
        return ""


def _same(a: JobRecord, b: JobRecord) -> bool:
    return a.job_id == b.job_id and a.coordinator == b.coordinator


@dataclass
class SyncResult:
    fetched: list[str] = field(default_factory=list)  # names downloaded now
    present: int = 0  # already there with the same content
    kept: list[str] = field(default_factory=list)  # a different file was there; overwrite off
    refused: list[str] = field(default_factory=list)  # why each unsafe name was skipped
    finished: bool = False  # the job ended and every output is home


class HashCache:
    """sha256 of files by (size, mtime), so a folder of frames is hashed once."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int, str]] = {}

    def sha(self, path: Path) -> str | None:
        try:
            st = path.stat()
        except OSError:
            return None
        hit = self._known.get(str(path))
        if hit is not None and hit[:2] == (st.st_size, st.st_mtime_ns):
            return hit[2]
        digest = sha256_file(path)
        self._known[str(path)] = (st.st_size, st.st_mtime_ns, digest)
        return digest


def sync_job(
    client: FarmClient, record: JobRecord, *, cache: HashCache | None = None
) -> SyncResult:
    """Fetch the job's outputs that are not in its folder yet.

    The folder is the one this computer submitted (the record), never one the
    reply names; each name in the reply must be a plain file name that lands
    inside it, or it is skipped before anything is read or written.
    """
    cache = cache or HashCache()
    if not os.path.isabs(record.output_dir):
        raise UnsafeNameError(f"job {record.job_id} has no output folder on this computer")
    job = client.job(record.job_id, tasks=False)
    result = SyncResult()
    folder = Path(record.output_dir)
    streams = record.file_outputs
    if streams and _streams_changed(record, job.get("settings")):
        # Regenerated elsewhere with other File Output files: the farm's names no
        # longer mean what this computer's record says, so none is mapped by it.
        streams = ""
        result.refused.append(
            f"job {record.job_id}'s File Output settings were changed on the farm after"
            " this computer submitted it, so its File Output files are not brought home"
            " (pull them with `lanfarm pull --into DIR`, or submit again from this file)"
        )
    for output in client.outputs(record.job_id):
        try:
            dest = local_destination(
                streams,
                output.get("name"),
                output.get("frame"),
                use_file_extension=record.use_file_extension,
            ) or destination(folder, output.get("name"))
        except UnsafeNameError as ex:
            log.warning("job %s: %s", record.job_id, ex)
            result.refused.append(str(ex))
            continue
        have = cache.sha(dest)
        if have == output["sha256"]:
            result.present += 1
            record.fetched[dest.name] = output[
                "sha256"
            ]  # the farm's file: a refinement may replace it
        elif have is not None and not record.overwrite and have != record.fetched.get(dest.name):
            result.kept.append(output["name"])  # the artist's file, not an earlier download
        else:
            client.download_output(record.job_id, output, dest)
            cache.sha(dest)
            record.fetched[dest.name] = output["sha256"]
            result.fetched.append(output["name"])
    result.finished = job["status"] in TERMINAL_JOB_STATUSES
    return result


def _streams_changed(record: JobRecord, settings: Any) -> bool:
    """Whether the farm's job now lists other File Output files than this computer
    submitted (compared, never used: where files land comes from the record)."""
    if not isinstance(settings, dict):
        return True
    try:
        farm_side = parse_setting(str(settings.get("file_outputs") or ""))
        ours = parse_setting(record.file_outputs)
    except FileOutputError:
        return True
    extension = str(settings.get("use_file_extension", True)).lower() not in ("false", "0")
    return farm_side != ours or extension != record.use_file_extension


def destination(folder: Path, name: Any) -> Path:
    """Where an output named `name` by the coordinator lands in `folder`, or
    UnsafeNameError: a plain file name whose path, links followed, stays inside."""
    plain = check_plain_name(name, what="file name from the farm")
    inside(folder, plain)  # a link planted in the folder must not lead out of it
    return folder / plain


class Syncer:
    """One pass over the unfinished jobs of some .blend files: fetch what came in.

    Runs in the add-on's helper process (service.py), asked again every few
    seconds while Blender is open; all it keeps between passes is in the records.
    """

    def __init__(
        self,
        records: JobRecords,
        token_for: Any,
        *,
        cache: HashCache | None = None,
        on_fetch: Any = None,
    ) -> None:
        self.records = records
        self.token_for = token_for  # url -> token (the preferences' token)
        self.on_fetch = on_fetch  # called with (record, SyncResult) when frames came in
        self.blends: set[str] = set()  # normcase'd absolute paths of the watched files
        self.status: dict[int, str] = {}  # job id -> a line for the panel
        self._cache = cache or HashCache()

    def pending(self) -> list[JobRecord]:
        return [
            r
            for r in self.records.load()
            if not r.deliver and not r.done and os.path.normcase(r.blend) in self.blends
        ]

    def run_once(self) -> None:
        for record in self.pending():
            self._sync_one(record)

    def _sync_one(self, record: JobRecord) -> None:
        client = FarmClient(record.coordinator, token=self.token_for(record.coordinator))
        before = dict(record.fetched)
        try:
            result = sync_job(client, record, cache=self._cache)
        except FarmClientError as ex:
            self.status[record.job_id] = f"can't sync: {ex.message}"
            return
        except UnsafeNameError as ex:
            self.status[record.job_id] = f"can't sync: {ex}"
            return
        except OSError as ex:
            self.status[record.job_id] = f"can't write frames: {ex}"
            return
        finally:
            if record.fetched != before:  # also what came in before a failure
                self.records.save_fetched(record)
        if result.fetched and self.on_fetch is not None:
            self.on_fetch(record, result)
        total = result.present + len(result.fetched)
        self.status[record.job_id] = f"{total} frame(s) home"
        if result.refused:  # one line the artist reads; the log has each name
            more = f" (and {len(result.refused) - 1} more)" if len(result.refused) > 1 else ""
            self.status[record.job_id] += f"; skipped unsafe: {result.refused[0]}{more}"
        if result.finished:
            self.records.mark_done(record)


def adopt_old_folder(old: Path, new: Path) -> Path:
    """`new`, created; an older version's `old` folder becomes it, so job
    records written before the rename are not lost."""
    if old.is_dir() and not new.exists():
        # Another Blender moved it first, or no permission: start afresh.
        with contextlib.suppress(OSError):
            old.rename(new)
    new.mkdir(parents=True, exist_ok=True)
    return new
