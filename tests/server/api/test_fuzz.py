"""Hostile input: the API fuzzed from its own OpenAPI document, and the names and
paths a client (or a .blend) could use to write outside where files belong.

The fuzz drives a real `python -m coordinator serve` over HTTP with requests
that hypothesis builds from the served document (valid bodies from each
schema, arbitrary JSON, raw bytes; path and query values from each parameter's
schema, known ids, and any text), with the right credential or none. Whatever
comes in: no 5xx, every 4xx is JSON with an "error" that explains it, and
every answer is one the document describes (tests/support/openapi_check.py).
Bounded and deterministic: derandomized, no example database, a fixed number
of examples per operation.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator.server.app import create_app
from coordinator.server.config import AppConfig, FarmConfig
from coordinator.server.filestore import check_relpath, deliver, sha256_file
from coordinator.server.openapi import openapi_document
from tests.conftest import (
    API,
    AUTH,
    TOKEN,
    api_routes,
    app_of,
    claim,
    concrete,
    farm_of,
    get_job,
    register,
    sha,
    submit_render,
    submit_sleep,
    upload_blob,
)
from tests.support.localfarm import LocalFarm
from tests.support.openapi_check import check_response
from worker_agent.cache import BlobCache, CacheError

Client = TestClient[Any, Any]

# ================================================================ the fuzz
# per operation: about 40 operations, some seconds in all (raise it to hunt for bugs)
EXAMPLES = int(os.environ.get("FARM_FUZZ_EXAMPLES", "25"))
# Streams and long-polls: a fuzzed wait of 60 s would only test patience.
SKIP = {("GET", f"{API}/events")}
# Always sent, as none of these waits: left out (or "") it is 20 s, "inf" a minute.
WAITS = st.sampled_from(["0", "0.01", "-1", "-inf", "nan", "abc", "0x10"])


def _operations() -> list[tuple[str, str]]:
    """(method, path) of each operation the document describes (the live test
    reads each operation's details from the document the coordinator serves)."""
    return [
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
        and (method.upper(), path) not in SKIP
    ]


OPERATIONS = _operations()


def _inline(node: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """The schema with its #/components/... references written out."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/") and depth < 8:
            return _inline(components[ref.rsplit("/", 1)[1]], components, depth + 1)
        return {k: _inline(v, components, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, components, depth) for v in node]
    return node


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _schema_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that match a (reference-free) JSON schema, for the keywords the
    document uses. (hypothesis-jsonschema does this in general, but its releases
    lag behind hypothesis's internals.)"""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_schema_values({**schema, "type": k}) for k in kind])
    low, high = schema.get("minimum"), schema.get("maximum")
    simple: dict[Any, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=min(schema.get("maxLength", 40), 40)),
        "integer": st.integers(min_value=low, max_value=high),
        "number": st.floats(low, high, allow_nan=False, allow_infinity=False),
        "boolean": st.booleans(),
        "null": st.none(),
    }
    if kind in simple:
        return simple[kind]
    if kind == "array":
        return st.lists(_schema_values(schema.get("items", {})), max_size=4)
    if kind == "object":
        props, required = schema.get("properties", {}), set(schema.get("required", ()))
        extra = schema.get("additionalProperties", True)
        if not props:
            values = _schema_values(extra) if isinstance(extra, dict) else JSON_VALUES
            return st.dictionaries(st.text(max_size=20), values, max_size=4)
        return st.fixed_dictionaries(
            {k: _schema_values(v) for k, v in props.items() if k in required},
            optional={k: _schema_values(v) for k, v in props.items() if k not in required},
        )
    return JSON_VALUES


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real coordinator, a worker holding a task, and ids of things that exist."""
    with LocalFarm(root=tmp_path_factory.mktemp("fuzz"), lease_seconds=600) as farm:
        farm.start_coordinator("--no-zeroconf")
        client = farm.client()
        worker = client.register_worker(name="fuzzed", host="h", blender_version="4.2", devices=[])
        victim = client.register_worker(name="victim", host="h", blender_version="4.2", devices=[])
        job = client.submit({"name": "fuzz", "type": "sleep", "settings": {"task_count": 50}})
        task = client.with_token(worker.secret).next_task(wait=0)
        assert task is not None
        doc = client.openapi()  # the document as served, which is what clients get
        yield {
            "url": farm.url,
            "doc": doc,
            "secret": worker.secret,
            "known": {
                "job_id": [str(job["id"])],
                "task_id": [str(task.task_id), str(task.task_id + 1)],
                "worker_id": [victim.worker_id],
                "sha256": ["0" * 64],
                "name": ["frame_0001.png"],
            },
        }


def _path_value(name: str, schema: dict[str, Any], known: dict[str, list[str]]) -> Any:
    return st.one_of(
        st.sampled_from(known.get(name) or ["1"]),
        _schema_values(schema).map(str),
        st.text(max_size=300),
    ).map(lambda v: quote(v, safe="") or "x")


def _query_values(params: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, str]]:
    fields, always = {}, {}
    for p in params:
        if p["name"] == "wait":
            always["wait"] = WAITS
        elif p["in"] == "query":
            schema = p.get("schema", {})
            fields[p["name"]] = st.one_of(_schema_values(schema).map(str), st.text(max_size=100))
    return st.fixed_dictionaries(always, optional=fields)


def _body(op: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[bytes]:
    content = op.get("requestBody", {}).get("content", {})
    garbage = st.binary(max_size=512)
    if "application/json" in content:
        schema = _inline(content["application/json"].get("schema", {}), components)
        as_json = st.one_of(_schema_values(schema), JSON_VALUES).map(
            lambda v: json.dumps(v).encode()
        )
        return st.one_of(as_json, as_json, garbage)
    if content:
        return garbage
    return st.one_of(st.just(b""), JSON_VALUES.map(lambda v: json.dumps(v).encode()))


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_fuzzed_requests_get_no_5xx_and_every_refusal_explains_itself(
    live: dict[str, Any], method: str, path: str, data: st.DataObject
) -> None:
    components = live["doc"]["components"]["schemas"]
    op = live["doc"]["paths"][path][method.lower()]
    params = op.get("parameters", [])
    target = path
    for p in params:
        if p["in"] == "path":
            value = data.draw(_path_value(p["name"], p.get("schema", {}), live["known"]))
            target = target.replace("{" + p["name"] + "}", value)
    query = data.draw(_query_values(params))
    body = data.draw(_body(op, components))
    scheme = next(iter(op["security"][0]), None) if op.get("security") else None
    right = live["secret"] if scheme == "workerSecret" else TOKEN
    credential = data.draw(st.sampled_from([right, right, right, None, "wrong"]))
    headers = {"Content-Type": "application/json"} if body else {}
    if scheme is not None and credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    resp = requests.request(
        method, live["url"] + target, params=query, data=body, headers=headers, timeout=30
    )
    what = f"{method} {target} {query} {body[:200]!r}: {resp.status_code} {resp.text[:300]}"
    assert resp.status_code < 500, what
    # and the answer is one the document describes, field by field
    media = resp.headers.get("Content-Type", "").partition(";")[0]
    json_body = resp.content if media == "application/json" else None
    check_response(method, target, resp.status_code, media, json_body)
    if scheme is not None and credential != right:
        assert resp.status_code == 401, what
    if resp.status_code >= 400:
        error = resp.json()
        assert isinstance(error, dict) and isinstance(error.get("error"), str), what
        assert error["error"].strip(), what


def test_the_fuzz_covers_every_api_route() -> None:
    """Routes added since are fuzzed too: the document lists every one (test_openapi)."""
    fuzzed = set(OPERATIONS) | SKIP
    app = create_app(AppConfig(farm=FarmConfig(data_dir=Path("/nonexistent"), name="x", token="t")))
    served = set(api_routes(app))
    assert served <= fuzzed, served - fuzzed


# ============================================ names and paths from clients
BAD_OUTPUT_NAMES = [
    "..",
    ".",
    ".hidden.png",
    "../escape.png",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b.png",
    "a\\b.png",
    "nul\x00byte.png",
    "C:evil.png",
    "x" * 300 + ".png",
    "trailing-dot.",
    "trailing-space ",
    "new\nline.png",
]


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", BAD_OUTPUT_NAMES, ids=repr)
async def test_hostile_output_names_are_refused_and_nothing_is_written(
    client: Client, tmp_path: Path, name: str
) -> None:
    worker = await register(client)
    await submit_render(client, str(tmp_path / "out" / "frame_####"))
    task = await claim(client, worker)
    assert task is not None
    before = _files_under(tmp_path)
    resp = await client.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/{quote(name, safe='')}",
        data=b"\x89PNG not really",
        headers=worker,
    )
    assert resp.status in (400, 404), await resp.text()
    assert (await resp.json())["error"]
    assert _files_under(tmp_path) == before  # not in the store, not outside it
    assert list((tmp_path / "farm" / "tmp").iterdir()) == []


async def test_a_wrong_checksum_is_refused_and_nothing_is_kept(
    client: Client, tmp_path: Path
) -> None:
    worker = await register(client)
    job = await submit_render(client, str(tmp_path / "out" / "frame_####"))
    task = await claim(client, worker)
    assert task is not None
    resp = await client.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/frame_0001.png?frame=1&sha256={'0' * 64}",
        data=b"these bytes hash to something else",
        headers=worker,
    )
    assert resp.status == 400
    assert "does not match its hash" in (await resp.json())["error"]
    outputs = await (await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)).json()
    assert outputs["outputs"] == []
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "farm" / "tmp").iterdir()) == []
    blobs = _files_under(tmp_path / "farm" / "files")
    resp = await client.put(f"{API}/files/{'0' * 64}", data=b"not zeros", headers=AUTH)
    assert resp.status == 400
    assert "does not match its hash" in (await resp.json())["error"]
    assert _files_under(tmp_path / "farm" / "files") == blobs


async def test_an_output_bigger_than_allowed_is_a_413_and_leaves_nothing(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = AppConfig(
        farm=FarmConfig(data_dir=tmp_path / "farm", name="t", token=TOKEN, max_upload=4096)
    )
    small: Client = await aiohttp_client(create_app(config))
    worker = await register(small)
    await submit_render(small, str(tmp_path / "out" / "frame_####"))
    task = await claim(small, worker)
    assert task is not None
    resp = await small.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/frame_0001.png",
        data=b"x" * 100_000,
        headers=worker,
    )
    assert resp.status == 413
    assert "limit" in (await resp.json())["error"]
    assert list((tmp_path / "farm" / "tmp").iterdir()) == []
    assert not (tmp_path / "farm" / "jobs" / "1" / "outputs").exists()


BAD_RELPATHS = [
    "../shot.blend",
    "a/../../shot.blend",
    "/etc/shot.blend",
    "C:/shot.blend",
    "c:shot.blend",
    "a\\..\\shot.blend",
    "nul\x00.blend",
    "./shot.blend",
    "a//shot.blend",
    "",
    "x" * 256 + ".blend",
    "a/" * 2100 + "shot.blend",
]


@pytest.mark.parametrize("relpath", BAD_RELPATHS, ids=lambda r: repr(r)[:40])
async def test_hostile_project_paths_are_refused_with_a_message(
    client: Client, relpath: str
) -> None:
    blob = await upload_blob(client, b"BLENDER-v304 project file")
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={
            "name": "escape",
            "type": "blender-render",
            "blend": relpath,
            "files": {relpath: blob},
            "settings": {"frames": "1", "output": "/tmp/out/f_####"},
        },
    )
    assert resp.status == 400, await resp.text()
    error = await resp.json()
    assert "project path" in error["error"] or error.get("field") in ("files", "blend"), error
    jobs = await (await client.get(f"{API}/jobs", headers=AUTH)).json()
    assert jobs["jobs"] == []


@pytest.mark.parametrize("relpath", BAD_RELPATHS, ids=lambda r: repr(r)[:40])
def test_the_worker_refuses_the_same_project_paths(tmp_path: Path, relpath: str) -> None:
    """A coordinator is trusted, but not blindly: the worker checks paths again."""
    cache = BlobCache(tmp_path / "cache")
    digest = _cached_blob(cache, b"BLENDER-v304 project file")
    with pytest.raises((CacheError, OSError)):  # refused, or too long for the filesystem
        cache.materialize(_no_client(), {relpath: digest}, tmp_path / "w" / "project")
    assert _files_under(tmp_path / "w") <= {"project"}
    with pytest.raises(Exception, match="project path"):
        check_relpath(relpath)


def _no_client() -> Any:
    """Materializing from the cache only; any download would be a test bug."""

    class NoClient:
        def download_file(self, sha: str, dest: Path) -> None:
            raise AssertionError(f"unexpected download of {sha}")

    return NoClient()


def _cached_blob(cache: BlobCache, data: bytes) -> str:
    digest = sha(data)
    path = cache.path(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def test_the_worker_cache_never_writes_through_a_symlinked_folder(tmp_path: Path) -> None:
    """A symlink planted in a job's project folder (by an earlier render, say) must
    not carry the next job's files out of it."""
    cache = BlobCache(tmp_path / "cache")
    digest = _cached_blob(cache, b"texture bytes")
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (project / "textures").symlink_to(outside)
    with pytest.raises(CacheError, match="symbolic link"):
        cache.materialize(_no_client(), {"textures/wood.png": digest}, project)
    assert list(outside.iterdir()) == []


