"""Build the Blender extension zips: `make extension`, or
`python scripts/build_extension.py [--platform linux-x64 ...] [--offline]`.

What goes into each zip:
  * flamenco_addon/ as the extension's package, with blender_manifest.toml;
  * wheels/: the Python packages the add-on and its embedded coordinator and
    worker need (requests, zeroconf, aiohttp and their dependencies) for
    CPython 3.11, the Python of Blender 4.2-5.0, downloaded with pip per
    platform; plus `lanfarm`, a wheel of this project's coordinator/ and
    worker_agent/ made here (flamenco_addon imports `coordinator.client.http`, and
    starts `python -m coordinator serve` / `python -m worker_agent`).
    Blender installs the wheels into its extensions' site-packages.

macos-x64: zeroconf publishes no wheel for it. Its code runs without its
compiled speed-ups, so the wheel is built here from zeroconf's sdist with
SKIP_CYTHON=1 and tagged for macOS x64 only. If that build fails the macOS
x64 zip ships without zeroconf: the add-on then hides the network search and
the artist types the coordinator's address (and cannot start a local farm).

Zips are built and validated by Blender's own blender_ext.py, found inside
the bpy wheel in .venv-bpy (or given with --blender-ext).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.11"  # Blender 4.2-5.0
RUNTIME_PACKAGES = ("coordinator", "worker_agent")
REQUIREMENTS = ("aiohttp", "zeroconf", "requests")
PLATFORM_TAGS = {
    "linux-x64": [
        *("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
        *("manylinux_2_5_x86_64", "manylinux1_x86_64"),
    ],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_11_0_arm64"],
    "macos-x64": ["macosx_10_13_x86_64"],
}
NO_WHEEL = {"macos-x64": ("zeroconf",)}  # built from the sdist instead, see above
NO_WHEEL_DEPS = {"zeroconf": ("ifaddr",)}  # what pip would have fetched with it


def requirements() -> list[str]:
    """Pinned to what the dev venv runs (and the tests pass with), when known."""
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def pip_download(platform: str, reqs: list[str], dest: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:"]
    command += ["--python-version", PYTHON_VERSION, "--implementation", "cp", "-d", str(dest)]
    for tag in PLATFORM_TAGS[platform]:
        command += ["--platform", tag]
    subprocess.run([*command, *reqs], check=True)


def download_wheels(platform: str, cache: Path, *, offline: bool) -> list[Path]:
    """The platform's wheels, from the cache when it was filled for the same pins."""
    reqs = requirements()
    folder = cache / platform
    stamp = folder / ".complete"
    key = json.dumps(reqs)
    if not (stamp.is_file() and stamp.read_text() == key):
        if offline:
            raise SystemExit(f"no cached wheels for {platform} in {folder}; run without --offline")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        skip = NO_WHEEL.get(platform, ())
        wanted = [r for r in reqs if r.split("==")[0] not in skip]
        wanted += [dep for name in skip for dep in NO_WHEEL_DEPS.get(name, ())]
        pip_download(platform, wanted, folder)
        for name in skip:
            _pure_wheel_from_sdist(next(r for r in reqs if r.startswith(name)), platform, folder)
        stamp.write_text(key)
    return sorted(folder.glob("*.whl"))


def _pure_wheel_from_sdist(req: str, platform: str, folder: Path) -> None:
    """Build `req` without C extensions and tag it for `platform` only."""
    work = folder / ".sdist"
    env = dict(os.environ, SKIP_CYTHON="1")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-binary", ":all:"]
    try:
        subprocess.run([*command, "-w", str(work), req], check=True, env=env)
    except subprocess.CalledProcessError:
        print(f"warning: could not build {req} for {platform}; the zip goes without it")
        return
    for wheel in work.glob("*.whl"):
        retag(wheel, folder, PLATFORM_TAGS[platform][0])
    shutil.rmtree(work, ignore_errors=True)


def retag(wheel: Path, folder: Path, platform_tag: str) -> Path:
    """Copy a wheel with no compiled code under a py3-none-<platform_tag> name."""
    name, version = wheel.name.split("-")[:2]
    with zipfile.ZipFile(wheel) as src:
        if any(n.endswith((".so", ".pyd", ".dylib")) for n in src.namelist()):
            raise SystemExit(f"{wheel.name} has compiled code; it can't be retagged")
        files = {n: src.read(n) for n in src.namelist() if not n.endswith("/RECORD")}
    info = f"{name}-{version}.dist-info"
    files[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: build_extension\nRoot-Is-Purelib: true\n"
        f"Tag: py3-none-{platform_tag}\n"
    ).encode()
    target = folder / f"{name}-{version}-py3-none-{platform_tag}.whl"
    write_wheel(target, files, info)
    return target


