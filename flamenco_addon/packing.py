"""Packing a .blend with everything it uses: plan first, then execute. No `bpy` here.

`plan_pack()` is pure apart from looking at the file system: it takes the
dependencies the shell found in `bpy.data` and decides where each file goes
in the packed project, which are missing, and how each path must be
rewritten. Tests assert on the plan before anything runs. `execute()` then
rewrites the paths inside the saved copy (and inside linked libraries) in a
separate Blender process, because the artist's open file must not change.

Only the standard library is imported: `rewrite_paths.py` runs inside that
separate Blender and imports this module by file location.

Layout of a packed project (relative paths, forward slashes):
    <blend name>.blend                  the saved copy of the artist's file
    <relpath>                           files under the project folder keep their place
    _external/<hash of folder>/<name>   files outside it; one folder per source folder,
                                        so image sequences and UDIM tiles stay together
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

EXTERNAL = "_external"
# UDIM tokens Blender puts in a tiled image's path (image.source == 'TILED').
_UDIM_TOKENS = {"<UDIM>": r"\d{4}", "<UVTILE>": r"u\d+_v\d+"}
# The frame number of a sequence is the last run of digits in the file name.
_LAST_DIGITS = re.compile(r"^(?P<head>.*?)(?P<digits>\d+)(?P<tail>\D*)$")


class PackError(Exception):
    """Packing failed in a way the artist can act on."""


class Cancelled(Exception):
    """The artist pressed Esc or Cancel."""


@dataclass(frozen=True)
class Dependency:
    """A path a datablock of the file (or of a linked library) uses."""

    kind: str  # "image", "library", "sound", "font", "cache", "volume", "movie clip", ...
    owner: str  # the datablock's name, for messages
    path: str  # absolute, as blender_abspath() resolves it
    sequence: bool = False  # the path is one frame of a numbered sequence
    udim: bool = False  # the path holds a <UDIM> or <UVTILE> token
    directory: bool = False  # a folder (a cache): every file under it
    blend: bool = False  # a linked library: its own paths are rewritten too
    optional: bool = False  # absent is fine: a bake folder before the first bake


@dataclass(frozen=True)
class PackedFile:
    source: str  # absolute path on this machine
    relpath: str  # its place in the packed project


@dataclass(frozen=True)
class Missing:
    kind: str  # as Dependency.kind
    owner: str  # datablock name
    path: str  # what Blender looked for

    def describe(self) -> str:
        return f'{self.kind} "{self.owner}": {self.path}'


@dataclass
class PackPlan:
    project_root: str  # folder whose layout is kept (the .blend's folder)
    blend_relpath: str  # the main .blend's place in the pack
    files: list[PackedFile] = field(default_factory=list)  # uploaded as they are
    blends: list[PackedFile] = field(default_factory=list)  # libraries, rewritten first
    missing: list[Missing] = field(default_factory=list)  # reported before anything is sent
    remap: dict[str, str] = field(default_factory=dict)  # abs path as Blender sees it -> relpath

    @property
    def total_bytes(self) -> int:
        return sum(_size(f.source) for f in [*self.files, *self.blends])


def blender_abspath(path: str, base_dir: str) -> str:
    """A datablock path made absolute the way both sides of packing agree on.

    "//" is the folder of the .blend that stores the path (the library's own
    folder for a linked datablock). Lexical only: no symlinks are resolved, so
    the scan in the artist's Blender and the rewrite in the copy give the same
    string. A plain relative path is read as "//" too.
    """
    if path.startswith("//"):
        path = path[2:]
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return os.path.normpath(path)


def relpath_for(path: str, project_root: str) -> str:
    """The packed place of an absolute path: its own under the root, else _external/."""
    root = os.path.normpath(project_root)
    with contextlib.suppress(ValueError):  # another drive on Windows
        rel = os.path.relpath(path, root)
        if rel != os.curdir and not rel.startswith(os.pardir):
            return rel.replace(os.sep, "/")
    folder, name = os.path.split(path)
    digest = hashlib.sha1(folder.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{EXTERNAL}/{digest}/{name}"


def point_cache_folder(blend_path: str) -> str:
    """Where Blender keeps a file's disk point caches: //blendcache_<name without .blend>/."""
    folder, name = os.path.split(blend_path)
    stem = name[: -len(".blend")] if name.lower().endswith(".blend") else name
    return os.path.join(folder, f"blendcache_{stem}")