def test_the_worker_cache_replaces_a_symlink_at_a_files_place(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    digest = _cached_blob(cache, b"the real .blend")
    project, victim = tmp_path / "project", tmp_path / "victim.txt"
    project.mkdir()
    victim.write_bytes(b"precious")
    (project / "shot.blend").symlink_to(victim)
    cache.materialize(_no_client(), {"shot.blend": digest}, project)
    assert victim.read_bytes() == b"precious"
    assert not (project / "shot.blend").is_symlink()
    assert (project / "shot.blend").read_bytes() == b"the real .blend"


@pytest.mark.parametrize("overwrite", [True, False])
def test_delivery_never_writes_through_a_symlink_at_the_frame_name(
    tmp_path: Path, overwrite: bool
) -> None:
    source = tmp_path / "store" / "frame_0001.png"
    source.parent.mkdir()
    source.write_bytes(b"the rendered frame")
    victim, folder = tmp_path / "victim.txt", tmp_path / "out"
    victim.write_bytes(b"precious")
    folder.mkdir()
    (folder / "frame_0001.png").symlink_to(victim)
    result = deliver(source, sha256_file(source), folder / "frame_0001.png", overwrite=overwrite)
    assert victim.read_bytes() == b"precious"
    if overwrite:  # the link is replaced by the frame, atomically
        assert result.path == str(folder / "frame_0001.png"), result
        assert not (folder / "frame_0001.png").is_symlink()
        assert (folder / "frame_0001.png").read_bytes() == b"the rendered frame"
    else:
        assert result.path is None and "overwrite is off" in result.note
    assert sorted(os.listdir(folder)) == ["frame_0001.png"]  # no temp file left


def test_delivery_replaces_a_dangling_symlink_and_a_symlinked_folder_is_not_followed(
    tmp_path: Path,
) -> None:
    source = tmp_path / "frame"
    source.write_bytes(b"frame")
    folder, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "frame_0001.png").symlink_to(tmp_path / "does-not-exist" / "x")
    (folder / "frame_0002.png").symlink_to(elsewhere)
    for n in (1, 2):
        dest = folder / f"frame_000{n}.png"
        result = deliver(source, sha256_file(source), dest, overwrite=True)
        assert result.path == str(dest), result
        assert dest.read_bytes() == b"frame" and not dest.is_symlink()
    assert not (tmp_path / "does-not-exist").exists()
    assert list(elsewhere.iterdir()) == []


