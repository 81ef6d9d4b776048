"""`submit BLEND` without --project: send the .blend and the files it uses, found by
the add-on's tracer in a headless Blender on this machine.

One set of rules: the add-on's own scripts (flamenco_addon/trace_paths.py, which
runs deps.py, packing.plan_pack and rewrite_paths.py) are run by file location
in a separate Blender, as the add-on runs its rewrite; nothing here imports the
add-on. Blender is found as a worker finds it: --blender, else $BLENDER, else
`blender` on PATH. A .blend whose blocks hold nothing that can point at a file
(blendscan.py) is sent alone without starting Blender.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordinator.cli.blendformat import IMAGE, scene_format
from coordinator.cli.blendscan import file_users
from coordinator.cli.common import CliError, note, plural
from coordinator.core.fileoutputs import FileOutputError, resolve_nodes, setting_text
from coordinator.core.frames import parse_frames
from coordinator.core.outputs import is_movie_format

TRACE_TIMEOUT = 600.0  # seconds: opening and saving a heavy .blend and its libraries
_SHOWN = 10  # missing files listed


@dataclass(frozen=True)
class Traced:
    files: dict[str, Path]  # project path -> file to upload
    blend: str  # the .blend's project path
    work_dir: Path | None  # holds the rewritten copies until they are uploaded
    # What the scene's compositor File Output nodes write, as Blender read them
    # (flamenco_addon/fileoutput_nodes.py); empty when not traced
    file_outputs: tuple[dict[str, Any], ...] = ()
    # The rendered scene's output format (e.g. "PNG", "FFMPEG"); None when not traced
    file_format: str | None = None


def traced_project(blend: Path, blender: str | None, *, scene: str | None = None) -> Traced:
    """The files to send for `blend`; refuses (CliError) when files are missing or
    there is no Blender to find them."""
    users = file_users(blend)
    if users == []:
        return Traced({blend.name: blend}, blend.name, None, file_format=movie_of(blend, scene))
    exe = find_blender(blender)
    if exe is None:
        why = f"uses other files ({', '.join(users)})" if users else "may use other files"
        raise CliError(
            f"{blend.name} {why}, and no Blender was found to trace them: pass --blender"
            " PATH (Blender, or a Python with the bpy module), set BLENDER, or send the"
            " folder that holds everything with --project DIR"
        )
    note(f"finding the files {blend.name} uses (Blender: {exe})...")
    work_dir = Path(tempfile.mkdtemp(prefix="farm-trace-"))
    try:
        traced = trace(blend, exe, work_dir, scene=scene)
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    return traced


def movie_of(blend: Path, scene: str | None) -> str | None:
    """The movie format the scene writes, read from the .blend's blocks when no
    Blender traces it (blendformat.py); None for images or when it cannot tell."""
    fmt = scene_format(blend, scene)
    return None if fmt == IMAGE else fmt


def find_blender(explicit: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """--blender, else $BLENDER, else `blender` on PATH (worker_agent/probe.py's order)."""
    env = os.environ if env is None else env
    path = env.get("PATH", os.defpath)
    for source, candidate in (("--blender", explicit), ("$BLENDER", env.get("BLENDER"))):
        if candidate:
            found = shutil.which(candidate, path=path)
            if found is None:
                raise CliError(f"{source} names {candidate!r}, which is not an executable")
            return os.path.abspath(found)
    found = shutil.which("blender", path=path)
    return os.path.abspath(found) if found else None


def trace_script() -> Path:
    """flamenco_addon/trace_paths.py, found where the add-on is installed."""
    spec = importlib.util.find_spec("flamenco_addon")
    if spec is None or spec.origin is None:
        raise CliError("the add-on's files (flamenco_addon) are not installed with this CLI")
    return Path(spec.origin).with_name("trace_paths.py")


def trace_command(exe: str, script: Path, job: Path) -> list[str]:
    """The binary runs the script with --python; a Python with bpy runs it directly."""
    if Path(exe).name.startswith("python"):
        return [exe, str(script), str(job)]
    return [
        exe,
        *("-b", "--factory-startup", "-noaudio", "--disable-autoexec"),
        *("--python-exit-code", "1", "--python", str(script), "--", str(job)),
    ]


def trace(
    blend: Path,
    exe: str,
    work_dir: Path,
    *,
    timeout: float = TRACE_TIMEOUT,
    scene: str | None = None,
) -> Traced:
    result = work_dir / "trace.json"
    job = work_dir / "job.json"
    asked = {
        "blend": str(blend),
        "pack_dir": str(work_dir / "pack"),
        "result": str(result),
        "scene": scene,
    }
    job.write_text(json.dumps(asked), encoding="utf-8")
    command = trace_command(exe, trace_script(), job)
    try:
        proc = subprocess.run(
            command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired as ex:
        raise CliError(f"Blender took longer than {timeout:g} s to trace {blend.name}") from ex
    except OSError as ex:
        raise CliError(f"cannot run {exe}: {ex}") from ex
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    if proc.returncode != 0 or not result.is_file():
        raise CliError(
            f"Blender ({exe}) could not trace {blend.name}; is it a .blend this Blender"
            f" can open? Its last output:\n{output.strip()[-1500:]}"
        )
    answer = json.loads(result.read_text(encoding="utf-8"))
    if "error" in answer:
        raise CliError(f"Blender ({exe}) cannot open {blend.name}: {answer['error']}")
    if answer["missing"]:
        raise CliError(missing_message(blend, answer["missing"]))
    files = {rel: Path(path) for rel, path in answer["files"].items()}
    fmt = answer.get("file_format")
    return Traced(
        files,
        answer["blend"],
        work_dir,
        tuple(answer.get("file_outputs") or ()),
        fmt if isinstance(fmt, str) and fmt else None,
    )


def missing_message(blend: Path, missing: list[str]) -> str:
    listed = "\n".join(f"  {m}" for m in missing[:_SHOWN])
    more = f"\n  and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    return (
        f"{blend.name} uses {plural(len(missing), 'file')} that cannot be found;"
        f" nothing was uploaded:\n{listed}{more}\nPut them back where the .blend looks"
        " for them (in Blender: File > External Data > Find Missing Files), or remove"
        " them from the scene, then submit again"
    )


def file_output_setting(traced: Traced, blend: Path) -> str:
    """The job's `file_outputs` for what the trace found: each File Output node's
    files with their destinations resolved here, next to the .blend as Blender
    resolves them ("" when there are none)."""
    try:
        found = resolve_nodes(traced.file_outputs, str(blend.resolve()))
    except FileOutputError as ex:
        raise CliError(f"{blend.name}: the compositor's {ex}") from ex
    return setting_text(found)


def add_file_outputs(
    settings: dict[str, Any], job_type: Mapping[str, Any], traced: Traced, blend: Path
) -> None:
    """Send the traced File Output files, when the job type takes them and the
    person did not set them with --set file_outputs=..."""
    takes = any(s.get("name") == "file_outputs" for s in job_type.get("settings", []))
    if traced.file_outputs and takes and "file_outputs" not in settings:
        settings["file_outputs"] = file_output_setting(traced, blend)


def add_movie_format(settings: dict[str, Any], job_type: Mapping[str, Any], traced: Traced) -> None:
    """A scene that writes a movie is submitted as a movie job (frames in chunks,
    then one encode), as the add-on does, unless the person set file_format; a
    farm whose job type cannot make movies is refused before anything is uploaded."""
    fmt = traced.file_format
    if fmt is None or not writes_movie(fmt):
        return
    given = settings.get("file_format")
    if given is not None:
        if not writes_movie(given):
            note(f"note: the scene writes {fmt} movies; the farm renders {given} frames as asked")
        return
    setting = next(
        (s for s in job_type.get("settings", []) if s.get("name") == "file_format"), None
    )
    if setting is None:
        return  # a job type that does not set the format renders as its scene says
    if fmt not in (setting.get("choices") or ()):
        raise CliError(
            f"the scene writes {fmt} movies, which this farm's {job_type.get('name')} jobs"
            " cannot make; set an image format in the scene (Output Properties > Output)"
            " or pass --set file_format=PNG, then make the movie from the frames"
        )
    frames = settings.get("frames")
    if frames is not None and not consecutive(frames):
        raise CliError(
            f"the scene writes {fmt} movies, made of consecutive frames, and --frames"
            f" {frames} is not one range: give one (e.g. --frames 1-250), or pass"
            " --set file_format=PNG to render those frames as images"
        )
    settings["file_format"] = fmt
    note(f"the scene writes {fmt} movies: the farm renders frames and encodes one movie")


def writes_movie(fmt: str) -> bool:
    try:
        return is_movie_format(fmt)
    except ValueError:  # a format the farm does not know: check_settings says so
        return False


def consecutive(text: str) -> bool:
    try:
        frames = parse_frames(text)
    except ValueError:
        return True  # check_settings has said what is wrong with it
    return not frames or frames == list(range(frames[0], frames[-1] + 1))
