"""What the panel says: wrapped messages, masked tokens, job names, sensible buttons."""

from __future__ import annotations

from flamenco_addon.panel_text import (
    default_job_name,
    eta_text,
    job_detail,
    masked,
    offered,
    stop_asks,
    wrap,
)

CANT_REACH = (
    "Can't reach the farm coordinator at http://127.0.0.1:8765. Is it running, and is"
    " the address in the add-on preferences right?"
)


def test_an_error_is_wrapped_whole_in_the_default_narrow_editor() -> None:
    lines = wrap(CANT_REACH, width_px=320)  # Properties' default width, scale 1
    assert len(lines) > 1
    assert " ".join(lines) == CANT_REACH  # nothing cut off
    assert all(len(line) <= (320 - 60) / 7 for line in lines)
    assert len(wrap(CANT_REACH, width_px=1600)) == 1
    assert len(wrap(CANT_REACH, width_px=320, scale=2.0)) > len(lines)  # a bigger UI


def test_a_very_long_message_stays_a_few_lines() -> None:
    lines = wrap("word " * 500, width_px=320)
    assert len(lines) == 6 and lines[-1].endswith("…")


def test_the_token_is_not_shown_in_plain_text() -> None:
    token = "tOk3n-with-enough-secret-bits"
    assert token not in masked(token) and masked(token).startswith("tOk3")
    assert masked("short") == "•••••"


def test_a_job_is_named_after_its_file_and_the_time() -> None:
    name = default_job_name("/p/shot_010.blend", now=0.0)
    assert name.startswith("shot_010 ") and len(name) == len("shot_010 01-01 00:00")
    assert default_job_name("", now=0.0).startswith("untitled ")


def test_finished_jobs_offer_only_what_makes_sense() -> None:
    assert offered({"status": "completed", "actions": ["regenerate", "delete"]}) == {"regenerate"}
    assert offered({"status": "active", "actions": ["cancel", "pause", "priority"]}) == {
        "cancel",
        "pause",
    }
    assert offered({"status": "completed"}) == {"regenerate"}  # an older coordinator
    assert offered({"status": "paused"}) == {"cancel", "resume"}


def test_what_submit_would_refuse_is_said_before_the_click() -> None:
    from flamenco_addon.packing import Missing
    from flamenco_addon.panel_text import submit_warnings
    from flamenco_addon.submission import SceneSnapshot

    snap = SceneSnapshot("/p/shot.blend", "Scene", "Cam", 1, 2, 1, "//r/f_", "PNG")
    url = "http://127.0.0.1:8765"
    assert submit_warnings(snap, url=url, token="t", missing=[]) == []
    movie = SceneSnapshot("/p/shot.blend", "Scene", "Cam", 1, 2, 1, "//r/f_", "FFMPEG")
    assert submit_warnings(movie, url=url, token="t", missing=[]) == []  # the farm encodes it
    gone = [Missing("image", f"wood{n}", f"/p/tex/wood{n}.png") for n in range(5)]
    (said,) = submit_warnings(snap, url=url, token="t", missing=gone)
    assert said == (
        'Missing files: image "wood0": /p/tex/wood0.png; image "wood1": /p/tex/wood1.png;'
        ' image "wood2": /p/tex/wood2.png and 2 more'
    )
    assert submit_warnings(snap, url=url, token="", missing=[])[0].startswith("No farm token")
    assert submit_warnings(snap, url="", token="", missing=[]) == []  # no farm: said above


def test_the_time_left_reads_in_minutes_or_hours() -> None:
    assert eta_text(300.0) == "about 5 min left"
    assert eta_text(89) == "about 1 min left"
    assert eta_text(12.5) == "less than a minute left"
    assert eta_text(119 * 60) == "about 119 min left"
    assert eta_text(3 * 3600 + 900) == "about 3.2 h left"
    assert eta_text(30 * 3600) == "about 30 h left"


def test_no_estimate_or_a_bad_one_says_nothing() -> None:
    # eta_seconds comes from the network: anything but a sane number is no estimate
    for value in (None, "300", True, -5, float("nan"), float("inf"), [300], {"s": 1}):
        assert eta_text(value) == "", value


def test_the_selected_jobs_line_tells_the_time_left_only_while_it_runs() -> None:
    assert job_detail("active", "", "about 5 min left") == "Active, about 5 min left"
    assert job_detail("queued", "", "about 9 min left") == "Queued, about 9 min left"
    assert job_detail("active", "", "") == "Active"
    assert job_detail("completed", "", "about 5 min left") == "Completed"
    assert job_detail("paused", "paused by alice", "about 5 min left") == "paused by alice"


def test_stop_farm_asks_only_while_work_runs_or_when_it_cant_tell() -> None:
    local = "http://127.0.0.1:8765"
    assert stop_asks(local, local, 2)  # queued or rendering jobs (anyone's) stop with it
    assert not stop_asks(local, local, 0)  # nothing to lose: stops at once
    assert stop_asks(local, local, None)  # the list has not been fetched yet
    assert stop_asks(local, "http://10.0.0.5:8765", 0)  # the list is of another farm
    assert not stop_asks("", local, 3)  # no farm runs here: nothing to stop
