"""A farm machine with only Blender and the extension: the farm commands start a
coordinator that serves and a worker that renders, with the extension's bundled
wheels, no checkout, no PYTHONPATH and no pip.

Blender 4.2+: `blender -b -c farm_coordinator` / `-c farm_worker`, registered
with bpy.utils.register_cli_command; tried here with the zip installed into the
bpy 5.0.1 module, calling the registered commands as Blender would. Blender 3.4
(Debian's binary): the zip unpacked as a legacy add-on and docs/admin.md's
`--python-expr` line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from tests.support.addon_helpers import BPY_PYTHON, DEBIAN_BLENDER, build_extension
from tests.support.blendgen import make_scene, png_size
from tests.support.localfarm import LocalFarm
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# Runs in the bpy module: install the zip, then run one registered farm command.
COMMAND = r"""
import sys, bpy
zip_path, name, *argv = sys.argv[1:]
bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True
)
addon = sys.modules["bl_ext.user_default.lan_render_farm.addon"]
assert len(addon._CLI_HANDLES) == 2, "farm commands not registered"
print("COMMAND", name, flush=True)
sys.exit(addon._cli(name)(argv))
"""

# docs/admin.md's line for Blender 3.x, the options after "--".
LEGACY_LINE = (
    "import addon_utils as a; a.enable('lan_render_farm', default_set=True);"
    " import lan_render_farm.addon as f; f.cli_main()"
)


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_extension(tmp_path_factory.mktemp("ext"))


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH: nothing of this checkout or the dev venv is importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def render_job(client: FarmClient, tmp_path: Path, blender: Path | str) -> int:
    blend = make_scene(tmp_path / "project" / "shot.blend", blender=blender, frames=(1, 1))
    files, _ = client.upload_project({"shot.blend": blend})
    version = "5.0" if str(blender) == str(BPY_PYTHON) else "3.4"
    job = client.submit(
        {
            "name": "farm command",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": files,
            "blender_version": version,
            "settings": {
                "frames": "1",
                "chunk_size": 1,
                "output": str(tmp_path / "out" / "f_####"),
                "preview": False,  # the worker takes one task (--max-tasks 1): the render
            },
        }
    )
    return int(job["id"])


@pytest.fixture
def bpy_coordinator(extension_zip: Path, tmp_path: Path) -> Iterator[FarmClient]:
    data = tmp_path / "coordinator"
    port = str(_free_port())
    argv = [str(BPY_PYTHON), "-c", textwrap.dedent(COMMAND), str(extension_zip)]
    argv += ["farm_coordinator", "--host", "127.0.0.1", "--port", port]
    argv += ["--data-dir", str(data), "--no-zeroconf"]
    env = clean_env(BLENDER_USER_RESOURCES=str(tmp_path / "user-coordinator"))
    log = (tmp_path / "coordinator.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: (data / "token.txt").is_file() or proc.poll() is not None,
            timeout=90,
            what="the coordinator",
        )
        assert proc.poll() is None, (tmp_path / "coordinator.log").read_text()[-3000:]
        client = FarmClient(
            f"http://127.0.0.1:{port}", token=(data / "token.txt").read_text().strip()
        )
        wait_for(lambda: _healthy(client), timeout=30, what="the coordinator to answer")
        yield client
    finally:
        proc.send_signal(signal.SIGTERM)  # Blender passes it on to the coordinator
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.bpy
def test_the_registered_commands_serve_and_render_in_blender_5(
    bpy_coordinator: FarmClient, extension_zip: Path, tmp_path: Path
) -> None:
    job_id = render_job(bpy_coordinator, tmp_path, BPY_PYTHON)
    argv = [str(BPY_PYTHON), "-c", textwrap.dedent(COMMAND), str(extension_zip), "farm_worker"]
    argv += ["--coordinator", bpy_coordinator.url, "--token", str(bpy_coordinator.token)]
    argv += ["--name", "bpy-command", "--cache-dir", str(tmp_path / "cache"), "--max-tasks", "1"]
    env = clean_env(BLENDER_USER_RESOURCES=str(tmp_path / "user-worker"))
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    job = bpy_coordinator.job(job_id)
    logs = [bpy_coordinator.task_log(t["id"])[-2000:] for t in job["tasks"]]
    assert job["status"] == "completed", (job, logs, (out.stdout + out.stderr)[-3000:])
    assert png_size(tmp_path / "out" / "f_0001.png") == (64, 48)  # the farm delivered it


@pytest.mark.blender
def test_the_legacy_line_renders_with_blender_3_4_without_pythonpath(
    extension_zip: Path, tmp_path: Path
) -> None:
    addons = tmp_path / "scripts" / "addons" / "lan_render_farm"
    with zipfile.ZipFile(extension_zip) as z:
        z.extractall(addons)
    with LocalFarm(root=tmp_path / "farm", lease_seconds=10.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        job_id = render_job(farm.client(), tmp_path, DEBIAN_BLENDER)
        argv = [DEBIAN_BLENDER, "-b", "--factory-startup", "--python-expr", LEGACY_LINE, "--"]
        argv += ["farm_worker", "--coordinator", farm.url]  # the token by environment
        argv += [
            "--name",
            "legacy-line",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--max-tasks",
            "1",
        ]
        env = clean_env(BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"), FARM_TOKEN=farm.token)
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        assert farm.client().job(job_id, tasks=False)["status"] == "completed"
    assert png_size(tmp_path / "out" / "f_0001.png") == (64, 48)
    assert (addons / "_site" / "coordinator").is_dir()  # from the zip's own wheels


def _healthy(client: FarmClient) -> bool:
    try:
        client.health()
    except Exception:
        return False
    return True


def _free_port() -> int:
    from coordinator.core.network import free_port

    return free_port("127.0.0.1", start=18765, count=200)
