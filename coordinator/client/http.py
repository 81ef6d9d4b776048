"""The one HTTP client of the farm, for the CLI, the worker agent and the add-on.

Plain `requests`, no asyncio, no bpy. Errors come back as `FarmClientError`
subclasses whose message is the coordinator's own explanation, ready to show
to a person.

At an https:// address, a client holding a token first has the coordinator
prove it knows that token for the certificate it shows
(coordinator.client.pinning), and then talks only to that certificate; at an
http:// one, it sends a token only to this machine, unless `plain_http` (or
FARM_ALLOW_PLAIN_HTTP=1) allows more. A farm found by discovery gets
plain_http=False: whoever answers there must prove itself over TLS.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import requests

from coordinator.client import pinning
from coordinator.core.hashing import sha256_file
from coordinator.core.protocol import API_PREFIX, Assignment

JSON = dict[str, Any]
Progress = Callable[[int, int], None]  # (bytes done, bytes total)
CHUNK = 1 << 20


class FarmClientError(Exception):
    """The coordinator refused, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Unreachable(FarmClientError):
    """No coordinator answered at that address."""


class AuthError(FarmClientError):
    """Wrong or missing token (401)."""


class NotProvenError(AuthError):
    """The server did not prove it knows the token: nothing secret was sent to it."""


class PlainHttpRefused(FarmClientError):
    """A token would have crossed the network in clear."""


class NotFoundError(FarmClientError):
    """404."""


class ConflictError(FarmClientError):
    """409: the resource's state forbids it; for a worker, its lease is gone."""


@dataclass(frozen=True)
class WorkerCredentials:
    worker_id: str  # the coordinator's id for this worker
    secret: str  # its secret; sent as the Bearer token on worker routes
    lease_seconds: float  # report at least this often while rendering


class _Upload:
    """A file-like body that reports progress as requests reads it."""

    def __init__(self, f: BinaryIO, total: int, progress: Progress | None) -> None:
        self._f, self._total, self._done, self._progress = f, total, 0, progress

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(CHUNK if size is None or size < 0 else min(size, CHUNK))
        self._done += len(data)
        if self._progress is not None and data:
            self._progress(self._done, self._total)
        return data

    def __len__(self) -> int:
        return self._total


