"""What this machine's CLI submitted: for each job, the folder its frames belong in.

`pull` writes where the person asked, never where a reply says: into
`--into DIR`, or into the output folder the person gave when they submitted
the job from here, which `submit` records in this file. A coordinator's
answer can name any folder (a configuration folder, a startup-scripts
folder); this record can only name one the person typed.

The record is private (a 0700 folder in the user's data folder, a 0600 file),
replaced atomically (a new file renamed over the old, so a crash leaves one or
the other), keeps the newest `MAX_JOBS` jobs and no more than `WRITE_BYTES` of
them (the oldest go first), and a damaged one is set aside with a message
instead of stopping a submit. Two submits at once take turns: a lock file next
to the record (created exclusively, so on any OS), waited for `LOCK_WAIT`
seconds at most, and one older than `LOCK_STALE` seconds (left by a process
that died) is broken. Jobs are keyed by the farm's
identity: the SHA-256 of its certificate on a TLS farm (the one it proved
itself with, the same at any address), else its URL, and the job id.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.cli.common import note
from coordinator.client import pinning
from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.datadirs import make_private_dir, user_data_dir
from coordinator.core.outputs import local_output_folder

RECORD_FOLDER = "cli"  # in the user's data folder (core.datadirs)
RECORD_FILE = "submitted-jobs.json"
FORMAT = 1  # the "format" field of the file
MAX_JOBS = 2000  # the newest jobs kept; an older one is pulled with --into
MAX_BYTES = 4 << 20  # a record larger than this is damaged, not read
WRITE_BYTES = MAX_BYTES // 2  # a record is written no larger than this: oldest jobs dropped
LOCK_WAIT = 5.0  # seconds a submit waits for another's turn with the record
LOCK_STALE = 30.0  # a lock file older than this was left by a process that died


class RecordError(Exception):
    """The record cannot be read; the message says where it is and what to do."""


class RecordBusyError(OSError):
    """Another process held the record's lock longer than LOCK_WAIT."""


@dataclass(frozen=True)
class Submitted:
    farm: str  # the farm's identity (farm_identity)
    job_id: int  # the farm's id of the job
    folder: str  # where its frames belong on this machine, as the person gave it
    at: float  # when it was submitted (Unix time)
    # Its File Output files as submitted from here (core.fileoutputs' setting text)
    # and use_file_extension: where pull puts each of them
    file_outputs: str = ""
    use_file_extension: bool = True


def record_path() -> Path:
    return user_data_dir() / RECORD_FOLDER / RECORD_FILE


def farm_identity(client: FarmClient) -> str:
    """Which farm this is: its proven certificate's fingerprint over TLS (a farm
    keeps it when its address changes, and an impostor cannot prove it), else
    its address (plain HTTP is for a farm on this machine)."""
    if client.url.startswith("https://"):
        fingerprint = pinning.proven(client.url, client.token) or client.prove()
        return f"sha256:{fingerprint}"
    return pinning.origin(client.url)


def output_folder_of(settings: dict[str, Any]) -> str | None:
    """The folder a job's output pattern names on this machine (the rule the
    coordinator delivers by), or None when it names none here."""
    pattern = settings.get("output")
    return local_output_folder(pattern) if isinstance(pattern, str) and pattern else None


def record_submission(client: FarmClient, job_id: int, settings: dict[str, Any]) -> None:
    """`submit`'s step after the farm took the job: remember where its frames go.
    The job is submitted whatever happens here; a failure only costs the person
    an --into when they pull, and says so."""
    folder = output_folder_of(settings)
    if folder is None:
        return
    try:
        damaged = remember(
            farm_identity(client),
            job_id,
            folder,
            file_outputs=str(settings.get("file_outputs") or ""),
            use_file_extension=_flag(settings.get("use_file_extension", True)),
        )
    except (OSError, FarmClientError) as ex:
        note(
            f"note: job {job_id}'s output folder was not recorded in {record_path()} ({ex});"
            f" pull it with --into {folder}"
        )
        return
    if damaged:
        note(f"note: {damaged}")


# The settings that decide where a job's files land on this machine.
_PLACES = ("output", "file_outputs", "use_file_extension")


def record_regenerate(client: FarmClient, job_id: int, settings: dict[str, Any]) -> None:
    """`regenerate`'s step after the farm took the new settings: a job recorded
    from here follows its new output folder and File Output destinations, from
    what the person gave (never from the reply), so that `pull` puts the new
    frames where the farm now delivers them."""
    if not any(key in settings for key in _PLACES):
        return
    try:
        farm = farm_identity(client)
        old = recall(farm, job_id)
        if old is None:
            return
        folder = output_folder_of(settings) if "output" in settings else old.folder
        remember(
            farm,
            job_id,
            folder or old.folder,
            file_outputs=str(settings.get("file_outputs", old.file_outputs) or ""),
            use_file_extension=_flag(settings.get("use_file_extension", old.use_file_extension)),
        )
    except (OSError, RecordError, FarmClientError) as ex:
        note(
            f"note: job {job_id}'s record in {record_path()} could not follow the new settings"
            f" ({ex}); pull it with --into DIR"
        )


