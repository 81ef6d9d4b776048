"""`submit`: pack a job (a .blend and the files it uses, or a project folder),
upload only what the farm lacks, create the job, and with --wait show it until it ends.

Only the job id goes to stdout, so `JOB=$(python -m coordinator submit ...)`
works; the upload summary and progress go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import ntpath
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

from coordinator.cli.common import (
    EXIT_OK,
    JSON,
    CliClient,
    CliError,
    Commands,
    Connection,
    StatusLine,
    bar,
    megabytes,
    note,
    plural,
    positive_int,
    task_counts,
)
from coordinator.cli.precheck import check_blender_version, check_output, check_settings
from coordinator.cli.submitted import record_submission
from coordinator.cli.tracing import (
    Traced,
    add_file_outputs,
    add_movie_format,
    movie_of,
    traced_project,
)
from coordinator.cli.waiting import add_timeout_option, wait_for_job
from coordinator.core.blendfile import read_blend_version
from coordinator.core.outputs import resolve_blender_relative
from coordinator.core.tags import check_tags, parse_need

log = logging.getLogger(__name__)

_BACKUP = re.compile(r"\.blend\d+$")  # Blender's save versions: .blend1, .blend2, ...


def register(commands: Commands) -> None:
    p = commands.add(
        "submit",
        cmd_submit,
        "submit a job (uploads what the farm lacks); prints the job id",
        epilog="examples:\n  lanfarm submit shot.blend --type blender-render"
        " --frames 1-250 --chunk-size 5 --output /renders/shot/frame_####\n"
        "  lanfarm submit --type sleep --set task_count=3 --set seconds=1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("blend", nargs="?", metavar="BLEND", help="the .blend to render")
    p.add_argument("--type", default="blender-render", help="job type (see job-types)")
    add_setting_options(p, help_set="any setting of the job type (repeatable)")
    p.add_argument("--name", help="job name (default: the .blend's name)")
    p.add_argument("--priority", type=int, default=50, help="0-100, higher first (default 50)")
    p.add_argument(
        "--project",
        metavar="DIR",
        help="upload every file under DIR as it is (default: BLEND and the files it uses,"
        " found by tracing it in Blender)",
    )
    p.add_argument(
        "--blender",
        metavar="PATH",
        help="the Blender (or a Python with bpy) that traces BLEND's files"
        " (default: $BLENDER, else blender on PATH)",
    )
    p.add_argument("--blender-version", metavar="X.Y", help="oldest Blender that may render it")
    p.add_argument(
        "--no-deliver",
        action="store_true",
        help="keep frames on the coordinator (fetch them with pull) instead of writing"
        " them into the output folder on its machine",
    )
    p.add_argument("--max-attempts", type=positive_int, default=3, metavar="N")
    p.add_argument(
        "--paused", action="store_true", help="submit it paused: nothing starts until resume"
    )
    p.add_argument(
        "--require-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="only workers with this tag (pool) get its tasks; repeat, or gpu,fast",
    )
    p.add_argument(
        "--need",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=need_argument,
        help="what a worker must offer: engine=CYCLES, device=GPU (any GPU) or OPTIX...,"
        " memory=16G, os=linux (repeatable)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="show progress until the job ends: exit 0 completed, 1 failed or canceled",
    )
    add_timeout_option(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print the job as the API sends it instead of its id (with --wait: as it ended)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything (settings against the farm's job type, the .blend and the"
        " files it uses) and say what would be sent; upload and submit nothing",
    )


def add_setting_options(p: argparse.ArgumentParser, *, help_set: str, frames: str = "") -> None:
    """--set KEY=VALUE and its shortcuts, shared by submit and regenerate."""
    p.add_argument("--frames", help=frames or "shortcut for --set frames=..., e.g. 1-100,120")
    p.add_argument("--chunk-size", metavar="N", help="shortcut for --set chunk_size=N")
    p.add_argument("--output", metavar="PATH", help="shortcut for --set output=...")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help=help_set)


def cmd_submit(args: argparse.Namespace, conn: Connection) -> int:
    if args.dry_run and args.wait:
        raise CliError("--dry-run submits nothing, so there is nothing to --wait for")
    client = conn.client()
    job_type = find_job_type(client.job_types(), args.type)
    blend = blend_argument(args.blend, job_type, project=args.project)
    settings = settings_from_args(args)
    scene = settings.get("scene")
    folder = project_folder(blend, args.project, scene=scene) if blend and args.project else None
    check_output(settings)
    check_settings(job_type, settings)  # before a byte is uploaded
    if args.blender_version:
        check_blender_version(args.blender_version)
    body = job_body(args, job_type["name"], blend, settings)
    if blend is not None:
        # The trace starts Blender: only once every setting is known to be right.
        project = folder or traced_project(blend, args.blender, scene=scene)
        try:
            add_file_outputs(body["settings"], job_type, project, blend)
            add_movie_format(body["settings"], job_type, project)
            body["blend"] = project.blend
            body["blender_version"] = args.blender_version or version_of_sent(blend, project)
            if args.dry_run:
                return dry_run(args, body, project.files)
            body["files"] = upload(client, project.files)
        finally:
            if project.work_dir is not None:
                shutil.rmtree(project.work_dir, ignore_errors=True)
    elif args.blender_version:
        body["blender_version"] = args.blender_version
    if args.dry_run:
        return dry_run(args, body, {})
    job = client.submit(body)
    if not args.json:
        print(job["id"], flush=True)
    elif not args.wait:  # with --wait, the job as it ended
        print(json.dumps(job, indent=2), flush=True)
    record_submission(client, int(job["id"]), body["settings"])  # where pull puts its frames
    total = task_counts(job)[1]
    note(f"job {job['id']} {job['name']!r} submitted: {plural(total, 'task')} ({job['type']})")
    if args.timeout is not None and not args.wait:
        note("note: --timeout applies to --wait; not waiting")
    if not args.wait:
        return EXIT_OK
    return wait_for_job(client, job["id"], timeout=args.timeout, as_json=args.json)


def dry_run(args: argparse.Namespace, body: JSON, files: dict[str, Path]) -> int:
    """--dry-run: what would be sent, once every check passed; nothing leaves."""
    size = sum(p.stat().st_size for p in files.values())
    if args.json:
        print(json.dumps({**body, "files": {k: str(v) for k, v in files.items()}}, indent=2))
    else:
        print(
            f"would submit {body['name']!r} ({body['type']}) with"
            f" {plural(len(files), 'file')} ({megabytes(size)})"
        )
    note("dry run: every check passed; nothing was uploaded or submitted")
    return EXIT_OK


def job_body(
    args: argparse.Namespace, type_name: str, blend: Path | None, settings: dict[str, str]
) -> JSON:
    """The job as the API takes it, without its files."""
    if "output" in settings:
        settings["output"] = absolute_output(settings["output"], blend)
    return {
        "name": args.name or default_job_name(type_name, blend),
        "type": type_name,
        "priority": args.priority,
        "settings": settings,
        "submitter": default_submitter(),
        "deliver": not args.no_deliver,
        "max_attempts": args.max_attempts,
        "paused": args.paused,
        "requires_tags": required_tags(args.require_tag),
        "needs": dict(args.need),
    }


def required_tags(given: list[str]) -> list[str]:
    """--require-tag as the API takes it, checked before anything is uploaded."""
    try:
        return check_tags(",".join(given), "--require-tag")
    except ValueError as ex:
        raise CliError(str(ex)) from ex


def need_argument(text: str) -> tuple[str, str | int]:
    """--need KEY=VALUE: engine, device, memory or os, as the coordinator matches them."""
    try:
        return parse_need(text)
    except ValueError as ex:
        raise argparse.ArgumentTypeError(str(ex)) from ex


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
                f" lanfarm submit shot.blend --type {job_type['name']} ..."
            )
        return None
    path = Path(text).expanduser()
    if path.is_dir():
        raise CliError(folder_given(text, path))
    if not path.is_file():
        raise CliError(f"{text}: no such file")
    return path.resolve()


def folder_given(text: str, folder: Path) -> str:
    """What to pass instead of a folder: the .blend inside it, and --project."""
    blends = sorted(p.name for p in folder.glob("*.blend"))[:3]
    example = Path(text, blends[0] if blends else "shot.blend")
    found = f" (it holds {', '.join(blends)})" if blends else ""
    return (
        f"{text} is a folder{found}; give the .blend to render, and --project with the"
        f" folder to send its other files too: lanfarm submit {example} --project {text}"
    )


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


def version_of_sent(blend: Path, project: Traced) -> str | None:
    """The version of the .blend that travels: the tracer's copy is saved by the
    tracing Blender, which may be newer than the one that saved the artist's file."""
    sent = project.files[project.blend]
    version = version_of(sent)
    original, _ = read_blend_version(blend)
    if sent != blend and version and original and version != original:
        note(
            f"note: {blend.name} was saved by Blender {original}; the copy the farm gets was"
            f" saved by Blender {version}, which traced it, so only workers with {version} or"
            " newer take the job (pass --blender with a Blender like the file's to keep it)"
        )
    return version


# ================================================================ upload
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


def project_folder(blend: Path, project: str, *, scene: str | None = None) -> Traced:
    """--project: every file of the folder by project path, the .blend among them.
    Without it, tracing.traced_project sends the .blend and what it uses."""
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise CliError(f"--project {project}: not a folder")
    try:
        rel = blend.relative_to(root).as_posix()
    except ValueError:
        raise CliError(f"{blend} is not inside the project folder {root}") from None
    files = project_files(root)
    files[rel] = blend  # even if its name looks hidden
    return Traced(files, rel, None, file_format=movie_of(blend, scene))


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
