"""Re-captures the real render output the parser tests read.

    .venv/bin/python tests/support/data/capture.py

Runs the runner with Debian's Blender 3.4 and with the bpy 5.0.1 module on
generated scenes (non-ASCII scene and folder names on purpose) and writes each
run's combined stdout+stderr to tests/support/data/runner_<blender>_<case>.txt.
The paths inside are under /tmp/farm-capture.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.support import blendgen  # noqa: E402
from worker_agent.blender import build_command, write_task  # noqa: E402
from worker_agent.in_blender.render_task import RenderTask  # noqa: E402
from worker_agent.probe import probe  # noqa: E402

ROOT = Path("/tmp/farm-capture")
SCENE = "Szene_Übung_日本"


def capture(exe: str, name: str, blend: Path, **task_fields: object) -> None:
    info = probe(exe)
    fields: dict = {
        "blend": str(blend),
        "frames": (1, 2),
        "scene": SCENE,
        "output_dir": str(ROOT / f"Ausgabe_日本_{info.version}_{name}"),
        "output_name": "frame_####",
        "disable_denoise": True,
    }
    fields.update(task_fields)
    task_path = write_task(RenderTask(**fields), ROOT / f"task_{name}.json")
    command = build_command(
        info, task_json_path=task_path, blend_path=fields["blend"], allow_scripts=False
    )
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    kind = "blender" if info.kind == "binary" else "bpy"
    target = HERE / f"runner_{kind}-{info.version}_{name}.txt"
    target.write_bytes(proc.stdout)
    print(target.name, "exit", proc.returncode)


# Records every text 5.0 passes to render_stats (it never reaches stdout).
_STATS_SCRIPT = """
import sys, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
texts = []
bpy.app.handlers.render_stats.append(lambda *args: texts.append(args[0]))
bpy.context.scene.render.filepath = sys.argv[2]
bpy.ops.render.render(write_still=True)
with open(sys.argv[3], "w", encoding="utf-8") as f:
    f.write("\\n".join(texts) + "\\n")
"""


def capture_stats(python: Path, blend: Path) -> None:
    target = HERE / "render_stats_bpy-5.0.1.txt"
    script = ROOT / "stats.py"
    script.write_text(_STATS_SCRIPT, encoding="utf-8")
    command = [str(python), str(script), str(blend), str(ROOT / "stats_out"), str(target)]
    subprocess.run(command, check=True, capture_output=True)
    print(target.name)


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    b34 = blendgen.make_scene(
        ROOT / "szene_3.4.blend", scene_name=SCENE, texture=ROOT / "tex" / "karo.png"
    )
    capture(blendgen.DEBIAN_BLENDER, "frames", b34)
    capture(blendgen.DEBIAN_BLENDER, "range", b34, samples=8, sample_offset=4, sample_count=4)
    capture(blendgen.DEBIAN_BLENDER, "nocamera", b34, camera="Kamera_fehlt")
    capture(blendgen.DEBIAN_BLENDER, "missing", ROOT / "fehlt.blend")
    if blendgen.BPY_PYTHON.exists():
        b50 = blendgen.make_scene(
            ROOT / "szene_5.0.blend",
            blender=blendgen.BPY_PYTHON,
            scene_name=SCENE,
            texture=ROOT / "tex" / "karo.png",
        )
        capture(str(blendgen.BPY_PYTHON), "frames", b50)
        capture(
            str(blendgen.BPY_PYTHON),
            "range",
            b50,
            samples=8,
            sample_offset=4,
            sample_count=4,
            file_format="OPEN_EXR_MULTILAYER",
        )
        capture_stats(blendgen.BPY_PYTHON, b50)


if __name__ == "__main__":
    main()
