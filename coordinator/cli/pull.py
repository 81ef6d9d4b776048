"""`pull`: download a job's finished outputs that are not here yet.

Files land in the folder the person names (`--into`), or, without it, in the
output folder they gave when they submitted the job from this machine's CLI,
which `submit` recorded (`cli.submitted`). Never in a folder a reply names:
a job with no record here needs `--into`. Into the recorded folder only
rendered images and movies are written (it may be a project folder, whose
.blend or scripts no reply may replace). Every name in the reply must be a
plain file name that lands inside the folder (`core.names`); others are
skipped, with one error. Files already there with the farm's checksum are
skipped; a different file is replaced, saying so.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from coordinator.cli import submitted
from coordinator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    JSON,
    CliClient,
    CliError,
    Commands,
    Connection,
    StatusLine,
    megabytes,
    note,
    plural,
    positive_int,
)
from coordinator.core.fileoutputs import local_destination
from coordinator.core.hashing import sha256_file
from coordinator.core.names import UnsafeNameError, check_plain_name, inside

log = logging.getLogger(__name__)

# What a render writes (core.outputs' image formats, and movies): all a pull
# without --into may create. A script, a shortcut or a .blend would run code
# or replace the artist's work; an image does not.
RENDER_EXTENSIONS = frozenset(
    {".bmp", ".rgb", ".png", ".jpg", ".jpeg", ".tga", ".cin", ".dpx", ".exr", ".hdr"}
    | {".tif", ".tiff", ".webp", ".jp2", ".j2c"}
    | {".mp4", ".mkv", ".mov", ".avi", ".webm", ".ogv", ".mpg", ".mpeg", ".dv", ".flv"}
)


def register(commands: Commands) -> None:
    p = commands.add("pull", cmd_pull, "download a job's finished frames that are not here yet")
    p.add_argument("job_id", type=positive_int, metavar="JOB_ID")
    p.add_argument(
        "--into",
        metavar="DIR",
        help="the folder to download into (default: the job's output folder as given"
        " when it was submitted from this machine)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='prints {"into": ..., "pulled": [...], "already_there": N, "skipped": [...]}',
    )


def cmd_pull(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    file_outputs: tuple[str, bool] | None = None
    if args.into:
        into = Path(args.into).expanduser()
    else:
        record = recorded_job(client, args.job_id)  # read once: one answer per pull
        into, file_outputs = Path(record.folder), recorded_file_outputs(record)
        note(
            f"no --into: pulling into {into}, the output folder job {args.job_id} was"
            " submitted with from here; --into DIR picks another"
        )
    todo, present, refused = plan_pull(
        client.outputs(args.job_id),
        into,
        renders_only=not args.into,
        file_outputs=file_outputs,
    )
    line = StatusLine(sys.stderr)
    for i, (output, dest) in enumerate(todo, 1):
        line.show(f"pulling {i}/{len(todo)} {output['name']}")
        client.download_output(args.job_id, output, dest)
    line.close()
    size = sum(int(o.get("size") or 0) for o, _ in todo)
    if args.json:
        pulled = [str(dest) for _, dest in todo]
        result = {"into": str(into), "pulled": pulled, "already_there": present}
        print(json.dumps({**result, "skipped": refused}, indent=2))
    else:
        print(
            f"pulled {plural(len(todo), 'file')} ({megabytes(size)}) into {into};"
            f" {present} already there"
        )
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        note(
            f"error: skipped {plural(len(refused), 'file')} the farm named unsafely: {refused[0]}"
            f"{more}. Nothing was written outside {into}; is this coordinator your farm?"
        )
        return EXIT_FAILED
    return EXIT_OK


def recorded_job(client: CliClient, job_id: int) -> submitted.Submitted:
    """The record of `job_id` submitted to this farm from here (the output folder
    the person gave), or an error asking for --into: never a folder from the reply."""
    try:
        record = submitted.recall(submitted.farm_identity(client), job_id)
    except submitted.RecordError as ex:
        raise CliError(f"{ex}: pass --into DIR, or delete that file") from ex
    if record is None:
        raise CliError(
            f"no output folder recorded for job {job_id} of this farm: only jobs"
            " submitted from this machine's CLI (with an output path) have one, and pull"
            " never writes where the farm's reply says; pass --into DIR"
        )
    return record


def recorded_file_outputs(record: submitted.Submitted) -> tuple[str, bool] | None:
    """The File Output files of the job as submitted from here (their destinations
    and use_file_extension), None when the record has none."""
    if not record.file_outputs:
        return None
    return record.file_outputs, record.use_file_extension


def plan_pull(
    outputs: list[JSON],
    into: Path,
    *,
    renders_only: bool = False,
    file_outputs: tuple[str, bool] | None = None,
) -> tuple[list[tuple[JSON, Path]], int, list[str]]:
    """(outputs to fetch with their destination, how many are already there,
    why each unsafe name was skipped). Names are checked before any file is read.
    With `file_outputs` (the record's), File Output files land where the
    submission from here pointed them; without, in `into` under the farm's names."""
    todo: list[tuple[JSON, Path]] = []
    present = 0
    refused: list[str] = []
    for output in outputs:
        try:
            dest = _file_output_destination(file_outputs, output) or _destination(
                into, output.get("name", ""), renders_only=renders_only
            )
        except UnsafeNameError as ex:
            log.warning("%s", ex)
            refused.append(str(ex))
            continue
        if dest.is_file():
            if sha256_file(dest) == output["sha256"]:
                present += 1
                continue
            note(f"replacing {dest}: the farm's copy is different")
        todo.append((output, dest))
    return todo, present, refused


def _file_output_destination(recorded: tuple[str, bool] | None, output: JSON) -> Path | None:
    if recorded is None:
        return None
    setting, use_ext = recorded
    dest = local_destination(
        setting, output.get("name"), output.get("frame"), use_file_extension=use_ext
    )
    if dest is not None and use_ext and dest.suffix.lower() not in RENDER_EXTENSIONS:
        raise UnsafeNameError(f"{str(dest)!r} is refused: not an image")
    return dest


def _destination(into: Path, name: str, *, renders_only: bool) -> Path:
    plain = check_plain_name(name, what="file name")
    inside(into, plain)  # a link in the folder must not lead out of it
    if renders_only and Path(plain).suffix.lower() not in RENDER_EXTENSIONS:
        raise UnsafeNameError(
            f"file name {plain!r} is refused: not an image or movie, and --into was not given"
        )
    return into / plain