def blend_relative(target_rel: str, blend_rel: str) -> str:
    """The "//..." path that reaches target_rel from a .blend at blend_rel in the pack."""
    return "//" + posixpath.relpath(target_rel, posixpath.dirname(blend_rel) or ".")


def plan_pack(blend_path: str, deps: Iterable[Dependency], *, project_root: str = "") -> PackPlan:
    """Where every file goes. The main .blend itself is saved by the shell, not listed."""
    root = os.path.normpath(project_root or os.path.dirname(blend_path))
    plan = PackPlan(project_root=root, blend_relpath=relpath_for(blend_path, root))
    seen: set[str] = set()
    for dep in deps:
        if dep.path in plan.remap:
            continue  # several datablocks use one file
        files = _expand(dep)
        if not files and dep.optional:
            continue  # nothing baked yet: Blender simulates, here and on the farm
        if not files:
            plan.missing.append(Missing(dep.kind, dep.owner, dep.path))
            continue
        base = plan.remap[dep.path] = relpath_for(dep.path, root)
        target = plan.blends if dep.blend else plan.files
        for source in files:
            if dep.directory:  # the folder's layout is kept wherever it is packed
                inner = os.path.relpath(source, dep.path).replace(os.sep, "/")
                rel = f"{base}/{inner}"
            else:
                rel = relpath_for(source, root)
            if rel not in seen and os.path.normpath(source) != os.path.normpath(blend_path):
                seen.add(rel)
                target.append(PackedFile(source, rel))
    return plan


def _expand(dep: Dependency) -> list[str]:
    """The files on disk behind one dependency; empty when it is missing."""
    if dep.directory:
        return sorted(str(p) for p in Path(dep.path).rglob("*") if p.is_file())
    if dep.udim:
        return _matching(dep.path, _udim_pattern(os.path.basename(dep.path)))
    if dep.sequence:
        match = _LAST_DIGITS.match(os.path.basename(dep.path))
        if match is not None:
            name = re.escape(match["head"]) + r"\d+" + re.escape(match["tail"])
            return _matching(dep.path, re.compile(name))
    return [dep.path] if os.path.isfile(dep.path) else []


def _udim_pattern(name: str) -> re.Pattern[str]:
    pattern = re.escape(name)
    for token, digits in _UDIM_TOKENS.items():
        pattern = pattern.replace(re.escape(token), digits)
    return re.compile(pattern)


