"""Changing jobs, tasks and workers: cancel, pause, resume, requeue, delete,
regenerate, priority, clear-blocklist, requeue-task, cancel-task, disable,
enable and remove-worker.

Each prints the object's new state on one stdout line (with --json, the
object as the API sends it). A refusal is the coordinator's own reason (a 4xx,
exit 2); an action whose result already holds is done (exit 0: repeats.py); a
destructive command asks first on a terminal unless given --yes, and without a
terminal refuses unless given --yes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from coordinator.cli import submitted
from coordinator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    JOB_FILTERS,
    JSON,
    CliError,
    Commands,
    Connection,
    add_job_filters,
    note,
    plural,
    positive_int,
)
from coordinator.cli.precheck import check_output
from coordinator.cli.repeats import done_or_already, job_already, task_already, worker_already
from coordinator.cli.submit import absolute_output, add_setting_options, settings_from_args
from coordinator.client.http import (
    AuthError,
    FarmClient,
    FarmClientError,
    NotFoundError,
    Unreachable,
)

log = logging.getLogger(__name__)

JOB_ACTIONS = {
    "cancel": "cancel a job; running tasks are told to stop",
    "pause": "pause a job; running tasks finish, no new ones start",
    "resume": "resume a paused job",
    "requeue": "queue a job's failed and canceled tasks again",
}
TASK_ACTIONS = {
    "requeue-task": "run one task again from scratch (stopping it first if it runs)",
    "cancel-task": "stop one task for good; its job goes on with the others",
}
WORKER_HELP = "name or id (see workers)"
BULK_PAGE = 500  # the most GET /jobs gives at once
PREVIEW = 20  # job ids a bulk delete shows before asking


def register(commands: Commands) -> None:
    _register_jobs(commands)
    _register_regenerate(commands)
    p = commands.add("priority", cmd_priority, "change a job's priority (0-100, higher first)")
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("priority", type=int, metavar="PRIORITY")
    add_json(p, "the job")
    p = commands.add(
        "clear-blocklist",
        cmd_clear_blocklist,
        "let workers blocklisted for a job (after failing its tasks) take its tasks again",
    )
    p.add_argument("job_id", type=positive_int, metavar="ID")
    p.add_argument("--worker", metavar="WORKER", help="only this one (name or id)")
    add_json(p, "the job")
    for name, text in TASK_ACTIONS.items():
        p = commands.add(name, cmd_task_action, text)
        p.add_argument("task_id", type=positive_int, metavar="TASK_ID")
        add_json(p, "the task")
    _register_workers(commands)


def add_json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as the API sends it")


def show(args: argparse.Namespace, obj: JSON, line: str) -> int:
    """The result on stdout: one line, or with --json the whole object."""
    print(json.dumps(obj, indent=2) if args.json else line)
    return EXIT_OK


def _register_jobs(commands: Commands) -> None:
    for name, text in JOB_ACTIONS.items():
        p = commands.add(name, cmd_action, text)
        p.add_argument("job_id", type=positive_int, metavar="ID")
        if name == "requeue":
            p.add_argument("--all", action="store_true", help="completed tasks too")
        add_json(p, "the job")
    p = commands.add(
        "delete",
        cmd_delete,
        "delete a job, or every job matching filters, with its logs and stored outputs",
        epilog="examples:\n  lanfarm delete 42\n"
        "  lanfarm delete --status failed,canceled --before 2026-11-01 --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("job_id", nargs="?", type=positive_int, metavar="ID")
    add_job_filters(p, status_help="every job of these statuses: failed,canceled")
    p.add_argument(
        "--json", action="store_true", help='prints {"deleted": [...], "skipped": [...]}'
    )
    p.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")


def _register_regenerate(commands: Commands) -> None:
    p = commands.add(
        "regenerate",
        cmd_regenerate,
        "recompile a job's tasks, optionally with changed settings; finished frames the"
        " new tasks would render the same way are kept",
        epilog="examples:\n  lanfarm regenerate 42 --frames 1-300\n"
        "  lanfarm regenerate 42 --chunk-size 10 --set camera=CamB --fresh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("job_id", type=positive_int, metavar="ID")
    add_setting_options(
        p, help_set="a setting to change (repeatable)", frames="shortcut for --set frames=..."
    )
    p.add_argument("--fresh", action="store_true", help="render finished frames again too")
    add_json(p, "the job (with what was regenerated)")


def _register_workers(commands: Commands) -> None:
    p = commands.add(
        "disable", cmd_worker_action, "give a worker no new tasks (it finishes its task)"
    )
    p.add_argument("worker", metavar="WORKER", help=WORKER_HELP)
    p.add_argument(
        "--now", action="store_true", help="stop its task now; the task goes back to the queue"
    )
    add_json(p, "the worker")
    p = commands.add("enable", cmd_worker_action, "let a disabled worker take tasks again")
    p.add_argument("worker", metavar="WORKER", help=WORKER_HELP)
    add_json(p, "the worker")
    p = commands.add("remove-worker", cmd_worker_action, "forget an offline worker")
    p.add_argument("worker", metavar="WORKER", help=WORKER_HELP)
    p.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    add_json(p, '{"removed": {"id": ..., "name": ...}}')


def confirmed(args: argparse.Namespace, question: Callable[[], str], action: str) -> bool:
    """Whether a person agreed to `action`: --yes, or "y" typed at a terminal.

    Without a terminal nobody can be asked, and an unread "no" (`echo n |`,
    `</dev/null`, a cron job) must never turn into a yes: it is refused, and
    a script that means it says --yes.
    """
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise CliError(
            f"refusing to {action} without a terminal to ask for a yes;"
            f" pass --yes to {action} without asking"
        )
    try:
        answer = input(question())
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


# ================================================================== jobs
def cmd_action(args: argparse.Namespace, conn: Connection) -> int:
    requeue = args.command == "requeue"
    body = {"which": "all" if args.all else "failed"} if requeue else None
    client = conn.client()
    job = done_or_already(
        lambda: client.job_action(args.job_id, args.command, body),
        lambda: job_already(client, args.job_id, args.command, all_tasks=requeue and args.all),
    )
    return show(args, job, f"job {job['id']} {job['name']!r}: {job['status']}")


def cmd_delete(args: argparse.Namespace, conn: Connection) -> int:
    filters = {key: getattr(args, key) for key in JOB_FILTERS if getattr(args, key)}
    if args.job_id is None and not filters:  # refused before looking for a farm
        raise CliError(
            "give a job ID or at least one filter (--status, --type, --name, --submitter,"
            " --after, --before); to delete everything say --status ... explicitly"
        )
    if args.job_id is None:
        return bulk_delete(args, conn.client(), filters)
    if filters:
        given = ", ".join(f"--{key}" for key in filters)
        raise CliError(f"give a job ID or filters, not both ({given} with ID {args.job_id})")
    client = conn.client()

    def question() -> str:
        job = client.job(args.job_id, tasks=False)
        return (
            f"Delete job {job['id']} {job['name']!r} ({job['status']}) with its logs and"
            " stored outputs? Frames already delivered stay. [y/N] "
        )

    if not confirmed(args, question, f"delete job {args.job_id}"):
        note("not deleted")
        return EXIT_FAILED
    client.delete_job(args.job_id)
    if args.json:
        print(json.dumps({"deleted": [args.job_id], "skipped": []}, indent=2))
    else:
        print(f"job {args.job_id} deleted")
    return EXIT_OK


def bulk_delete(args: argparse.Namespace, client: FarmClient, filters: JSON) -> int:
    """Every job matching `filters`: shown (count and ids), agreed to, then
    deleted one by one; a job the coordinator refuses or that is already gone
    is skipped with its reason, and any skipped one makes the exit code 1."""
    ids = matching_jobs(client, filters)
    if not ids:
        note("no jobs match; nothing deleted")
        if args.json:
            print(json.dumps({"deleted": [], "skipped": []}, indent=2))
        return EXIT_OK
    shown = ", ".join(map(str, ids[:PREVIEW]))
    more = f" and {len(ids) - PREVIEW} more" if len(ids) > PREVIEW else ""
    note(f"{plural(len(ids), 'job')} match: {shown}{more}")
    question = (
        f"Delete these {plural(len(ids), 'job')} with their logs and stored outputs?"
        " Frames already delivered stay. [y/N] "
    )
    if not confirmed(args, lambda: question, f"delete {plural(len(ids), 'job')}"):
        note("not deleted")
        return EXIT_FAILED
    deleted: list[int] = []
    skipped: list[JSON] = []
    for job_id in ids:
        try:
            client.delete_job(job_id)
        except NotFoundError:
            skipped.append({"id": job_id, "reason": "already gone"})
        except (Unreachable, AuthError):
            note(f"stopped after deleting {plural(len(deleted), 'job')}: {deleted}")
            raise
        except FarmClientError as ex:
            skipped.append({"id": job_id, "reason": ex.message})
        else:
            deleted.append(job_id)
    if args.json:
        print(json.dumps({"deleted": deleted, "skipped": skipped}, indent=2))
    else:
        print(f"{plural(len(deleted), 'job')} deleted")
    for item in skipped:
        note(f"job {item['id']} not deleted: {item['reason']}")
    return EXIT_FAILED if skipped else EXIT_OK


def matching_jobs(client: FarmClient, filters: JSON) -> list[int]:
    """The ids of every job matching `filters`, page by page, oldest first;
    all of them are listed before any is deleted, so no page shifts under us."""
    ids: list[int] = []
    while True:
        page = client.jobs(**filters, sort="id", limit=BULK_PAGE, offset=len(ids))
        ids += [job["id"] for job in page["jobs"]]
        if not page["jobs"] or len(ids) >= page["total"]:
            return ids


def cmd_regenerate(args: argparse.Namespace, conn: Connection) -> int:
    settings: JSON = dict(settings_from_args(args))
    check_output(settings)
    if "output" in settings:
        settings["output"] = absolute_output(settings["output"], None)
    client = conn.client()
    job = client.regenerate_job(args.job_id, settings, keep_completed=not args.fresh)
    submitted.record_regenerate(client, args.job_id, settings)
    done = job.get("regenerated") or {}
    show(args, job, f"job {job['id']} {job['name']!r}: {job['status']}")
    note(
        f"{plural(done.get('tasks', 0), 'task')}, {done.get('kept', 0)} kept as finished,"
        f" {done.get('stopped', 0)} running stopped; {job.get('status_reason', '')}"
    )
    return EXIT_OK


def cmd_priority(args: argparse.Namespace, conn: Connection) -> int:
    job = conn.client().set_priority(args.job_id, args.priority)
    return show(args, job, f"job {job['id']} {job['name']!r}: priority {job['priority']}")


def cmd_clear_blocklist(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    worker = find_worker(client, args.worker)["id"] if args.worker else None
    job = done_or_already(
        lambda: client.clear_blocklist(args.job_id, worker_id=worker),
        lambda: job_already(client, args.job_id, "clear-blocklist", worker=worker or ""),
    )
    return show(args, job, f"job {job['id']} {job['name']!r}: blocklist cleared")


# ================================================================= tasks
def cmd_task_action(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    act = client.requeue_task if args.command == "requeue-task" else client.cancel_task
    task = done_or_already(
        lambda: act(args.task_id), lambda: task_already(client, args.task_id, args.command)
    )
    line = f"task {task['id']} {task['name']!r} of job {task['job_id']}: {task['status']}"
    return show(args, task, line)


# =============================================================== workers
def cmd_worker_action(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    worker = find_worker(client, args.worker)
    if args.command == "remove-worker":
        return remove_worker(args, client, worker)
    now = args.command == "disable" and args.now
    worker = done_or_already(
        lambda: (
            client.enable_worker(worker["id"])
            if args.command == "enable"
            else client.disable_worker(worker["id"], now=now)
        ),
        lambda: worker_already(find_worker(client, worker["id"]), args.command, now=now),
    )
    state = "disabled" if worker["disabled"] else "enabled"
    return show(args, worker, f"worker {worker['name']}: {state} ({worker['status']})")


def remove_worker(args: argparse.Namespace, client: FarmClient, worker: JSON) -> int:
    question = f"Remove worker {worker['name']} ({worker['id']})? [y/N] "
    if not confirmed(args, lambda: question, f"remove worker {worker['name']}"):
        note("not removed")
        return EXIT_FAILED
    client.remove_worker(worker["id"])
    removed = {"removed": {"id": worker["id"], "name": worker["name"]}}
    return show(args, removed, f"worker {worker['name']} removed")


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
    raise CliError(f"no worker {text!r}; `lanfarm workers` lists them")
