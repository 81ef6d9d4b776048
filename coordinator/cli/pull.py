"""`pull`: download a job's finished outputs that are not here yet.

By default into the folder the job's output pattern names, by the rule the
coordinator delivers by (`core.outputs.output_folder`), so a pull lands
exactly where a delivery would have. Files already there with the farm's
checksum are skipped; a different file is replaced, saying so.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from coordinator.cli.common import (
    EXIT_OK,
    JSON,
    CliError,
    Commands,
    Connection,
    StatusLine,
    megabytes,
    note,
    plural,
    positive_int,
)
from coordinator.core.hashing import sha256_file
from coordinator.core.outputs import local_output_folder

log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    p = commands.add("pull", cmd_pull, "download a job's finished frames that are not here yet")
    p.add_argument("job_id", type=positive_int, metavar="JOB_ID")
    p.add_argument("--into", metavar="DIR", help="default: the folder of the job's output path")


def cmd_pull(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    if args.into:
        into = Path(args.into).expanduser()
    else:
        into = output_folder(client.job(args.job_id, tasks=False))
    todo, present = plan_pull(client.outputs(args.job_id), into)
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
    """Where the job's frames belong on this machine: the folder of its output
    pattern, or an error asking for --into when the pattern names none here."""
    pattern = str((job.get("settings") or {}).get("output") or "")
    if not pattern:
        raise CliError(f"job {job['id']} has no output setting; pass --into DIR")
    folder = local_output_folder(pattern)
    if folder is None:
        raise CliError(
            f"job {job['id']} writes to {pattern}, which names no folder on this machine;"
            " pass --into DIR"
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
