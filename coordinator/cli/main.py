"""`python -m coordinator ...`: run a farm, submit jobs and look after them.

Every command except `serve` and `openapi-docs` talks to a coordinator through
the one HTTP client, `coordinator.client.http.FarmClient`. Results go to stdout
(`submit` prints only the job id there, so scripts can capture it); notes and
progress go to stderr. An expected failure prints one `error: ...` line and
exits with a code scripts can branch on (the EXIT_* constants), never with a
traceback.

No bpy, no aiohttp at import time: `serve` and `openapi-docs` import what they
need when they run, so the client commands start quickly.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import ntpath
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests

from coordinator.client.http import AuthError, FarmClient, FarmClientError, Progress, Unreachable
from coordinator.core.hashing import sha256_file
from coordinator.core.outputs import output_folder as folder_of
from coordinator.core.protocol import TERMINAL_JOB_STATUSES, JobStatus

log = logging.getLogger(__name__)

JSON = dict[str, Any]

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed or was canceled (--wait), a person said no, a server fault
EXIT_USAGE = 2  # bad options or input; the coordinator refused the request (4xx)
EXIT_UNREACHABLE = 3  # no coordinator at that address, or none found on the LAN
EXIT_AUTH = 4  # wrong or missing farm token

DISCOVERY_TIMEOUT = 3.0  # seconds to look for a coordinator by zeroconf
WAIT_POLL = 1.0  # seconds between job status polls of --wait
WAIT_OUTAGE = 60.0  # how long --wait rides out an unreachable coordinator
LOG_TAIL = 4000  # bytes of a failed task's log that --wait shows
LOOPBACK = ("127.0.0.1", "localhost", "::1")

NO_COORDINATOR = (
    "no farm coordinator found on the LAN within {timeout:g} s; pass --coordinator URL"
    " (or set FARM_COORDINATOR), or start one with `python -m coordinator serve`"
)


class CliError(Exception):
    """An expected failure: the message is for a person, the code for scripts."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ============================================================ connecting
class CliClient(FarmClient):
    """FarmClient that counts the files it actually sends, for submit's summary."""

    files_sent = 0

    def upload_file(self, sha: str, path: Path, *, progress: Progress | None = None) -> None:
        super().upload_file(sha, path, progress=progress)
        self.files_sent += 1


class Connection:
    """The coordinator a command talks to, found and opened on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._client: CliClient | None = None

    def client(self) -> CliClient:
        if self._client is None:
            url = coordinator_url(self.args)
            self._client = CliClient(url, token=farm_token(self.args, url))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()


def coordinator_url(args: argparse.Namespace) -> str:
    url = args.coordinator or os.environ.get("FARM_COORDINATOR")
    if not url:
        return discover(args.zeroconf_interfaces)
    if "://" not in url:
        url = f"http://{url}"  # "render-boss:8765" is what people type
    return url


def farm_token(args: argparse.Namespace, url: str) -> str | None:
    """--token, FARM_TOKEN, or the token of a coordinator on this machine.

    The local token.txt is only ever sent to a loopback address, so a token
    never leaves the machine for a coordinator it does not belong to.
    """
    token = args.token or os.environ.get("FARM_TOKEN")
    if token or urlsplit(url).hostname not in LOOPBACK:
        return token
    from coordinator.server.serve import default_data_dir

    path = default_data_dir() / "token.txt"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def discover(interfaces: list[str] | None) -> str:
    from coordinator.client import browser as discovery

    found = discovery.find_coordinators(
        first=True, timeout=DISCOVERY_TIMEOUT, interfaces=interfaces
    )
    usable = [c for c in found if c.compatible]
    if not usable:
        if found:
            raise CliError(
                f"found {found[0].name!r} at {found[0].url}, but it speaks API version"
                f" {found[0].api_version or '?'}; update this client or pass --coordinator",
                EXIT_UNREACHABLE,
            )
        raise CliError(NO_COORDINATOR.format(timeout=DISCOVERY_TIMEOUT), EXIT_UNREACHABLE)
    chosen = usable[0]
    note(f"using coordinator {chosen.name!r} at {chosen.url} (found on the LAN)")
    return chosen.url


def exit_code_for(ex: FarmClientError) -> int:
    if isinstance(ex, Unreachable):
        return EXIT_UNREACHABLE
    if isinstance(ex, AuthError) or ex.status in (401, 403):
        return EXIT_AUTH
    if ex.status is not None and 400 <= ex.status < 500:
        return EXIT_USAGE
    return EXIT_FAILED


# ========================================================== small output
def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain text table; columns as wide as their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {fraction * 100:3.0f}%"


class StatusLine:
    """Progress on stderr: one updating line on a terminal, plain lines elsewhere.

    Plain lines are for logs and CI: a line when something important changed,
    otherwise at most one every `every` seconds.
    """

    def __init__(self, stream: TextIO, *, every: float = 10.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every
        self._last_text = ""
        self._last_time = 0.0
        self._width = 0

    def show(self, text: str, *, important: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if important or now - self._last_time >= 0.1:
                self.stream.write("\r" + text.ljust(self._width))
                self.stream.flush()
                self._width, self._last_time = len(text), now
        elif text != self._last_text and (important or now - self._last_time >= self.every):
            print(text, file=self.stream, flush=True)
            self._last_text, self._last_time = text, now

    def close(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()


def task_counts(job: JSON) -> tuple[int, int]:
    counts = job.get("task_counts") or {}
    return counts.get("completed", 0), sum(counts.values())


# ================================================================= serve
def cmd_serve(args: argparse.Namespace, conn: Connection) -> int:

    from coordinator.server.serve import (
        ServeOptions,
        default_data_dir,
        default_name,
        run_server,
        serve_forever,
    )

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    options = ServeOptions(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else default_data_dir(),
        token=args.token,
        name=args.name or default_name(),
        zeroconf=not args.no_zeroconf,
        zeroconf_interfaces=args.zeroconf_interfaces or None,
        lease_seconds=args.lease_seconds,
    )
    try:
        serve_forever(run_server(options))
    except KeyboardInterrupt:
        pass
    except OSError as ex:
        where = f"{options.host}:{options.port or 'default port'}"
        raise CliError(f"cannot serve on {where}: {ex.strerror or ex}") from ex
    return EXIT_OK


# ============================================================ blend files
_HEADER_V0 = re.compile(rb"BLENDER[-_][vV](\d{3})")  # up to 4.x: 'BLENDER-v304' = 3.4
# 5.0+: 'BLENDER' + header size '17' + '-' + format version '01' + 'v' + '0500' = 5.0
_HEADER_V1 = re.compile(rb"BLENDER(\d\d)-(\d\d)v(\d{4})")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def version_from_header(head: bytes) -> str | None:
    """'3.4' from the first bytes of an uncompressed .blend; None if they are no header.

    The number is BLENDER_FILE_VERSION: major * 100 + minor (304, 279, 500).
    See BLO_core_blend_header.hh for both layouts.
    """
    match = _HEADER_V1.match(head) or _HEADER_V0.match(head)
    if match is None:
        return None
    number = int(match.groups()[-1])
    return f"{number // 100}.{number % 100}"


def read_blend_version(path: Path) -> tuple[str | None, str]:
    """(the Blender version that saved the file, or None; why it could not be read)."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
            if head.startswith(_GZIP_MAGIC):  # files saved compressed before Blender 3.0
                f.seek(0)
                with gzip.GzipFile(fileobj=f) as unzipped:
                    head = unzipped.read(64)
    except (OSError, EOFError) as ex:
        return None, f"cannot read its header ({ex})"
    if head.startswith(_ZSTD_MAGIC):
        return None, "it is zstd-compressed, which this Python cannot read"
    version = version_from_header(head)
    return version, "" if version else "it does not start with a .blend header"


