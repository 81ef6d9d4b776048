"""The interactive path in a real Blender window (Debian's 3.4 under Xvfb): the panel
draws, Start a Farm runs detached processes, Submit runs as a modal operator with
progress while timers fire, the Jobs list fills, Esc pressed on the keyboard
cancels a second Submit before it becomes a job, Stop Farm asks first while a job
renders and ends the farm at once when none does. The same run
makes the pictures of docs/artist-guide.md (scripts/addon_screenshots.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.addon_screenshots import main as run_ui

pytestmark = [pytest.mark.blender, pytest.mark.gui, pytest.mark.slow, pytest.mark.timeout(300)]


def test_panel_submit_and_farm_buttons_in_a_real_window(tmp_path: Path) -> None:
    code, output = run_ui(tmp_path)
    assert code == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    shots = sorted(p.name for p in tmp_path.glob("addon-*.png"))
    assert shots == ["addon-farm.png", "addon-jobs.png", "addon-submitting.png"]
    # Named after the file and the time, so that a file's jobs tell apart
    assert re.search(r'Job 1 "shot \d\d-\d\d \d\d:\d\d" is on the farm', output), output[-4000:]
    assert "JOB_STATUS completed" in output
    assert "ESCAPE held jobs 1 1" in output, output[-4000:]  # no second job
    assert "ESC_SENT_WHILE Preparing the copy" in output, output[-4000:]
    assert "LAST_REPORT Submission cancelled; nothing was sent to the farm" in output, output[
        -4000:
    ]
    # High in Render Properties: right under the Render Engine, not below Bake
    assert "PANEL_PARENT RENDER_PT_context" in output, output[-4000:]
    # Under "This file", another file's (or program's) job is not acted on
    assert re.search(r"OTHER_JOB_ACTION .*is not this file's.* (queued|active)", output), output[
        -4000:
    ]
    # Stop Farm asks while a job renders (and stops nothing until confirmed) ...
    assert "STOP_WITH_WORK ['INTERFACE'] running" in output, output[-4000:]
    # ... and stops at once when nothing runs
    assert "STOP_IDLE ['FINISHED'] stopped" in output, output[-4000:]
