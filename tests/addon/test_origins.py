"""Jobs belong to a farm and a file: "This file" lists the jobs one .blend sent to
the chosen farm, by the origin the add-on sends at Submit, never by job number.

Two real coordinators on 127.0.0.1 number their jobs from 1, so the same job
numbers exist on both; two .blend files send jobs to both. The listing goes
through the add-on's real helper process, as the panel's does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from flamenco_addon import submitting
from flamenco_addon.background import Channel
from flamenco_addon.origins import Identities, blend_identity, farm_identity, origin_of
from flamenco_addon.runtime import Runtime
from tests.addon.test_farm import submission
from tests.support.localfarm import LocalFarm

pytestmark = pytest.mark.timeout(120)


# ------------------------------------------------------------- plain rules


def test_a_farm_is_known_by_its_id_when_it_names_one_else_by_its_address() -> None:
    assert farm_identity("http://Studio:8765/") == farm_identity("http://studio:8765")
    assert farm_identity("http://a:1") != farm_identity("http://b:1")
    named = {"status": "ok", "farm_id": "F-123"}
    assert farm_identity("http://a:1", named) == farm_identity("http://b:1", named)
    pinned = {"fingerprint": "AB:CD"}
    assert farm_identity("http://a:1", pinned) == farm_identity("http://10.0.0.5:1", pinned)
    # What the network sends is not trusted to be the right type
    for junk in ({"farm_id": 5}, {"farm_id": ""}, {"fingerprint": None}, None):
        assert farm_identity("http://a:1", junk) == farm_identity("http://a:1")  # type: ignore[arg-type]


def test_an_origin_is_per_farm_and_file_and_hides_the_path(tmp_path: Path) -> None:
    blend = str(tmp_path / "shots" / "shot.blend")
    farm = farm_identity("http://a:1")
    origin = origin_of(farm, blend)
    assert len(origin) == 32 and int(origin, 16) >= 0  # the coordinator takes up to 64
    assert "shot" not in origin
    assert origin_of(farm, str(tmp_path / "shots" / "." / "shot.blend")) == origin
    assert origin_of(farm, str(tmp_path / "shots" / "other.blend")) != origin
    assert origin_of(farm_identity("http://b:1"), blend) != origin
    assert blend_identity(str(tmp_path / "shots" / ".." / "shots" / "shot.blend")) == (
        blend_identity(blend)
    )


class _Farm:
    """Answers /health like a coordinator and counts the calls."""

    url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.calls = 0

    def health(self) -> dict[str, str]:
        self.calls += 1
        return {"status": "ok", "farm_id": "one"}


def test_a_farms_identity_is_asked_once_a_while_not_at_every_poll() -> None:
    farm, identities = _Farm(), Identities(ttl=60.0)
    first = identities.origin(farm, "/p/a.blend")
    assert identities.origin(farm, "/p/a.blend") == first
    assert farm.calls == 1
    assert Identities(ttl=0.0).of(farm) == "farm_id:one" and farm.calls == 2


# ------------------------------------------------------- two farms, two files


@pytest.fixture
def farms(tmp_path: Path) -> Iterator[tuple[LocalFarm, LocalFarm]]:
    with (
        LocalFarm(root=tmp_path / "farm-a") as a,
        LocalFarm(root=tmp_path / "farm-b") as b,
    ):
        a.start_coordinator("--no-zeroconf")
        b.start_coordinator("--no-zeroconf")
        yield a, b


def submit_from(farm: LocalFarm, blend: Path, tmp_path: Path) -> int:
    """A job sent by the add-on's submit code, as if from `blend`."""
    sub = submission(farm, tmp_path, b"texture")
    sub = replace(sub, snapshot=replace(sub.snapshot, blend_path=str(blend)))
    return int(submitting.run(sub, Channel())["id"])


def listed(
    state: Runtime, farm: LocalFarm, blend: str, *, mine: bool = True, url: str = ""
) -> tuple[list[int], str]:
    """What the Jobs panel would show: job ids and this file's origin there."""
    state.want_jobs(url or farm.url, farm.token, {}, blend=blend, mine=mine)
    state.refresh_jobs()
    state.poll_jobs(time.monotonic())
    state.wait(lambda: not state.jobs_rid)
    assert state.jobs.error == ""
    return sorted(int(j["id"]) for j in state.jobs.jobs), state.jobs.origin


def test_each_file_lists_only_its_own_jobs_on_each_farm(
    farms: tuple[LocalFarm, LocalFarm], state: Runtime, tmp_path: Path
) -> None:
    a, b = farms
    x, y = tmp_path / "x" / "shot.blend", tmp_path / "y" / "shot.blend"  # same name
    assert submit_from(a, x, tmp_path) == 1
    assert submit_from(a, y, tmp_path) == 2
    assert submit_from(b, y, tmp_path) == 1  # job 1 again: another farm, another file
    assert submit_from(b, x, tmp_path) == 2
    assert submit_from(a, x, tmp_path) == 3

    assert listed(state, a, str(x))[0] == [1, 3]
    assert listed(state, a, str(y))[0] == [2]
    assert listed(state, b, str(x))[0] == [2]
    assert listed(state, b, str(y))[0] == [1]

    # "All" shows every job of the farm, and still knows which are this file's
    every, origin = listed(state, a, str(x), mine=False)
    assert every == [1, 2, 3]
    own = sorted(j["id"] for j in state.jobs.jobs if j["origin"] == origin)
    assert own == [1, 3]
    # An unsaved file has sent nothing; a job from elsewhere (no origin) is no file's
    a.client().submit({"name": "from the CLI", "type": "sleep", "settings": {"seconds": 1}})
    assert listed(state, a, "")[0] == []
    assert listed(state, a, str(x))[0] == [1, 3]
    # The origin on the farm is the one the file computes, and not the path itself
    job = a.client().job(1, tasks=False)
    assert job["origin"] == origin_of(farm_identity(a.url, a.client().health()), str(x))
    assert str(x) not in str(a.client().jobs())


def test_switching_file_or_scope_never_shows_the_last_lists_rows(
    farms: tuple[LocalFarm, LocalFarm], state: Runtime, tmp_path: Path
) -> None:
    a, _b = farms
    x, y = tmp_path / "x.blend", tmp_path / "y.blend"
    submit_from(a, x, tmp_path)
    assert listed(state, a, str(x))[0] == [1]
    state.want_jobs(a.url, a.token, {}, blend=str(y), mine=True)  # another file opened
    assert state.jobs.jobs == [] and state.changed  # until the farm answers for it


def test_a_farm_that_names_itself_keeps_this_files_jobs_at_another_address(
    state: Runtime, tmp_path: Path
) -> None:
    """A TLS farm names its certificate's fingerprint in /health: its jobs stay
    this file's whether the farm is reached as 127.0.0.1 or as localhost."""
    blend = tmp_path / "shot.blend"
    with LocalFarm(root=tmp_path / "tls-farm", tls=True) as farm:
        farm.start_coordinator("--no-zeroconf")
        assert farm.url.startswith("https://")
        job_id = submit_from(farm, blend, tmp_path)
        ids, origin = listed(state, farm, str(blend))
        assert ids == [job_id]
        by_name = farm.url.replace("127.0.0.1", "localhost")  # the same farm, another address
        assert listed(state, farm, str(blend), url=by_name) == ([job_id], origin)
        fingerprint = farm.client().health()["fingerprint"]
        assert origin == origin_of(f"fingerprint:{fingerprint.lower()}", str(blend))