# ================================================================= submit
def cmd_submit(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    job_type = find_job_type(client.job_types(), args.type)
    blend = blend_argument(args.blend, job_type, project=args.project)
    settings = settings_from_args(args)
    if "output" in settings:
        settings["output"] = absolute_output(settings["output"], blend)
    body: JSON = {
        "name": args.name or default_job_name(job_type["name"], blend),
        "type": job_type["name"],
        "priority": args.priority,
        "settings": settings,
        "submitter": default_submitter(),
        "deliver": not args.no_deliver,
        "max_attempts": args.max_attempts,
    }
    if blend is not None:
        files, body["blend"] = project_for(blend, args.project)
        body["files"] = upload(client, files)
        body["blender_version"] = args.blender_version or version_of(blend)
    elif args.blender_version:
        body["blender_version"] = args.blender_version
    job = client.submit(body)
    print(job["id"], flush=True)
    total = task_counts(job)[1]
    note(f"job {job['id']} {job['name']!r} submitted: {plural(total, 'task')} ({job['type']})")
    return wait_for_job(client, job["id"]) if args.wait else EXIT_OK


def find_job_type(types: list[JSON], name: str) -> JSON:
    for job_type in types:
        if job_type["name"] == name:
            return job_type
    known = ", ".join(sorted(t["name"] for t in types))
    raise CliError(f"unknown job type {name!r}; this farm knows: {known}")


def blend_argument(text: str | None, job_type: JSON, *, project: str | None) -> Path | None:
    if text is None:
        if project:
            raise CliError("--project needs BLEND: the .blend inside it to render")
        if job_type["needs_blend"]:
            raise CliError(
                f"a {job_type['name']} job needs a .blend file, e.g."
                f" python -m coordinator submit shot.blend --type {job_type['name']} ..."
            )
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise CliError(f"{text}: no such file")
    return path.resolve()


def settings_from_args(args: argparse.Namespace) -> dict[str, str]:
    """--set KEY=VALUE pairs plus the shortcuts; the coordinator parses the strings."""
    settings: dict[str, str] = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--set {item!r}: expected KEY=VALUE, e.g. --set samples=64")
        settings[key.strip()] = value
    shortcuts = {"frames": args.frames, "chunk_size": args.chunk_size, "output": args.output}
    for key, value in shortcuts.items():
        if value is None:
            continue
        if key in settings and settings[key] != value:
            raise CliError(f"--{key.replace('_', '-')} and --set {key}=... disagree; give one")
        settings[key] = value
    return settings


def absolute_output(path: str, blend: Path | None) -> str:
    """The output pattern as an absolute path on this machine, as Blender would resolve it."""
    from coordinator.core.outputs import resolve_blender_relative

    if path.startswith("//"):  # Blender's "relative to the .blend"
        if blend is None:
            raise CliError(f"output {path!r} is relative to the .blend, but there is no .blend")
        try:
            return resolve_blender_relative(path, str(blend.parent))
        except ValueError as ex:
            raise CliError(f"output: {ex}") from ex
    if ntpath.splitdrive(path)[0] and ntpath.isabs(path):
        return path  # a Windows path stays Windows-shaped, wherever this runs
    absolute = os.path.abspath(os.path.expanduser(path))
    return absolute + os.sep if path.endswith(("/", os.sep)) else absolute


def default_job_name(type_name: str, blend: Path | None) -> str:
    return blend.stem if blend is not None else f"{type_name} {time.strftime('%Y-%m-%d %H:%M')}"


def default_submitter() -> str:
    try:
        import getpass

        user = getpass.getuser()
    except (ImportError, KeyError, OSError):
        user = "someone"
    return f"{user}@{platform.node() or 'localhost'}"


def version_of(blend: Path) -> str | None:
    version, why = read_blend_version(blend)
    if version is None:
        note(
            f"note: cannot tell which Blender saved {blend.name}: {why}; any worker may"
            " take the job (pass --blender-version X.Y to require one at least as new)"
        )
    return version


_BACKUP = re.compile(r"\.blend\d+$")  # Blender's save versions: .blend1, .blend2, ...


def project_files(root: Path) -> dict[str, Path]:
    """Every file of a project folder by project path (forward slashes).

    Hidden files and folders, __pycache__ and .blend1 backups stay home.
    """
    files: dict[str, Path] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(names):
            if name.startswith(".") or _BACKUP.search(name):
                continue
            path = Path(folder, name)
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path
    return files


def project_for(blend: Path, project: str | None) -> tuple[dict[str, Path], str]:
    """(files to send by project path, the .blend's project path)."""
    if project is None:
        return {blend.name: blend}, blend.name
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise CliError(f"--project {project}: not a folder")
    try:
        rel = blend.relative_to(root).as_posix()
    except ValueError:
        raise CliError(f"{blend} is not inside the project folder {root}") from None
    files = project_files(root)
    files[rel] = blend  # even if its name looks hidden
    return files, rel


def upload(client: CliClient, files: dict[str, Path]) -> dict[str, str]:
    size = sum(p.stat().st_size for p in files.values())
    if len(files) > 1 or size > 100e6:
        note(f"checking {plural(len(files), 'file')} ({megabytes(size)}) against the farm...")
    line = StatusLine(sys.stderr)

    def progress(done: int, total: int) -> None:
        line.show(f"uploading {bar(done / total if total else 1.0)} {megabytes(done)}")

    before = client.files_sent
    hashes, sent = client.upload_project(files, progress=progress)
    line.close()
    count = client.files_sent - before
    already = len(set(hashes.values())) - count
    note(f"uploaded {plural(count, 'file')} ({megabytes(sent)}), {already} already on the farm")
    return hashes


# ================================================================== wait
def wait_for_job(client: FarmClient, job_id: int, *, poll: float = WAIT_POLL) -> int:
    """Show progress until the job ends: 0 when it completed, 1 otherwise."""
    line = StatusLine(sys.stderr)
    try:
        job = watch(client, job_id, line, poll=poll)
    except KeyboardInterrupt:
        line.close()
        note(f"stopped watching; job {job_id} goes on (python -m coordinator job {job_id})")
        raise
    line.close()
    if job["status"] == JobStatus.COMPLETED:
        note(f"job {job_id} completed")
        return EXIT_OK
    explain_failure(client, job)
    return EXIT_FAILED


def watch(client: FarmClient, job_id: int, line: StatusLine, *, poll: float) -> JSON:
    """Poll the job until it ends; returns its last state."""
    last: tuple[str, int] | None = None
    while True:
        job = poll_job(client, job_id)
        done, total = task_counts(job)
        line.show(
            f"job {job_id} {bar(job['progress'])} {done}/{total} tasks {job['status']}",
            important=(job["status"], done) != last,
        )
        last = (job["status"], done)
        if job["status"] in TERMINAL_JOB_STATUSES:
            return job
        time.sleep(poll)


def poll_job(client: FarmClient, job_id: int) -> JSON:
    """The job, riding out a coordinator that restarts for up to WAIT_OUTAGE seconds."""
    deadline = time.monotonic() + WAIT_OUTAGE
    while True:
        try:
            return client.job(job_id, tasks=False)
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(WAIT_POLL)


def explain_failure(client: FarmClient, job: JSON) -> None:
    note(f"job {job['id']} {job['status']}: {job.get('status_reason') or 'no reason given'}")
    if job["status"] != JobStatus.FAILED:
        return
    failed = client.tasks(job["id"], status="failed", limit=1)["tasks"]
    if not failed:
        return
    task = failed[0]
    text = client.task_log(task["id"], tail=LOG_TAIL).rstrip()
    note(f"--- end of the log of task {task['id']} ({task['name']}) ---")
    note(text or "(the log is empty)")
    note(f"--- full log: python -m coordinator log {task['id']}")


# ============================================================ inspecting
def cmd_job_types(args: argparse.Namespace, conn: Connection) -> int:
    types = conn.client().job_types()
    if args.json:
        print(json.dumps(types, indent=2))
        return EXIT_OK
    for job_type in types:
        needs = "  (needs a .blend)" if job_type["needs_blend"] else ""
        print(f"{job_type['name']}: {job_type['label']}{needs}")
        print(f"  {job_type['description']}")
        rows = [setting_row(s) for s in job_type["settings"]]
        text = table(("SETTING", "TYPE", "DEFAULT", "DESCRIPTION"), rows)
        print("  " + text.replace("\n", "\n  "))
        print()
    return EXIT_OK


def setting_row(setting: JSON) -> list[str]:
    if setting["required"]:
        default = "(required)"
    elif setting.get("default") is None:
        default = "(unset)"
    else:
        default = json.dumps(setting["default"]).strip('"')
    text = setting.get("description") or setting["label"]
    if setting.get("choices"):
        text += f" (one of {', '.join(setting['choices'])})"
    return [setting["name"], setting["type"], default, text]


def cmd_jobs(args: argparse.Namespace, conn: Connection) -> int:
    filters = {
        key: getattr(args, key)
        for key in ("status", "type", "name", "submitter", "after", "before", "sort")
    }
    page = conn.client().jobs(**filters, limit=args.limit, offset=args.offset)
    if args.json:
        print(json.dumps(page, indent=2))
        return EXIT_OK
    jobs = page["jobs"]
    if not jobs:
        note("no jobs match" if any(filters.values()) else "no jobs yet")
        return EXIT_OK
    headers = ("ID", "NAME", "TYPE", "STATUS", "PROGRESS", "TASKS", "SUBMITTED")
    print(table(headers, map(job_row, jobs)))
    for job in jobs:
        if job.get("warning"):
            note(f"job {job['id']}: {job['warning']}")
    shown_to = page["offset"] + len(jobs)
    if page["total"] > len(jobs):
        note(f"jobs {page['offset'] + 1}-{shown_to} of {page['total']} (--limit, --offset)")
    return EXIT_OK


def job_row(job: JSON) -> list[object]:
    done, total = task_counts(job)
    return [
        job["id"],
        clip(job["name"], 40),
        job["type"],
        job["status"],
        f"{job['progress'] * 100:.0f}%",
        f"{done}/{total}",
        when(job.get("created_at")),
    ]


def cmd_job(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    if args.json:
        print(json.dumps(client.job(args.job_id, tasks=True), indent=2))
        return EXIT_OK
    job = client.job(args.job_id, tasks=False)
    print(job_details(job))
    page = client.tasks(args.job_id, status=args.tasks, limit=args.limit)
    tasks = page["tasks"]
    if tasks:
        workers = {w["id"]: w["name"] for w in client.workers()} if any_worker(tasks) else {}
        print()
        print(task_table(tasks, workers))
    if page["total"] > len(tasks):
        note(f"the first {len(tasks)} of {page['total']} tasks; see more with --limit N")
    elif args.tasks and not tasks:
        note(f"no {args.tasks} tasks")
    return EXIT_OK


def any_worker(tasks: list[JSON]) -> bool:
    return any(t.get("worker_id") for t in tasks)


def job_details(job: JSON) -> str:
    done, total = task_counts(job)
    status = job["status"] + (f" ({job['status_reason']})" if job.get("status_reason") else "")
    blend = job.get("blend") or "-"
    if job.get("blender_version"):
        blend += f" (saved with Blender {job['blender_version']})"
    lines = [
        f"job {job['id']}: {job['name']}",
        f"  type:       {job['type']}",
        f"  status:     {status}",
        f"  progress:   {bar(job['progress'])}  {done}/{total} tasks done",
        f"  priority:   {job['priority']}",
        f"  blend:      {blend}",
        f"  submitter:  {job.get('submitter') or '-'}",
        f"  submitted:  {when(job.get('created_at'))}   updated: {when(job.get('updated_at'))}",
        f"  deliver:    {'yes' if job.get('deliver') else 'no'}"
        f"   attempts per task: {job.get('max_attempts')}",
        "  settings:",
    ]
    lines += [f"    {k} = {json.dumps(v)}" for k, v in (job.get("settings") or {}).items()]
    if job.get("generation", 1) > 1:
        lines.insert(4, f"  generation: {job['generation']} (regenerated)")
    if job.get("warning"):
        lines.insert(3, f"  warning:    {job['warning']}")
    blocked = [
        f"{b['name'] or b['worker_id'][:8]} ({b['failures']} failures)"
        for b in job.get("blocklist") or []
    ]
    if blocked:
        lines.append(f"  blocklisted workers: {', '.join(blocked)} (clear-blocklist {job['id']})")
    return "\n".join(lines)


def task_table(tasks: list[JSON], workers: dict[str, str]) -> str:
    rows = [
        [
            t["id"],
            clip(t["name"], 30),
            t["status"],
            f"{(t.get('progress') or 0) * 100:.0f}%",
            t.get("attempts", 0),
            workers.get(t.get("worker_id") or "", (t.get("worker_id") or "")[:8]),
            clip(t.get("activity") or "", 50),
        ]
        for t in tasks
    ]
    return table(("TASK", "NAME", "STATUS", "PROGRESS", "TRIES", "WORKER", "ACTIVITY"), rows)


def cmd_log(args: argparse.Namespace, conn: Connection) -> int:
    text = conn.client().task_log(args.task_id, tail=args.tail)
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    return EXIT_OK


def cmd_workers(args: argparse.Namespace, conn: Connection) -> int:
    workers = conn.client().workers()
    if args.json:
        print(json.dumps(workers, indent=2))
        return EXIT_OK
    if not workers:
        note("no workers yet; start one with: python -m worker_agent")
        return EXIT_OK
    now = time.time()
    rows = [
        [
            clip(w["name"], 30),
            w["id"][:8],
            w["status"] + (" (disabled)" if w.get("disabled") else ""),
            w.get("blender_version") or "",
            ", ".join(w.get("devices") or []),
            f"job {w['task']['job_id']}: {clip(w['task']['name'], 30)}" if w.get("task") else "",
            f"{max(0, now - (w.get('last_seen') or now)):.0f} s ago",
        ]
        for w in workers
    ]
    print(table(("WORKER", "ID", "STATUS", "BLENDER", "DEVICES", "TASK", "LAST SEEN"), rows))
    return EXIT_OK


# =============================================================== actions
def cmd_action(args: argparse.Namespace, conn: Connection) -> int:
    body = {"which": "all" if args.all else "failed"} if args.command == "requeue" else None
    job = conn.client().job_action(args.job_id, args.command, body)
    print(f"job {job['id']} {job['name']!r}: {job['status']}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    if not args.yes and sys.stdin.isatty():
        job = client.job(args.job_id, tasks=False)
        answer = input(
            f"Delete job {job['id']} {job['name']!r} ({job['status']}) with its logs and"
            " stored outputs? Frames already delivered stay. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            note("not deleted")
            return EXIT_FAILED
    client.delete_job(args.job_id)
    print(f"job {args.job_id} deleted")
    return EXIT_OK


def cmd_regenerate(args: argparse.Namespace, conn: Connection) -> int:
    settings: JSON = dict(settings_from_args(args))
    if "output" in settings:
        settings["output"] = absolute_output(settings["output"], None)
    job = conn.client().regenerate_job(args.job_id, settings, keep_completed=not args.fresh)
    done = job.get("regenerated") or {}
    print(f"job {job['id']} {job['name']!r}: {job['status']}")
    note(
        f"{plural(done.get('tasks', 0), 'task')}, {done.get('kept', 0)} kept as finished,"
        f" {done.get('stopped', 0)} running stopped; {job.get('status_reason', '')}"
    )
    return EXIT_OK


def cmd_priority(args: argparse.Namespace, conn: Connection) -> int:
    job = conn.client().set_priority(args.job_id, args.priority)
    print(f"job {job['id']} {job['name']!r}: priority {job['priority']}")
    return EXIT_OK


def cmd_clear_blocklist(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    worker = find_worker(client, args.worker)["id"] if args.worker else None
    job = client.clear_blocklist(args.job_id, worker_id=worker)
    print(f"job {job['id']} {job['name']!r}: blocklist cleared")
    return EXIT_OK


def cmd_task_action(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    if args.command == "requeue-task":
        task = client.requeue_task(args.task_id)
    else:
        task = client.cancel_task(args.task_id)
    print(f"task {task['id']} {task['name']!r} of job {task['job_id']}: {task['status']}")
    return EXIT_OK


def cmd_worker_action(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    worker = find_worker(client, args.worker)
    if args.command == "remove-worker":
        if not args.yes and sys.stdin.isatty():
            answer = input(f"Remove worker {worker['name']} ({worker['id']})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                note("not removed")
                return EXIT_FAILED
        client.remove_worker(worker["id"])
        print(f"worker {worker['name']} removed")
        return EXIT_OK
    if args.command == "enable":
        worker = client.enable_worker(worker["id"])
    else:
        worker = client.disable_worker(worker["id"], now=args.now)
    state = "disabled" if worker["disabled"] else "enabled"
    print(f"worker {worker['name']}: {state} ({worker['status']})")
    return EXIT_OK


def find_worker(client: FarmClient, text: str) -> JSON:
    """A worker by its id, its name, or the start of its id (as `workers` shows it)."""
    workers = client.workers()
    for key in ("id", "name"):
        found = [w for w in workers if w[key] == text]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            ids = ", ".join(w["id"][:8] for w in found)
            raise CliError(f"{len(found)} workers are called {text!r} ({ids}); give an id")
    found = [w for w in workers if len(text) >= 4 and w["id"].startswith(text)]
    if len(found) == 1:
        return found[0]
    raise CliError(f"no worker {text!r}; `python -m coordinator workers` lists them")


# ================================================================== pull
def cmd_pull(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    if args.into:
        into = Path(args.into).expanduser()
    else:
        into = output_folder(client.job(args.job_id, tasks=False))
    outputs = client.outputs(args.job_id)
    todo, present = plan_pull(outputs, into)
    line = StatusLine(sys.stderr)
    for i, (output, dest) in enumerate(todo, 1):
        line.show(f"pulling {i}/{len(todo)} {output['name']}")
        client.download_output(args.job_id, output, dest)
    line.close()
    size = sum(int(o.get("size") or 0) for o, _ in todo)
    print(
        f"pulled {plural(len(todo), 'file')} ({megabytes(size)}) into {into};"
        f" {present} already there"
    )
    return EXIT_OK


def output_folder(job: JSON) -> Path:
    """Where the job's frames belong: the folder of its output pattern, by the
    same rule the coordinator delivers by (`core.outputs.output_folder`)."""
    pattern = str((job.get("settings") or {}).get("output") or "")
    if not pattern:
        raise CliError(f"job {job['id']} has no output setting; pass --into DIR")
    if ntpath.splitdrive(pattern)[0] and os.name != "nt":
        raise CliError(f"job {job['id']} writes to a Windows path ({pattern}); pass --into DIR")
    folder = folder_of(pattern.replace("\\", "/") if os.name != "nt" else pattern)
    if not folder or not Path(folder).is_absolute():
        raise CliError(
            f"job {job['id']} has no absolute output folder ({pattern}); pass --into DIR"
        )
    return Path(folder)


def plan_pull(outputs: list[JSON], into: Path) -> tuple[list[tuple[JSON, Path]], int]:
    """(outputs to fetch with their destination, how many are already there)."""
    todo: list[tuple[JSON, Path]] = []
    present = 0
    for output in outputs:
        name = output["name"]
        if Path(name).name != name or name in ("", ".", ".."):
            note(f"skipping {name!r}: not a plain file name")
            continue
        dest = into / name
        if dest.is_file():
            if sha256_file(dest) == output["sha256"]:
                present += 1
                continue
            note(f"replacing {dest}: the farm's copy is different")
        todo.append((output, dest))
    return todo, present


# ========================================================== openapi-docs
def cmd_openapi_docs(args: argparse.Namespace, conn: Connection) -> int:
    from coordinator.server.openapi import openapi_document

    text = openapi_markdown(openapi_document())
    if args.out == "-":
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    note(f"wrote {out}")
    return EXIT_OK


_METHODS = ("get", "post", "put", "patch", "delete")


def openapi_markdown(doc: JSON) -> str:
    """A Markdown API reference: one section per tag, then the schemas."""
    info = doc["info"]
    lines = [
        f"# {info['title']}: HTTP API v{info['version']}",
        "",
        info.get("description", ""),
        "",
        "Generated from the coordinator's OpenAPI document (also served at"
        " `/api/v1/openapi.json`) by `python -m coordinator openapi-docs --out docs/api.md`;"
        " edit `coordinator/server/openapi.py`, not this file.",
        "",
        "## Authentication",
        "",
    ]
    for name, scheme in doc.get("components", {}).get("securitySchemes", {}).items():
        text = scheme.get("description", "")
        lines.append(f"- `{name}`: `Authorization: Bearer <token>` with {text}")
    lines.append("")
    by_tag: dict[str, list[tuple[str, str, JSON]]] = {}
    for path, ops in doc["paths"].items():
        for method in _METHODS:
            if method in ops:
                tag = (ops[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method, path, ops[method]))
    for tag, ops_of_tag in by_tag.items():
        lines += [f"## {tag}", ""]
        for method, path, op in ops_of_tag:
            lines += operation_markdown(method, path, op, doc)
    lines += ["## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", "", *fields_markdown(schema, doc), ""]
    return "\n".join(lines).rstrip() + "\n"


def operation_markdown(method: str, path: str, op: JSON, doc: JSON) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", op.get("summary", ""), ""]
    security = [name for req in op.get("security", []) for name in req]
    lines += [f"Auth: {', '.join(f'`{s}`' for s in security) or 'none'}", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        lines += [
            f"| `{p['name']}` | {p['in']} | {schema_type(p.get('schema', {}))} |"
            f" {'yes' if p.get('required') else 'no'} |"
            f" {cell(describe(p.get('schema', {}), p.get('description', '')))} |"
            for p in params
        ]
        lines.append("")
    body = op.get("requestBody")
    if body:
        for content_type, media in body.get("content", {}).items():
            schema = media.get("schema", {})
            lines += [f"Request body (`{content_type}`): {schema_type(schema)}", ""]
            lines += [*fields_markdown(schema, doc), ""] if content_type.endswith("json") else []
    lines += ["| response | description | content |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        content = ", ".join(
            f"`{ct}` {schema_type(media.get('schema', {}))}"
            for ct, media in response.get("content", {}).items()
        )
        lines.append(f"| {status} | {cell(response.get('description', ''))} | {content} |")
    return [*lines, ""]


def resolve(schema: JSON, doc: JSON) -> JSON:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    resolved: JSON = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return resolved


def fields_markdown(schema: JSON, doc: JSON) -> list[str]:
    schema = resolve(schema, doc)
    props = schema.get("properties")
    if not props:
        return [f"Type: {schema_type(schema)}"]
    required = set(schema.get("required", []))
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    lines += [
        f"| `{name}` | {schema_type(prop)} | {'yes' if name in required else 'no'} |"
        f" {cell(describe(prop, prop.get('description', '')))} |"
        for name, prop in props.items()
    ]
    return lines


def schema_type(schema: JSON) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    kind = schema.get("type")
    if isinstance(kind, list):
        text = " or ".join(kind)
    elif kind == "array" and schema.get("items"):
        text = f"array of {schema_type(schema['items'])}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"object of {schema_type(schema['additionalProperties'])}"
    else:
        text = str(kind or "any")
    return text + (f" ({schema['format']})" if schema.get("format") else "")


def describe(schema: JSON, text: str) -> str:
    """A description with the schema's constraints appended."""
    extra = []
    if "enum" in schema:
        extra.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    for key, label in (("minimum", "min"), ("maximum", "max"), ("maxLength", "max length")):
        if key in schema:
            extra.append(f"{label} {schema[key]}")
    if "default" in schema:
        extra.append(f"default `{json.dumps(schema['default'])}`")
    if "pattern" in schema:
        extra.append(f"pattern `{schema['pattern']}`")
    return "; ".join([t for t in (text, *extra) if t])


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ================================================================ parser
Command = Callable[[argparse.Namespace, Connection], int]


def connection_options(*, suppress: bool, coordinator: bool = True) -> argparse.ArgumentParser:
    """Options accepted before and after the command.

    The copy after the command defaults to SUPPRESS, so it only overrides
    what the user actually typed there.
    """
    default = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    if coordinator:
        p.add_argument(
            "--coordinator",
            metavar="URL",
            default=default,
            help="coordinator address, e.g. http://render-boss:8765 (env FARM_COORDINATOR;"
            " default: find one on the LAN by zeroconf)",
        )
    p.add_argument(
        "--token",
        default=default,
        help="the farm token printed by `serve` (env FARM_TOKEN)",
    )
    p.add_argument(
        "--zeroconf-interface",
        metavar="IP",
        action="append",
        dest="zeroconf_interfaces",
        default=default,
        help="use zeroconf only on this local address (repeatable)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="debug logging",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m coordinator",
        description="The LAN render farm for Blender: run a coordinator, submit jobs,"
        " watch and manage them. See docs/cli.md.",
        parents=[connection_options(suppress=False)],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    client_opts = connection_options(suppress=True)

    def add(name: str, func: Command, text: str, **kw: Any) -> argparse.ArgumentParser:
        parents = kw.pop("parents", [client_opts])
        p = sub.add_parser(name, help=text, description=text, parents=parents, **kw)
        p.set_defaults(func=func)
        return p

    _add_serve(add)
    _add_submit(add)
    _add_inspect(add)
    _add_actions(add)
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _add_serve(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "serve",
        cmd_serve,
        "run a farm coordinator on this machine",
        parents=[connection_options(suppress=True, coordinator=False)],
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, help="port (default: 8765 or the next free one)")
    p.add_argument("--data-dir", metavar="DIR", help="database, files, logs, token.txt")
    p.add_argument("--name", help="the farm's name shown to artists (default: host name)")
    p.add_argument("--no-zeroconf", action="store_true", help="do not advertise on the LAN")
    p.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="a silent worker loses its task after this (default: %(default)s)",
    )


def _add_submit(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "submit",
        cmd_submit,
        "submit a job (uploads what the farm lacks); prints the job id",
        epilog="examples:\n  python -m coordinator submit shot.blend --type blender-render"
        " --frames 1-250 --chunk-size 5 --output /renders/shot/frame_####\n"
        "  python -m coordinator submit --type sleep --set task_count=3 --set seconds=1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("blend", nargs="?", metavar="BLEND", help="the .blend to render")
    p.add_argument("--type", default="blender-render", help="job type (see job-types)")
    p.add_argument("--frames", help="shortcut for --set frames=..., e.g. 1-100,120")
    p.add_argument("--chunk-size", metavar="N", help="shortcut for --set chunk_size=N")
    p.add_argument("--output", metavar="PATH", help="shortcut for --set output=...")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any setting of the job type (repeatable)",
    )
    p.add_argument("--name", help="job name (default: the .blend's name)")
    p.add_argument("--priority", type=int, default=50, help="0-100, higher first (default 50)")
    p.add_argument("--project", metavar="DIR", help="upload every file under DIR, not just BLEND")
    p.add_argument("--blender-version", metavar="X.Y", help="oldest Blender that may render it")
    p.add_argument(
        "--no-deliver",
        action="store_true",
        help="keep frames on the coordinator (fetch them with pull) instead of writing"
        " them into the output folder on its machine",
    )
    p.add_argument("--max-attempts", type=positive_int, default=3, metavar="N")
    p.add_argument("--wait", action="store_true", help="show progress until the job ends")


def _add_inspect(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("job-types", cmd_job_types, "list job types and their settings")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("jobs", cmd_jobs, "list jobs")
    p.add_argument("--status", help="comma list: queued,active,paused,completed,failed,canceled")
    p.add_argument("--type", help="comma list of job types")
    p.add_argument("--name", help="name contains this, or matches a glob like 'shot_*'")
    p.add_argument("--submitter", help="submitter contains this, or matches a glob")
    p.add_argument("--after", metavar="DATE", help="submitted at/after, e.g. 2026-11-29")
    p.add_argument("--before", metavar="DATE", help="submitted before")
    p.add_argument("--sort", help="created|updated|priority|name|status|id, - for descending")
    p.add_argument("--limit", type=positive_int, help="at most N jobs (default 50)")
    p.add_argument("--offset", type=int, help="skip the first N")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("job", cmd_job, "show a job and its tasks")
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("--tasks", metavar="STATUS", help="only tasks of these statuses: failed,active")
    p.add_argument("--limit", type=positive_int, default=100, help="show N tasks (default 100)")
    p.add_argument("--json", action="store_true", help="machine-readable: the job, every task")
    p = add("log", cmd_log, "print the end of a task's log")
    p.add_argument("task_id", type=positive_int, metavar="TASK_ID")
    p.add_argument("--tail", type=positive_int, default=65536, metavar="BYTES")
    p = add("workers", cmd_workers, "list the farm's workers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("pull", cmd_pull, "download a job's finished frames that are not here yet")
    p.add_argument("job_id", type=positive_int, metavar="JOB_ID")
    p.add_argument("--into", metavar="DIR", help="default: the folder of the job's output path")
    p = add(
        "openapi-docs",
        cmd_openapi_docs,
        "write the HTTP API reference as Markdown (no coordinator needed)",
        parents=[],
    )
    p.add_argument("--out", default="-", metavar="FILE", help="e.g. docs/api.md (default: stdout)")


def _add_actions(add: Callable[..., argparse.ArgumentParser]) -> None:
    texts = {
        "cancel": "cancel a job; running tasks are told to stop",
        "pause": "pause a job; running tasks finish, no new ones start",
        "resume": "resume a paused job",
        "requeue": "queue a job's failed and canceled tasks again",
    }
    for name, text in texts.items():
        p = add(name, cmd_action, text)
        p.add_argument("job_id", type=positive_int, metavar="ID")
        if name == "requeue":
            p.add_argument("--all", action="store_true", help="completed tasks too")
    p = add("delete", cmd_delete, "delete a job, its logs and stored outputs")
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("--yes", action="store_true", help="do not ask")
    _add_more_actions(add)


def _add_more_actions(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "regenerate",
        cmd_regenerate,
        "recompile a job's tasks, optionally with changed settings; finished frames the"
        " new tasks would render the same way are kept",
        epilog="examples:\n  python -m coordinator regenerate 42 --frames 1-300\n"
        "  python -m coordinator regenerate 42 --chunk-size 10 --set camera=CamB --fresh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("--frames", help="shortcut for --set frames=...")
    p.add_argument("--chunk-size", metavar="N", help="shortcut for --set chunk_size=N")
    p.add_argument("--output", metavar="PATH", help="shortcut for --set output=...")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a setting to change (repeatable)"
    )
    p.add_argument("--fresh", action="store_true", help="render finished frames again too")
    p = add("priority", cmd_priority, "change a job's priority (0-100, higher first)")
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("priority", type=int, metavar="PRIORITY")
    p = add(
        "clear-blocklist",
        cmd_clear_blocklist,
        "let workers blocklisted for a job (after failing its tasks) take its tasks again",
    )
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("--worker", metavar="WORKER", help="only this one (name or id)")
    for name, text in (
        ("requeue-task", "run one task again from scratch (stopping it first if it runs)"),
        ("cancel-task", "stop one task for good; its job goes on with the others"),
    ):
        p = add(name, cmd_task_action, text)
        p.add_argument("task_id", type=positive_int, metavar="TASK_ID")
    p = add("disable", cmd_worker_action, "give a worker no new tasks (it finishes its task)")
    p.add_argument("worker", metavar="WORKER", help="name or id (see workers)")
    p.add_argument(
        "--now", action="store_true", help="stop its task now; the task goes back to the queue"
    )
    p = add("enable", cmd_worker_action, "let a disabled worker take tasks again")
    p.add_argument("worker", metavar="WORKER", help="name or id (see workers)")
    p = add("remove-worker", cmd_worker_action, "forget an offline worker")
    p.add_argument("worker", metavar="WORKER", help="name or id (see workers)")
    p.add_argument("--yes", action="store_true", help="do not ask")


# ================================================================== main
def join_sort_values(argv: list[str]) -> list[str]:
    """`--sort -created` -> `--sort=-created`: argparse reads "-created" as an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--sort" and arg.startswith("-") and arg[1:2].isalpha():
            out[-1] = f"--sort={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = join_sort_values(sys.argv[1:] if argv is None else list(argv))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as ex:  # --help, or a usage error argparse already printed
        return ex.code if isinstance(ex.code, int) else EXIT_USAGE
    if args.command != "serve":
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
    conn = Connection(args)
    try:
        code: int = args.func(args, conn)
        return code
    except CliError as ex:
        note(f"error: {ex.message}")
        return ex.code
    except FarmClientError as ex:
        note(f"error: {ex.message}")
        return exit_code_for(ex)
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as ex:
        note(f"error: bad coordinator address: {ex}")
        return EXIT_USAGE
    except requests.RequestException as ex:
        note(f"error: talking to the coordinator failed: {ex}")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        note("interrupted")
        return 130
    except BrokenPipeError:  # e.g. `jobs | head`: the reader has gone
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
        return EXIT_OK
    except OSError as ex:
        note(f"error: {ex}")
        return EXIT_FAILED
    finally:
        conn.close()
