"""The add-on's result sync against a coordinator that lies (tests/support/crafted_farm.py):
output names with "..", absolute paths, drives, UNC paths, reserved and hidden
names, a link planted in the renders folder, and a job whose output the reply
points at Blender's startup scripts. Nothing lands outside the renders folder
the artist submitted, and the panel's sync line says what was refused, once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flamenco_addon import submitting
from flamenco_addon.background import Channel
from flamenco_addon.packing import plan_pack
from flamenco_addon.submission import JobForm, SceneSnapshot
from flamenco_addon.sync import JobRecords, Syncer
from tests.support.crafted_farm import CraftedFarm, crafted_farm, files_under

FRAME = os.urandom(2000)


def submission(farm: CraftedFarm, home: Path, pack: Path) -> submitting.Submission:
    """A real submission of home/project/shot.blend, frames asked into home/project/out."""
    project = home / "project"
    project.mkdir(parents=True)
    blend = project / "shot.blend"
    blend.write_bytes(b"BLENDER-v304 fake")
    pack.mkdir()
    (pack / "shot.blend").write_bytes(blend.read_bytes())
    snap = SceneSnapshot(str(blend), "Scene", "Camera", 1, 1, 1, "//out/f_####", "PNG")
    return submitting.Submission(
        client=farm.client(),
        plan=plan_pack(str(blend), []),
        pack_root=pack,
        rewrite_command=[sys.executable, "-c", "print('REWRITE_DONE')"],
        snapshot=snap,
        form=JobForm(chunk_size=1),
        deliver=False,
    )


def test_sync_writes_only_plain_names_into_the_submitted_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    startup = home / ".config" / "blender" / "4.2" / "scripts" / "startup"
    startup.mkdir(parents=True)
    with crafted_farm(tmp_path / "farm") as farm:
        # The reply to the submission, and the job later, say: "frames go to startup/".
        farm.created = {"output": str(startup / "f_####")}
        sub = submission(farm, home, tmp_path / "pack")
        job = submitting.run(sub, Channel())
        farm.settings[job["id"]] = farm.created
        record = submitting.record_of(sub, job)
        out = home / "project" / "out"
        assert record.output_dir == str(out)  # the folder submitted, not the reply's

        out.mkdir()
        os.symlink(startup / "linked.py", out / "f_0009.png")  # a trap planted earlier
        farm.outputs[job["id"]] = {
            "f_0001.png": FRAME,
            "../../../.config/blender/4.2/scripts/startup/evil.py": b"import os",
            str(startup / "abs.py"): b"import os",
            "C:f_0002.png": FRAME,
            "\\\\server\\share\\f_0003.png": FRAME,
            "..\\..\\evil.py": b"import os",
            "..": FRAME,
            ".hidden.png": FRAME,
            "CON.png": FRAME,
            "f_0009.png": FRAME,
        }
        before = files_under(home)
        records = JobRecords(tmp_path / "records.json")
        records.add(record)
        syncer = Syncer(records, lambda _url: farm.token)
        syncer.blends.add(os.path.normcase(record.blend))
        syncer.run_once()

        assert farm.fetched(job["id"]) == ["f_0001.png"]  # nothing else was even asked for
    after = files_under(home)
    assert {k: v for k, v in after.items() if k not in before} == {"project/out/f_0001.png": FRAME}
    assert {k: after[k] for k in before} == before  # nothing changed, the planted link neither
    line = syncer.status[job["id"]]
    assert "\n" not in line and line.startswith("1 frame(s) home; skipped unsafe: file name")
    assert "is refused" in line and "(and 8 more)" in line
