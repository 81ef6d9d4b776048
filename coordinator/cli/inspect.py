"""Looking at the farm without changing it: `job-types`, `jobs`, `job`, `log`
and `workers`. Tables for people on stdout, --json for scripts; hints about
what was left out (more pages, no matches) on stderr.
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
import sys
import time

from coordinator.cli.common import (
    EXIT_OK,
    JOB_FILTERS,
    JSON,
    CliError,
    Commands,
    Connection,
    add_job_filters,
    bar,
    clip,
    note,
    positive_int,
    table,
    task_counts,
    when,
)
from coordinator.cli.control import find_worker
from coordinator.cli.waiting import (
    LOG_TAIL_LINES,
    add_timeout_option,
    duration,
    failure_reasons,
    follow_log,
    last_lines,
    wait_for_job,
)
from coordinator.core.protocol import JobStatus, TaskStatus
from coordinator.core.tags import check_tags, describe_memory

log = logging.getLogger(__name__)

LIST_OPTIONS = (*JOB_FILTERS, "sort")


def register(commands: Commands) -> None:
    p = commands.add("job-types", cmd_job_types, "list job types and their settings")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _register_jobs(commands)
    p = commands.add("job", cmd_job, "show a job and its tasks")
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("--tasks", metavar="STATUS", help="only tasks of these statuses: failed,active")
    p.add_argument("--limit", type=positive_int, default=100, help="show N tasks (default 100)")
    p.add_argument("--json", action="store_true", help="machine-readable: the job, every task")
    p.add_argument(
        "--follow",
        action="store_true",
        help="then show its progress until it ends (exit 0 completed, 1 failed or canceled)",
    )
    add_timeout_option(p)
    p = commands.add("log", cmd_log, "print the end of a task's log")
    p.add_argument("task_id", type=positive_int, metavar="TASK_ID")
    p.add_argument(
        "--tail",
        type=positive_int,
        default=LOG_TAIL_LINES,
        metavar="LINES",
        help=f"the last LINES lines (default {LOG_TAIL_LINES})",
    )
    p.add_argument(
        "--follow", action="store_true", help="then print what is added until the task ends"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='prints {"task_id": ..., "lines": [...]} (not with --follow)',
    )
    p = commands.add("workers", cmd_workers, "list the farm's workers, or tag one")
    p.add_argument(
        "action",
        nargs="?",
        choices=("tag",),
        help="tag WORKER TAGS: replace a worker's tags (its pools), e.g. gpu,fast ('' for none)",
    )
    p.add_argument("worker", nargs="?", metavar="WORKER", help="name or id (with tag)")
    p.add_argument("tags", nargs="?", metavar="TAGS", help="comma list (with tag)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _register_jobs(commands: Commands) -> None:
    p = commands.add("jobs", cmd_jobs, "list jobs")
    add_job_filters(p, status_help="comma list: queued,active,paused,completed,failed,canceled")
    p.add_argument(
        "--sort",
        help="created|updated|priority|name|status|id (priority: highest first), - in front"
        " reverses",
    )
    p.add_argument("--limit", type=positive_int, help="at most N jobs (default 50)")
    p.add_argument("--offset", type=int, help="skip the first N")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def print_json(data: object) -> int:
    print(json.dumps(data, indent=2))
    return EXIT_OK


def check_statuses(text: str, known: type[enum.StrEnum], what: str, option: str) -> None:
    """A comma list of statuses, refused before anything is fetched or printed."""
    names = [s.value for s in known]
    for given in (s.strip() for s in text.split(",")):
        if given not in names:
            raise CliError(f"{option}: unknown {what} {given!r}; use {', '.join(names)}")


# ============================================================= job types
def cmd_job_types(args: argparse.Namespace, conn: Connection) -> int:
    types = conn.client().job_types()
    if args.json:
        return print_json(types)
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


# ================================================================== jobs
def cmd_jobs(args: argparse.Namespace, conn: Connection) -> int:
    filters = {key: getattr(args, key) for key in LIST_OPTIONS}
    sort = api_sort(args.sort)
    page = conn.client().jobs(**{**filters, "sort": sort}, limit=args.limit, offset=args.offset)
    if args.json:
        return print_json(page)
    jobs = page["jobs"]
    if not jobs:
        note("no jobs match" if any(filters.values()) else "no jobs yet")
        return EXIT_OK
    headers = ("ID", "NAME", "STATUS", "PROGRESS", "ETA", "TASKS", "TYPE", "PRIORITY")
    print(table((*headers, "SUBMITTER", "SUBMITTED"), map(job_row, jobs)))
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
        job["status"],
        f"{job['progress'] * 100:.0f}%",
        eta_text(job),
        f"{done}/{total}",
        job["type"],
        job["priority"],
        clip(job.get("submitter") or "-", 24),
        when(job.get("created_at")),
    ]


def api_sort(sort: str | None) -> str | None:
    """--sort as the API takes it: priority's own order is the farm's, highest first
    (the dashboard's "Highest priority"); "-" in front reverses any order."""
    if sort is not None and sort.lstrip("-") == "priority":
        return "priority" if sort.startswith("-") else "-priority"
    return sort


def eta_text(job: JSON) -> str:
    """The coordinator's ETA for a table cell; "-" while it has none."""
    eta = job.get("eta_seconds")
    return "-" if eta is None else duration(eta)


# =================================================================== job
def cmd_job(args: argparse.Namespace, conn: Connection) -> int:
    if args.tasks:  # before anything is printed: a wrong one is the whole answer
        check_statuses(args.tasks, TaskStatus, "task status", "--tasks")
    client = conn.client()
    if args.json:
        return print_json(client.job(args.job_id, tasks=True))
    job = client.job(args.job_id, tasks=False)
    print(job_details(job))
    if job["status"] == JobStatus.FAILED:
        print("  why:")
        print("\n".join(f"    {reason}" for reason in failure_reasons(client, job)))
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
    if args.follow:
        sys.stdout.flush()
        return wait_for_job(client, args.job_id, timeout=args.timeout)
    return EXIT_OK


def any_worker(tasks: list[JSON]) -> bool:
    return any(t.get("worker_id") for t in tasks)


def job_details(job: JSON) -> str:
    done, total = task_counts(job)
    status = job["status"] + (f" ({job['status_reason']})" if job.get("status_reason") else "")
    lines = [
        f"job {job['id']}: {job['name']}",
        f"  type:       {job['type']}",
        f"  status:     {status}",
        f"  progress:   {bar(job['progress'])}  {done}/{total} tasks done"
        + (f", about {eta_text(job)} left" if job.get("eta_seconds") is not None else ""),
        f"  priority:   {job['priority']}",
        *frame_time_lines(job),
        f"  blend:      {blend_text(job)}",
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
    blocked = blocklist_text(job)
    if blocked:
        lines.append(f"  blocklisted workers: {blocked} (clear-blocklist {job['id']})")
    return "\n".join(lines)


def frame_time_lines(job: JSON) -> list[str]:
    """The job's measured render time a frame (`frame_seconds`), when it has one."""
    took = job.get("frame_seconds")
    if isinstance(took, bool) or not isinstance(took, (int, float)) or not 0 <= took < 1e9:
        return []  # none measured yet (or nonsense from the other end)
    shown = f"{took:.1f} s" if took < 90 else duration(took)
    return [f"  a frame:    {shown} to render (median of its tasks; start-up, uploads left out)"]


def blend_text(job: JSON) -> str:
    blend = job.get("blend") or "-"
    if job.get("blender_version"):
        blend += f" (saved with Blender {job['blender_version']})"
    return str(blend)


def blocklist_text(job: JSON) -> str:
    """The workers a job keeps away after they failed its tasks; "" when none."""
    return ", ".join(
        f"{b['name'] or b['worker_id'][:8]} ({b['failures']} failures)"
        for b in job.get("blocklist") or []
    )


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


# =========================================================== log, workers
def cmd_log(args: argparse.Namespace, conn: Connection) -> int:
    if args.follow and args.json:
        raise CliError("--json prints the log's end once; leave it out to --follow")
    if args.follow:
        return follow_log(conn.client(), args.task_id, tail=args.tail)
    lines = last_lines(conn.client(), args.task_id, args.tail)
    if args.json:
        return print_json({"task_id": args.task_id, "lines": lines})
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return EXIT_OK


def cmd_workers(args: argparse.Namespace, conn: Connection) -> int:
    if args.action == "tag":
        return tag_worker(args, conn)
    if args.worker is not None:
        raise CliError("workers takes no WORKER unless tagging: lanfarm workers tag WORKER TAGS")
    workers = conn.client().workers()
    if args.json:
        return print_json(workers)
    if not workers:
        note("no workers yet; start one with: lanfarm-worker")
        return EXIT_OK
    now = time.time()
    rows = [worker_row(w, now) for w in workers]
    headers = (
        "WORKER",
        "ID",
        "STATUS",
        "BLENDER",
        "DEVICES",
        "MEMORY",
        "OS",
        "TAGS",
        "TASK",
        "LAST SEEN",
    )
    print(table(headers, rows))
    return EXIT_OK


def tag_worker(args: argparse.Namespace, conn: Connection) -> int:
    """`workers tag WORKER TAGS`: the worker's tags become TAGS."""
    if args.worker is None or args.tags is None:
        raise CliError("usage: lanfarm workers tag WORKER TAGS (e.g. gpu,fast; '' for none)")
    try:
        tags = check_tags(args.tags, "TAGS")
    except ValueError as ex:
        raise CliError(str(ex)) from ex
    client = conn.client()
    worker = client.set_worker_tags(find_worker(client, args.worker)["id"], tags)
    if args.json:
        return print_json(worker)
    print(f"worker {worker['name']}: tags {', '.join(worker['tags']) or '(none)'}")
    return EXIT_OK


def worker_row(worker: JSON, now: float) -> list[object]:
    task, caps = worker.get("task"), worker.get("capabilities") or {}
    return [
        clip(worker["name"], 30),
        worker["id"][:8],
        worker_status(worker),
        worker.get("blender_version") or "",
        ", ".join(worker.get("devices") or []),
        describe_memory(memory) if isinstance(memory := caps.get("memory_mb"), int) else "-",
        caps.get("os") or "-",
        ",".join(worker.get("tags") or []) or "-",
        f"job {task['job_id']}: {clip(task['name'], 30)}" if task else "",
        f"{max(0, now - (worker.get('last_seen') or now)):.0f} s ago",
    ]


def worker_status(worker: JSON) -> str:
    """idle, busy, offline, or 'resting until 08:00' (this machine's clock); then
    '(disabled)' when it takes no tasks."""
    status = worker["status"]
    until = worker.get("resting_until")
    if status == "resting" and isinstance(until, int | float):
        status += " until " + time.strftime("%H:%M", time.localtime(until))
    return status + (" (disabled)" if worker.get("disabled") else "")