# ============================================== worker secrets, task by task
async def test_worker_routes_act_only_on_the_task_that_worker_holds(client: Client) -> None:
    """Every /worker/tasks/{task_id}/... route, found in the route table: another
    worker's secret, or the right worker on a task it does not hold, is refused
    (the control poll answers "stop"), and nothing changes."""
    owner, other = await register(client, "owner"), await register(client, "other")
    job = await submit_sleep(client, count=2)
    held = await claim(client, owner)
    assert held is not None
    queued = next(t for t in (await get_job(client, job["id"]))["tasks"] if t["status"] == "queued")
    routes = [r for r in api_routes(app_of(client)) if r[1].startswith(f"{API}/worker/tasks/")]
    assert len(routes) >= 6
    cases = [(other, held["task_id"]), (owner, queued["id"]), (owner, 999_999)]
    for method, template in routes:
        for secret, task_id in cases:
            path = concrete(template, task_id=str(task_id))
            body = {"reason": "x"} if path.endswith("/fail") else {}
            kwargs: dict[str, Any] = (
                {"data": b"x"} if method == "PUT" else ({"json": body} if method == "POST" else {})
            )
            resp = await client.request(method, f"{path}?wait=0", headers=secret, **kwargs)
            what = f"{method} {path} as {secret['X-Worker-Id'][:8]}"
            if path.endswith("/control"):
                assert resp.status == 200 and (await resp.json())["action"] == "stop", what
            else:
                assert resp.status in (404, 409), f"{what}: {resp.status}"
                assert (await resp.json())["error"], what
    after = await get_job(client, job["id"])
    assert sorted(t["status"] for t in after["tasks"]) == ["active", "queued"]
    assert all(t["progress"] == 0 for t in after["tasks"])
    farm = farm_of(client)
    assert farm.deliveries.outputs(job["id"]) == []


async def test_a_secret_stops_working_for_a_task_once_it_is_taken_away(
    client: Client,
) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(f"{API}/tasks/{task['task_id']}/requeue", headers=AUTH, json={})
    assert resp.status in (200, 409), await resp.text()
    if resp.status == 409:  # an active task cannot be requeued here: let the lease run out
        farm_of(client).sweeps.sweep(now=time.time() + 3600)
    for action in ("update", "complete"):
        resp = await client.post(
            f"{API}/worker/tasks/{task['task_id']}/{action}", headers=worker, json={}
        )
        assert resp.status == 409, action
        assert "no longer" in (await resp.json())["error"]
