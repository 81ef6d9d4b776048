"""`pull`: download a job's finished outputs that are not here yet.

Files land in the folder the person names (`--into`). Without it, pull falls
back to the folder of the job's output pattern, by the rule the coordinator
delivers by (`core.outputs.output_folder`), and says so: that folder comes
from the coordinator's reply, so it must be an absolute folder here, neither
hidden nor a configuration folder, and only rendered images and movies are
written into it. Every name in the reply must be a plain file name that lands
inside the folder (`core.names`); others are skipped, with one error. Files
already there with the farm's checksum are skipped; a different file is
replaced, saying so.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from coordinator.cli.common import (
    EXIT_FAILED,
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
from coordinator.core.names import UnsafeNameError, check_plain_name, inside
from coordinator.core.outputs import local_output_folder

log = logging.getLogger(__name__)

# What a render writes (core.outputs' image formats, and movies): all a pull
# into a folder the person did not name may create. A script, a shortcut or
# a launch agent would run code; an image does not.
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
        help="the folder to download into (default: the folder of the job's output path,"
        " when it is an ordinary folder of this machine)",
    )


def cmd_pull(args: argparse.Namespace, conn: Connection) -> int:
    client = conn.client()
    if args.into:
        into = Path(args.into).expanduser()
    else:
        into = output_folder(client.job(args.job_id, tasks=False))
        note(f"no --into: pulling into {into}, the job's output folder; --into DIR picks another")
    todo, present, refused = plan_pull(
        client.outputs(args.job_id), into, renders_only=not args.into
    )
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
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        note(
            f"error: skipped {plural(len(refused), 'file')} the farm named unsafely: {refused[0]}"
            f"{more}. Nothing was written outside {into}; is this coordinator your farm?"
        )
        return EXIT_FAILED
    return EXIT_OK


def output_folder(job: JSON) -> Path:
    """Where the job's frames belong on this machine: the folder of its output
    pattern, or an error asking for --into when the pattern names no folder
    here, or one a reply must not choose (hidden, or a configuration folder)."""
    pattern = str((job.get("settings") or {}).get("output") or "")
    if not pattern:
        raise CliError(f"job {job['id']} has no output setting; pass --into DIR")
    folder = local_output_folder(pattern)
    if folder is None:
        raise CliError(
            f"job {job['id']} writes to {pattern}, which names no folder on this machine;"
            " pass --into DIR"
        )
    why = _not_for_renders(Path(folder))
    if why:
        raise CliError(
            f"job {job['id']} writes to {folder}, {why}; pull does not write there on the"
            " farm's word: pass --into DIR if that is really where you want the files"
        )
    return Path(folder)


def _not_for_renders(folder: Path) -> str:
    """Why a folder named by the farm is not taken without --into ("" if it is fine)."""
    resolved = folder.resolve()
    hidden = [p for p in resolved.parts if p.startswith(".")]
    if hidden:
        return f"a hidden folder ({hidden[0]})"
    for config in _config_folders():
        if resolved == config or resolved.is_relative_to(config):
            return f"inside the configuration folder {config}"
    return ""


def _config_folders() -> list[Path]:
    """Folders whose files programs run or load at start-up (Blender's scripts among them)."""
    home = Path.home()
    places = [home / "Library", Path("/etc"), Path("/usr"), Path("/bin"), Path("/Library")]
    for var in (
        *("APPDATA", "LOCALAPPDATA", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "BLENDER_USER_CONFIG"),
        *("BLENDER_USER_SCRIPTS", "BLENDER_USER_RESOURCES", "BLENDER_SYSTEM_SCRIPTS"),
    ):
        if os.environ.get(var):
            places.append(Path(os.environ[var]))
    return [p.resolve() for p in places]


def plan_pull(
    outputs: list[JSON], into: Path, *, renders_only: bool = False
) -> tuple[list[tuple[JSON, Path]], int, list[str]]:
    """(outputs to fetch with their destination, how many are already there,
    why each unsafe name was skipped). Names are checked before any file is read."""
    todo: list[tuple[JSON, Path]] = []
    present = 0
    refused: list[str] = []
    for output in outputs:
        try:
            dest = _destination(into, output.get("name", ""), renders_only=renders_only)
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


def _destination(into: Path, name: str, *, renders_only: bool) -> Path:
    plain = check_plain_name(name, what="file name")
    inside(into, plain)  # a link in the folder must not lead out of it
    if renders_only and Path(plain).suffix.lower() not in RENDER_EXTENSIONS:
        raise UnsafeNameError(
            f"file name {plain!r} is refused: not an image or movie, and --into was not given"
        )
    return into / plain