class FarmClient:
    """The farm's API; a token goes only where `_secure` allows (module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 15.0,
        session: requests.Session | None = None,
        plain_http: bool | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.plain_http = plain_http  # None: loopback only; False: never; True: anywhere
        self.session = session or requests.Session()
        # Never route loopback or LAN farm traffic through a proxy from the environment.
        self.session.trust_env = False

    def with_token(self, token: str) -> FarmClient:
        return FarmClient(
            self.url,
            token=token,
            timeout=self.timeout,
            session=self.session,
            plain_http=self.plain_http,
        )

    # ------------------------------------------------------------ plumbing
    def prove(self) -> str:
        """Have the coordinator prove it knows this client's token; the certificate's
        fingerprint, pinned from now on. NotProvenError: it is not the farm."""
        return _prove(self)

    def _request(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        _secure(self)
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = self.session.request(
                method,
                f"{self.url}{API_PREFIX}{path}",
                headers=headers,
                timeout=timeout or self.timeout,
                **kwargs,
            )
        except requests.exceptions.SSLError as ex:
            pinning.forget(self.url)  # proven again before the next request
            raise Unreachable(
                f"the coordinator at {self.url} did not show the certificate that proved"
                " itself (a new one, or another server); it must prove itself again"
            ) from ex
        except requests.ConnectionError as ex:
            raise Unreachable(
                f"cannot reach the coordinator at {self.url}: is it running,"
                " and is the address right?"
            ) from ex
        except requests.Timeout as ex:
            raise Unreachable(f"the coordinator at {self.url} did not answer in time") from ex
        if resp.status_code >= 400:
            raise _error_for(resp)
        return resp

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._request(method, path, **kwargs)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as ex:
            raise FarmClientError(
                f"{self.url} did not answer with JSON; is it a farm coordinator?",
                status=resp.status_code,
            ) from ex

    # ------------------------------------------------------------- meta
    def health(self) -> JSON:
        result: JSON = self._json("GET", "/health", timeout=min(self.timeout, 5.0))
        return result

    def version(self) -> JSON:
        result: JSON = self._json("GET", "/version")
        return result

    def job_types(self) -> list[JSON]:
        result: list[JSON] = self._json("GET", "/job-types")["job_types"]
        return result

    def openapi(self) -> JSON:
        result: JSON = self._json("GET", "/openapi.json")
        return result

    # ------------------------------------------------------------ files
    def missing(self, hashes: list[str]) -> list[str]:
        result: list[str] = self._json("POST", "/files/missing", json={"hashes": hashes})["missing"]
        return result

    def upload_file(self, sha: str, path: Path, *, progress: Progress | None = None) -> None:
        size = path.stat().st_size
        with path.open("rb") as f:
            self._request(
                "PUT",
                f"/files/{sha}",
                data=_Upload(f, size, progress),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                timeout=max(self.timeout, 300),
            )

    def upload_project(
        self, files: Mapping[str, Path], *, progress: Progress | None = None
    ) -> tuple[dict[str, str], int]:
        """Upload what the coordinator lacks of a project; returns (relpath -> sha, bytes sent)."""
        hashes = {rel: sha256_file(path) for rel, path in files.items()}
        missing = set(self.missing(sorted(set(hashes.values()))))
        todo = {sha: files[rel] for rel, sha in hashes.items() if sha in missing}
        total, done = sum(p.stat().st_size for p in todo.values()), 0
        for sha, path in todo.items():
            base = done

            def report(n: int, _total: int, base: int = base) -> None:
                if progress is not None:
                    progress(base + n, total)

            self.upload_file(sha, path, progress=report)
            done += path.stat().st_size
        return hashes, total

    def download_file(
        self,
        sha: str,
        dest: Path,
        *,
        max_bytes: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """A project file, verified against sha. max_bytes: refuse a longer body;
        stop: checked between blocks, a True abandons the download (FarmClientError)."""
        _download(self, f"/files/{sha}", dest, sha=sha, max_bytes=max_bytes, stop=stop)

    def _download(self, path: str, dest: Path, *, sha: str | None) -> None:
        _download(self, path, dest, sha=sha)

    # ------------------------------------------------------------- jobs
    def submit(self, body: JSON) -> JSON:
        result: JSON = self._json("POST", "/jobs", json=body)
        return result

    def jobs(self, **filters: Any) -> JSON:
        """A page of jobs: status, type (comma lists or lists), name, submitter (text
        or glob, any case), after, before (date or epoch), sort, limit, offset."""
        params = {
            k: ",".join(map(str, v)) if isinstance(v, list | tuple | set) else v
            for k, v in filters.items()
            if v not in (None, "")
        }
        result: JSON = self._json("GET", "/jobs", params=params)
        return result

    def job(self, job_id: int, *, tasks: bool = True, all_generations: bool = False) -> JSON:
        """The job; with tasks, its current tasks (all_generations: earlier ones too)."""
        which = "all" if tasks and all_generations else int(tasks)
        result: JSON = self._json("GET", f"/jobs/{job_id}", params={"tasks": which})
        return result

    def tasks(
        self,
        job_id: int,
        *,
        status: str | None = None,
        offset: int = 0,
        limit: int = 100,
        all_generations: bool = False,
    ) -> JSON:
        """A page of the job's tasks: {"tasks", "total", "limit", "offset"};
        status is comma-separated (failed,canceled)."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if status:
            params["status"] = status
        if all_generations:
            params["generation"] = "all"
        result: JSON = self._json("GET", f"/jobs/{job_id}/tasks", params=params)
        return result

    def job_action(self, job_id: int, action: str, body: JSON | None = None) -> JSON:
        result: JSON = self._json("POST", f"/jobs/{job_id}/{action}", json=body or {})
        return result

    def delete_job(self, job_id: int) -> None:
        self._json("DELETE", f"/jobs/{job_id}")

    # A person's actions. Each returns the job, task or worker afterwards; one
    # that does not apply raises ConflictError whose message says why.
    def cancel_job(self, job_id: int) -> JSON:
        return self.job_action(job_id, "cancel")

    def pause_job(self, job_id: int) -> JSON:
        return self.job_action(job_id, "pause")

    def resume_job(self, job_id: int) -> JSON:
        return self.job_action(job_id, "resume")

    def requeue_job(self, job_id: int, *, which: str = "failed") -> JSON:
        """which: "failed" (failed and canceled tasks) or "all" (finished ones too)."""
        return self.job_action(job_id, "requeue", {"which": which})

    def regenerate_job(
        self, job_id: int, settings: Mapping[str, Any] | None = None, *, keep_completed: bool = True
    ) -> JSON:
        """Recompile the job's tasks with `settings` changed (the rest stay as they are).

        Finished frames the new tasks would render the same way are kept unless
        keep_completed is False. The answer's "regenerated" says how many tasks
        there are now, how many were kept and how many running ones were stopped.
        """
        body = {"settings": dict(settings or {}), "keep_completed": keep_completed}
        return self.job_action(job_id, "regenerate", body)

    def set_priority(self, job_id: int, priority: int) -> JSON:
        return self.job_action(job_id, "priority", {"priority": priority})

    def clear_blocklist(self, job_id: int, *, worker_id: str | None = None) -> JSON:
        body = {} if worker_id is None else {"worker_id": worker_id}
        return self.job_action(job_id, "clear-blocklist", body)

    def requeue_task(self, task_id: int) -> JSON:
        result: JSON = self._json("POST", f"/tasks/{task_id}/requeue", json={})
        return result

    def cancel_task(self, task_id: int) -> JSON:
        result: JSON = self._json("POST", f"/tasks/{task_id}/cancel", json={})
        return result

    def worker(self, worker_id: str) -> JSON:
        result: JSON = self._json("GET", f"/workers/{quote(worker_id, safe='')}")
        return result

    def disable_worker(self, worker_id: str, *, now: bool = False) -> JSON:
        """No new tasks for it; its task finishes first, or with now goes back to the queue."""
        result: JSON = self._json(
            "POST", f"/workers/{quote(worker_id, safe='')}/disable", json={"now": now}
        )
        return result

    def set_worker_tags(self, worker_id: str, tags: list[str]) -> JSON:
        """Replace the worker's tags (its pools)."""
        path = f"/workers/{quote(worker_id, safe='')}/tags"
        result: JSON = self._json("PUT", path, json={"tags": tags})
        return result

    def enable_worker(self, worker_id: str) -> JSON:
        result: JSON = self._json("POST", f"/workers/{quote(worker_id, safe='')}/enable", json={})
        return result

    def remove_worker(self, worker_id: str) -> None:
        """Forget an offline worker (an online one is refused)."""
        self._json("DELETE", f"/workers/{quote(worker_id, safe='')}")

    def task(self, task_id: int) -> JSON:
        result: JSON = self._json("GET", f"/tasks/{task_id}")
        return result

    def task_log(self, task_id: int, *, tail: int = 65536) -> str:
        return self._request("GET", f"/tasks/{task_id}/log", params={"tail": tail}).text

    def outputs(self, job_id: int) -> list[JSON]:
        result: list[JSON] = self._json("GET", f"/jobs/{job_id}/outputs")["outputs"]
        return result

    def download_output(self, job_id: int, output: Mapping[str, Any], dest: Path) -> None:
        self._download(
            f"/jobs/{job_id}/outputs/{quote(output['name'])}", dest, sha=output["sha256"]
        )

    def workers(self) -> list[JSON]:
        result: list[JSON] = self._json("GET", "/workers")["workers"]
        return result

    def events(self, *, timeout: float = 60.0) -> Iterator[JSON]:
        """Server-sent events as dicts, until the connection ends."""
        resp = self._request("GET", "/events", stream=True, timeout=timeout)
        for line in resp.iter_lines(decode_unicode=True):
            if line and line.startswith("data: "):
                yield json.loads(line[6:])

    # ---------------------------------------------------- the worker's side
    def register_worker(
        self,
        *,
        name: str,
        host: str,
        blender_version: str,
        devices: list[str],
        tags: list[str] | None = None,
        capabilities: Mapping[str, Any] | None = None,
    ) -> WorkerCredentials:
        data = self._json(
            "POST",
            "/workers",
            json={
                "name": name,
                "host": host,
                "blender_version": blender_version,
                "devices": devices,
                "tags": tags or [],
                "capabilities": dict(capabilities or {}),
            },
        )
        return WorkerCredentials(
            worker_id=data["worker_id"],
            secret=data["secret"],
            lease_seconds=float(data["lease_seconds"]),
        )

    def upcoming(self, *, warm_job: int | None = None) -> JSON:
        """The job this worker would most likely get next, with its files unless it is
        warm_job (models.Upcoming). Untrusted: the caller checks every field."""
        params = {"warm_job": warm_job} if warm_job is not None else None
        result: JSON = self._json("GET", "/worker/upcoming", params=params)
        return result

    def next_task(self, *, wait: float, warm_job: int | None = None) -> Assignment | None:
        body = {"warm_job": warm_job} if warm_job is not None else None
        data = self._json(
            "POST", "/worker/task", params={"wait": wait}, json=body, timeout=wait + 15
        )
        return None if data is None else Assignment.from_json(data)

    def update_task(
        self,
        task_id: int,
        *,
        progress: float | None = None,
        activity: str | None = None,
        log: str | None = None,
        stages: dict[str, float] | None = None,
    ) -> None:
        pairs = (("progress", progress), ("activity", activity), ("log", log), ("stages", stages))
        body = {k: v for k, v in pairs if v is not None}
        self._json("POST", f"/worker/tasks/{task_id}/update", json=body)

    def control(self, task_id: int, *, wait: float) -> tuple[str, str | None]:
        data = self._json(
            "GET", f"/worker/tasks/{task_id}/control", params={"wait": wait}, timeout=wait + 15
        )
        return data["action"], data.get("reason")

    def upload_output(self, task_id: int, path: Path, *, name: str, frame: int | None) -> JSON:
        sha = sha256_file(path)
        params: dict[str, Any] = {"sha256": sha}
        if frame is not None:
            params["frame"] = frame
        with path.open("rb") as f:
            result: JSON = self._json(
                "PUT",
                f"/worker/tasks/{task_id}/outputs/{quote(name)}",
                params=params,
                data=_Upload(f, path.stat().st_size, None),
                headers={"Content-Type": "application/octet-stream"},
                timeout=max(self.timeout, 300),
            )
        return result

    def download_input(self, task_id: int, name: str, sha: str, dest: Path) -> None:
        """One of the held task's `inputs` (Assignment.inputs), verified against sha."""
        self._download(f"/worker/tasks/{task_id}/inputs/{quote(name)}", dest, sha=sha)

    def complete_task(
        self, task_id: int, *, claim_next: bool = False, warm_job: int | None = None
    ) -> Assignment | None:
        """Report the task done; with claim_next, also take the next runnable task, if any
        (warm_job: the job whose scene this worker's Blender holds, preferred)."""
        body: dict[str, object] = {"next": True} if claim_next else {}
        if claim_next and warm_job is not None:
            body["warm_job"] = warm_job
        data = self._json("POST", f"/worker/tasks/{task_id}/complete", json=body)
        following = (data or {}).get("next")
        return Assignment.from_json(following) if following else None

    def fail_task(
        self, task_id: int, *, reason: str, log: str = "", job_fault: bool = False
    ) -> JSON:
        return _fail(self, task_id, {"reason": reason, "log": log}, job_fault=job_fault)

    def sign_off(self) -> None:
        self._json("POST", "/worker/sign-off", json={})

    def report_worker(self, report: Mapping[str, Any]) -> None:  # models.WorkerReport
        self._json("POST", "/worker/report", json=dict(report))

    def rest(self, until: float) -> None:
        """Outside its working hours until `until` (Unix time); said again while resting."""
        self._json("POST", "/worker/rest", json={"until": until})