def write_wheel(target: Path, files: dict[str, bytes], info: str) -> None:
    """A wheel zip with a correct RECORD, entries in a stable order."""
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([path, f"sha256={digest}", len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for path, data in sorted(files.items()):
            out.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
        out.writestr(zipfile.ZipInfo(f"{info}/RECORD", (2020, 1, 1, 0, 0, 0)), record.getvalue())


def runtime_wheel(dest: Path) -> Path:
    """`lanfarm`: coordinator/ and worker_agent/ as a pure wheel, without flamenco_addon."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    version = project["version"]
    info = f"lanfarm-{version}.dist-info"
    files: dict[str, bytes] = {}
    for package in RUNTIME_PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[path.relative_to(REPO).as_posix()] = path.read_bytes()
    requires = "".join(f"Requires-Dist: {r}\n" for r in project.get("dependencies", []))
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: lanfarm\nVersion: {version}\n"
        f"Summary: {project.get('description', '')}\n{requires}"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: build_extension\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/top_level.txt"] = "\n".join(RUNTIME_PACKAGES).encode() + b"\n"
    target = dest / f"lanfarm-{version}-py3-none-any.whl"
    write_wheel(target, files, info)
    return target


def find_blender_ext() -> Path:
    found = sorted(
        REPO.glob(
            ".venv-bpy/lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"
        )
    )
    if not found:
        raise SystemExit(
            "blender_ext.py not found: run `make setup-test` (it installs bpy)"
            " or pass --blender-ext"
        )
    return found[-1]


def stage(source: Path, platforms: list[str], wheels: list[Path]) -> None:
    """The extension's source folder: the add-on, the manifest with its wheels, the wheels."""
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(
        REPO / "flamenco_addon", source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (source / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, source / "wheels" / wheel.name)
    manifest = (REPO / "blender_manifest.toml").read_text(encoding="utf-8")
    manifest = re.sub(r"(?m)^platforms = .*$", f"platforms = {json.dumps(platforms)}", manifest)
    listed = ",\n".join(f'  "./wheels/{w.name}"' for w in sorted(wheels, key=lambda w: w.name))
    manifest = manifest.replace(
        "\n[permissions]", f"\nwheels = [\n{listed},\n]\n\n[permissions]", 1
    )
    (source / "blender_manifest.toml").write_text(manifest, encoding="utf-8")


def build(
    platforms: list[str], out: Path, cache: Path, *, offline: bool, blender_ext: Path
) -> list[Path]:
    wheels: dict[str, Path] = {}
    for platform in platforms:
        for wheel in download_wheels(platform, cache, offline=offline):
            wheels.setdefault(wheel.name, wheel)
    out.mkdir(parents=True, exist_ok=True)
    wheels_list = [*wheels.values(), runtime_wheel(out)]
    source = out / "source"
    stage(source, platforms, wheels_list)
    for old in out.glob("*.zip"):
        old.unlink()
    run = [sys.executable, str(blender_ext)]
    subprocess.run(
        [*run, "build", "--source-dir", str(source), "--output-dir", str(out), "--split-platforms"],
        check=True,
    )
    zips = sorted(out.glob("*.zip"))
    for zip_path in zips:
        subprocess.run([*run, "validate", str(zip_path)], check=True)
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--platform",
        action="append",
        choices=sorted(PLATFORM_TAGS),
        help="repeatable; default: all",
    )
    parser.add_argument("--out", type=Path, default=REPO / "build" / "extension")
    parser.add_argument("--wheel-cache", type=Path, default=REPO / "build" / "wheels")
    parser.add_argument("--offline", action="store_true", help="use cached wheels only")
    parser.add_argument("--blender-ext", type=Path, help="path to blender_ext.py")
    args = parser.parse_args(argv)
    platforms = args.platform or list(PLATFORM_TAGS)
    zips = build(
        platforms,
        args.out,
        args.wheel_cache,
        offline=args.offline,
        blender_ext=args.blender_ext or find_blender_ext(),
    )
    for zip_path in zips:
        print(f"{zip_path}: {zip_path.stat().st_size / 1048576:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