def _flag(value: Any) -> bool:
    """A bool setting as submit sends it (--set gives text)."""
    return str(value).lower() not in ("false", "no", "0", "off")


def remember(
    farm: str,
    job_id: int,
    folder: str,
    *,
    path: Path | None = None,
    file_outputs: str = "",
    use_file_extension: bool = True,
) -> str | None:
    """Record a job just submitted. Returns a note for the person when the old
    record was damaged and set aside (the job is recorded in a new one)."""
    path = path or record_path()
    note = None
    with _locked(path):
        try:
            jobs = _read(path)
        except RecordError as ex:
            aside = path.with_name(f"{path.name}.damaged")
            os.replace(path, aside)
            jobs, note = [], f"{ex}; it was moved to {aside} and a new record begun"
        jobs = [j for j in jobs if (j.farm, j.job_id) != (farm, job_id)]
        jobs.append(Submitted(farm, job_id, folder, time.time(), file_outputs, use_file_extension))
        _write(path, jobs[-MAX_JOBS:])
    return note


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """The record to this process alone (a read-modify-write by another process
    waits) for at most LOCK_WAIT seconds, else RecordBusyError (an OSError:
    the submit says the job was not recorded, as for any write failure)."""
    lock = make_private_dir(path.parent) / f"{path.name}.lock"
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            _break_if_stale(lock)
        if time.monotonic() > deadline:
            raise RecordBusyError(
                f"another lanfarm held {lock} for over {LOCK_WAIT:g} s; if none is running,"
                " delete that file"
            )
        time.sleep(0.02)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        Path(lock).unlink(missing_ok=True)


def _break_if_stale(lock: Path) -> None:
    """Remove a lock file its process left behind (older than LOCK_STALE)."""
    try:
        if time.time() - lock.stat().st_mtime > LOCK_STALE:
            lock.unlink(missing_ok=True)
    except OSError:
        pass  # gone meanwhile, or not ours to remove: the wait goes on


def recall(farm: str, job_id: int, *, path: Path | None = None) -> Submitted | None:
    """The record of a job submitted from here to this farm, or None.
    RecordError: the record is damaged."""
    for job in reversed(_read(path or record_path())):
        if job.farm == farm and job.job_id == job_id:
            return job
    return None


def _read(path: Path) -> list[Submitted]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return []
    except OSError as ex:
        raise RecordError(f"cannot read the record of submitted jobs {path}: {ex}") from ex
    if len(raw) > MAX_BYTES:
        raise _damaged(path, f"larger than {MAX_BYTES >> 20} MiB")
    try:
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise _damaged(path, f"format {data.get('format')!r}, expected {FORMAT}")
        return [_entry(item) for item in data["jobs"]]
    except RecordError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as ex:
        raise _damaged(path, f"{type(ex).__name__}: {ex}") from ex


def _entry(item: dict[str, Any]) -> Submitted:
    farm, job_id, folder, at = item["farm"], item["job"], item["folder"], item["at"]
    if not (isinstance(farm, str) and isinstance(folder, str) and type(job_id) is int):
        raise TypeError(f"an entry is not a farm, a job id and a folder: {item!r:.200}")
    file_outputs, use_ext = item.get("file_outputs", ""), item.get("use_file_extension", True)
    if not (isinstance(file_outputs, str) and isinstance(use_ext, bool)):
        raise TypeError(f"an entry's File Output files are not text: {item!r:.200}")
    return Submitted(farm, job_id, folder, float(at), file_outputs, use_ext)


def _entry_json(job: Submitted) -> dict[str, Any]:
    entry: dict[str, Any] = {"farm": job.farm, "job": job.job_id, "folder": job.folder}
    entry["at"] = job.at
    if job.file_outputs:
        entry.update(file_outputs=job.file_outputs, use_file_extension=job.use_file_extension)
    return entry


def _damaged(path: Path, why: str) -> RecordError:
    return RecordError(f"the record of submitted jobs {path} is damaged ({why})")


def _write(path: Path, jobs: list[Submitted]) -> None:
    folder = make_private_dir(path.parent)
    text = _fitting_text([_entry_json(j) for j in jobs])
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fitting_text(entries: list[dict[str, Any]]) -> str:
    """The record's text with the newest entries that fit in WRITE_BYTES (well
    under MAX_BYTES, which _read takes): the oldest are dropped first.
    OSError when not even the newest fits (its File Output text is too long)."""
    sizes = [len(json.dumps(e, indent=1)) + 4 for e in entries]  # ASCII: chars are bytes
    total, first = sum(sizes) + 64, 0
    while True:
        while first < len(entries) and total > WRITE_BYTES:
            total -= sizes[first]
            first += 1
        if first == len(entries):
            raise OSError(f"the job's entry is over {WRITE_BYTES} bytes (its File Output settings)")
        text = json.dumps({"format": FORMAT, "jobs": entries[first:]}, indent=1)
        if len(text) <= WRITE_BYTES:
            return text
        total = len(text)  # the estimate was short: drop more