def _fail(client: FarmClient, task_id: int, body: dict[str, Any], *, job_fault: bool) -> JSON:
    """A fail report. job_fault (models.FailRequest): every worker would meet the same,
    so the task fails at once. A coordinator older than the field refuses it (400
    naming it): the plain report goes instead, and the task is retried as before."""
    path = f"/worker/tasks/{task_id}/fail"
    if job_fault:
        try:
            answer: JSON = client._json("POST", path, json={**body, "job_fault": True})
            return answer
        except FarmClientError as ex:
            if ex.status != 400 or "job_fault" not in ex.message:
                raise
    result: JSON = client._json("POST", path, json=body)
    return result


def _download(
    client: FarmClient,
    path: str,
    dest: Path,
    *,
    sha: str | None,
    max_bytes: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> None:
    """Stream to a temp file next to dest, verify, then rename into place."""
    resp = client._request("GET", path, stream=True, timeout=max(client.timeout, 300))
    dest.parent.mkdir(parents=True, exist_ok=True)
    # pid and thread: a worker may fetch the same file ahead of time and for its task
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            try:
                for block in resp.iter_content(CHUNK):
                    size += len(block)
                    if max_bytes is not None and size > max_bytes:
                        raise FarmClientError(
                            f"download of {path} is longer than {max_bytes} bytes"
                        )
                    if stop is not None and stop():
                        raise FarmClientError(f"download of {path} abandoned")
                    digest.update(block)
                    out.write(block)
            except requests.RequestException as ex:  # cut off mid-body: try again later
                raise Unreachable(f"the download of {path} from {client.url} broke off") from ex
            finally:
                resp.close()
        if sha is not None and digest.hexdigest() != sha:
            raise FarmClientError(f"download of {path} is corrupt (sha256 mismatch)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _prove(client: FarmClient) -> str:
    if not client.token or not client.url.startswith("https://"):
        raise FarmClientError(f"{client.url}: a proof needs a token and an https:// address")
    try:
        fingerprint = pinning.prove(client.url, client.token, timeout=min(client.timeout, 10.0))
    except pinning.NotProven as ex:
        raise NotProvenError(str(ex), status=401) from ex
    except pinning.NoTls as ex:
        raise Unreachable(f"cannot reach the coordinator at {client.url}: {ex}") from ex
    pinning.pin(client.session, client.url, fingerprint)
    return fingerprint


def _secure(client: FarmClient) -> None:
    """Nothing leaves before the other end is known to be the farm, or the
    request carries nothing secret."""
    url = client.url
    if url.startswith("https://"):
        fingerprint = pinning.proven(url, client.token)
        if fingerprint is None and client.token:
            _prove(client)
            return
        if fingerprint is None:  # no token to send: whichever certificate it shows
            try:
                fingerprint = pinning.peer_fingerprint(url, timeout=client.timeout)
            except pinning.NoTls as ex:
                raise Unreachable(f"cannot reach the coordinator at {url}: {ex}") from ex
        pinning.pin(client.session, url, fingerprint)
    elif client.token and not pinning.plain_allowed(url, client.plain_http):
        raise PlainHttpRefused(
            f"refusing to send the farm token to {url} over plain HTTP, where anyone"
            " on the network can read it: use the https:// address the coordinator"
            " prints, or set FARM_ALLOW_PLAIN_HTTP=1 if this network is yours alone"
        )


def _error_for(resp: requests.Response) -> FarmClientError:
    try:
        message = str(resp.json().get("error") or resp.reason)
    except ValueError:
        message = f"{resp.status_code} {resp.reason}"
    kinds: dict[int, type[FarmClientError]] = {
        401: AuthError,
        404: NotFoundError,
        409: ConflictError,
    }
    return kinds.get(resp.status_code, FarmClientError)(message, status=resp.status_code)