def _matching(path: str, pattern: re.Pattern[str]) -> list[str]:
    folder = os.path.dirname(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(os.path.join(folder, n) for n in names if pattern.fullmatch(n))


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# ---------------------------------------------------------------- execute

PACK_PREFIX = "farm-pack-"


def new_pack_folder(tmp: Path) -> Path:
    """A folder for one submission's copy, named after this process so that a
    later start-up can tell a crashed session's leftovers from live ones."""
    return Path(tempfile.mkdtemp(prefix=f"{PACK_PREFIX}{os.getpid()}-", dir=tmp))


def remove_stale_packs(tmp: Path) -> list[Path]:
    """Remove the pack folders of processes that are gone (a crash leaves them)."""
    removed = []
    for folder in tmp.glob(f"{PACK_PREFIX}*"):
        if not _in_use(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _in_use(folder: Path) -> bool:
    """Whether the process that made the folder may still be submitting from it."""
    pid_text = folder.name[len(PACK_PREFIX) :].split("-", 1)[0]
    if not pid_text.isdigit():
        return False  # made before folders carried their pid
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    if os.name == "nt":  # no cheap pid check there: a day is longer than any upload
        with contextlib.suppress(OSError):
            return time.time() - folder.stat().st_mtime < 86400
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class RewriteJob:
    """What rewrite_paths.py is told: which .blend files to fix, and the remap."""

    blends: list[dict[str, str]]  # {"open": abs, "save": abs, "relpath": rel}
    remap: dict[str, str]  # as PackPlan.remap
    # Geometry-node modifiers' bake folders, absolute, to set again in the main
    # .blend: "object\x1fmodifier" -> folder (see "Lost bake folders" below)
    restore: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"blends": self.blends, "remap": self.remap, "restore": self.restore}
        return json.dumps(data, indent=1)


# Lost bake folders: a partial write (bpy.data.libraries.write, which the add-on
# uses to copy an open file's unsaved state) leaves geometry-node modifiers'
# bake_directory empty (Blender 5.0): without it the farm would simulate afresh
# instead of reading the bake. The shell passes the folders along
# (RewriteJob.restore) and the rewrite sets them again.


def rewrite_job(
    plan: PackPlan, pack_root: Path, main_source: str = "", restore: dict[str, str] | None = None
) -> RewriteJob:
    """Every .blend is opened where it is (the artist's file on disk, or the copy of
    its unsaved state the shell wrote into pack_root), so its own relative paths
    and links load, and is saved at its place in pack_root."""
    main = str(pack_root / plan.blend_relpath)
    blends = [{"open": main_source or main, "save": main, "relpath": plan.blend_relpath}]
    blends += [
        {"open": b.source, "save": str(pack_root / b.relpath), "relpath": b.relpath}
        for b in plan.blends
    ]
    return RewriteJob(blends, plan.remap, dict(restore or {}))


def upload_files(plan: PackPlan, pack_root: Path) -> dict[str, Path]:
    """relpath -> file to upload: sources as they are, .blend files from the pack."""
    files = {f.relpath: Path(f.source) for f in plan.files}
    for rel in [plan.blend_relpath, *(b.relpath for b in plan.blends)]:
        files[rel] = pack_root / rel
    return files


def run_rewrite(
    command: Sequence[str],
    job: RewriteJob,
    work_dir: Path,
    *,
    cancel: threading.Event | None = None,
    timeout: float = 600.0,
) -> None:
    """Run rewrite_paths.py in a separate Blender; `command` ends where the job file goes."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for entry in job.blends:
        Path(entry["save"]).parent.mkdir(parents=True, exist_ok=True)
    job_file = work_dir / "rewrite.json"
    job_file.write_text(job.to_json(), encoding="utf-8")
    log_file = work_dir / "rewrite.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [*command, str(job_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=blender_env(),
        )
        _wait(proc, cancel, timeout)
    text = log_file.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0 or "REWRITE_DONE" not in text:
        raise PackError(
            "Blender could not prepare the copy of your file for the farm"
            f" (see {log_file}):\n{text[-1500:]}"
        )


# Set by pipe.child_env in the helper process: Blender's own PYTHONPATH.
_ORIGINAL_PYTHONPATH = "FARM_BLENDER_PYTHONPATH"


def blender_env() -> dict[str, str]:
    """The environment Blender was started with, for a Blender (or a Python with
    the bpy module) started from the helper: not the helper's module paths, whose
    `bpy` folder of Blender's scripts would hide the bpy module."""
    env = dict(os.environ)
    if _ORIGINAL_PYTHONPATH in env:
        original = env.pop(_ORIGINAL_PYTHONPATH)
        if original:
            env["PYTHONPATH"] = original
        else:
            env.pop("PYTHONPATH", None)
    return env


def _wait(proc: subprocess.Popen[bytes], cancel: threading.Event | None, timeout: float) -> None:
    waited = 0.0
    while True:
        try:
            proc.wait(0.2)
            return
        except subprocess.TimeoutExpired:
            waited += 0.2
        if (cancel is not None and cancel.is_set()) or waited > timeout:
            proc.kill()
            proc.wait()
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            raise PackError(f"preparing the copy took longer than {timeout:g} s")
