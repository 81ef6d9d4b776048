"""Files ahead of time: while a task renders, fetch the next job's project files.

At the start of each task that uses project files the agent calls
`Prefetcher.task_started`; a background thread asks the coordinator which job
this worker would get next (GET /worker/upcoming, what a claim would give now)
and, when that is another job, downloads the files of it the cache lacks into
the cache (not into the job's folder: the task that needs them lays them out
as usual, and checks each against its sha256 again).

Bounds: one job ahead at most (a newer prediction waits for the current one,
and a task of a third job abandons it so that job's own files get the
bandwidth); only once the running task's own files are here; never more than
`max_bytes` for one job,
never leaving the cache's disk with less than `keep_free` bytes; each download
stops at the size the coordinator gave for it. Everything the coordinator
says is untrusted: names are checked as a task's are (core.names), hashes and
sizes for shape, and a job whose list fails a check is not fetched at all.
A prefetch is a hint: whatever goes wrong (a corrupt or cut download, an
unreachable coordinator, a full disk) is logged and forgotten, and never
fails a task.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.names import UnsafeNameError, check_relative_path
from worker_agent.cache import BlobCache, CacheError

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: no trailing newline
MAX_FILES = 100_000  # files in one job's list; more and the prediction is ignored
GIB = 1 << 30
NICE = 10  # the prefetch thread's CPU priority (hashing, writing): below the render's
OWN_FILES_WAIT = 600.0  # seconds a look ahead waits for the task's own files at most


@dataclass(frozen=True)
class PrefetchLimits:
    max_bytes: int = 20 * GIB  # the most fetched ahead for one job
    keep_free: int = 2 * GIB  # never leave the cache's disk with less free space


@dataclass(frozen=True)
class Plan:
    """What to fetch for one predicted job: sha -> size, all checked."""

    job_id: int
    missing: dict[str, int]


class Prefetcher:
    """One background thread that fetches the next job's files (module docstring)."""

    def __init__(self, cache: BlobCache, limits: PrefetchLimits) -> None:
        self.cache = cache
        self.limits = limits
        self._wake = threading.Condition()
        self._request: tuple[FarmClient, int, frozenset[str]] | None = None  # see task_started
        self._task_job: int | None = None  # the job of the task running now
        self._source_job: int | None = None  # the job whose task asked for the target
        self._target: int | None = None  # the job being fetched ahead now
        self._closing = False
        self._thread: threading.Thread | None = None
        self.fetched_jobs: list[int] = []  # jobs whose files were all fetched ahead (tests)

    def task_started(self, client: FarmClient, job_id: int, files: Mapping[str, str]) -> None:
        """A task of job_id began: once its files (relpath -> sha) are in the cache,
        look ahead (in the background) for the next job."""
        with self._wake:
            self._task_job = job_id
            self._request = (client, job_id, frozenset(files.values()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="prefetch", daemon=True)
                self._thread.start()
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5.0)

    def busy(self) -> bool:
        """Whether a look ahead is asked for or running (tests wait on it)."""
        with self._wake:
            return self._request is not None or self._target is not None

    # ----------------------------------------------------------- the thread
    def _loop(self) -> None:
        # Below the render: on Linux a thread has its own nice value (elsewhere this
        # would renice the whole worker, so it is left alone).
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        while True:
            with self._wake:
                while self._request is None and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                assert self._request is not None
                (client, job_id, needs), self._request = self._request, None
            try:
                if self._own_files_here(job_id, needs):
                    self._look_ahead(client, job_id)
            except Exception:  # a hint: nothing here may reach a task
                log.exception("prefetch: internal error (ignored)")
            finally:
                with self._wake:
                    self._target = self._source_job = None

    def _own_files_here(self, job_id: int, needs: frozenset[str]) -> bool:
        """Wait until the task's own files are in the cache (its fetch comes first);
        False when it ended or another task began meanwhile."""
        waiting, deadline = set(needs), time.monotonic() + OWN_FILES_WAIT
        while True:
            waiting = {sha for sha in waiting if not self.cache.has(sha)}
            if not waiting:
                return True
            if time.monotonic() > deadline:  # its fetch failed, or is very long
                return False
            with self._wake:
                if self._closing or self._request is not None or self._task_job != job_id:
                    return False
                self._wake.wait(0.2)

    def _look_ahead(self, client: FarmClient, job_id: int) -> None:
        try:
            answer = client.upcoming(warm_job=job_id)
        except FarmClientError as ex:
            log.debug("prefetch: could not ask which job comes next: %s", ex.message)
            return
        plan = self.plan(answer, current_job=job_id)
        if plan is None or not plan.missing:
            return
        with self._wake:
            self._target, self._source_job = plan.job_id, job_id
        total = sum(plan.missing.values())
        log.info(
            "prefetch: fetching %d file(s), %d bytes, of job %d (most likely next)",
            len(plan.missing),
            total,
            plan.job_id,
        )
        for sha, size in sorted(plan.missing.items()):
            if self._abandoned():
                log.info("prefetch of job %d abandoned: a task of another job began", plan.job_id)
                return
            try:
                self.cache.fetch(client, sha, max_bytes=size, stop=self._abandoned)
            except (FarmClientError, CacheError, OSError) as ex:
                log.info("prefetch of job %d stopped (its tasks fetch what is left): %s",
                         plan.job_id, getattr(ex, "message", ex))  # fmt: skip
                return
        self.fetched_jobs.append(plan.job_id)
        log.info("prefetch: job %d's files are here", plan.job_id)

    def _abandoned(self) -> bool:
        with self._wake:
            task = self._task_job
            return self._closing or task not in (self._target, self._source_job)

    def plan(self, answer: Any, *, current_job: int) -> Plan | None:
        """The files to fetch from a coordinator's answer, or None when there is nothing
        to do or the answer fails a check (said in the log)."""
        if not isinstance(answer, Mapping):
            return None
        job_id = answer.get("job_id")
        if job_id is None or job_id == current_job:
            return None
        try:
            files, sizes = _checked(answer)
        except ValueError as ex:
            log.warning("prefetch: ignoring the coordinator's next job %r: %s", job_id, ex)
            return None
        missing = {}
        for sha in sorted(set(files.values())):
            if sha in sizes and not self.cache.has(sha):
                missing[sha] = sizes[sha]
        total = sum(missing.values())
        if total > self.limits.max_bytes:
            log.info(
                "prefetch: job %d's files (%d bytes) exceed the prefetch limit (%d bytes);"
                " its tasks fetch them",
                job_id,
                total,
                self.limits.max_bytes,
            )
            return None
        if missing and self.cache.free_bytes() - total < self.limits.keep_free:
            log.info(
                "prefetch: job %d's files (%d bytes) would leave under %d bytes free;"
                " its tasks fetch them",
                job_id,
                total,
                self.limits.keep_free,
            )
            return None
        return Plan(job_id=int(job_id), missing=missing)


def _checked(answer: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, int]]:
    """files (relpath -> sha) and sizes (sha -> bytes), or ValueError saying what is wrong."""
    job_id, files, sizes = answer.get("job_id"), answer.get("files"), answer.get("sizes")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 1:
        raise ValueError("its job id is not a whole number from 1")
    if not isinstance(files, Mapping) or not isinstance(sizes, Mapping):
        raise ValueError("'files' and 'sizes' must be objects")
    if len(files) > MAX_FILES or len(sizes) > MAX_FILES:
        raise ValueError(f"more than {MAX_FILES} files")
    for relpath, sha in files.items():
        if not isinstance(relpath, str) or not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise ValueError(f"file {relpath!r} has no sha256 hash")
        try:
            check_relative_path(relpath, what="project path", allow_hidden=True)
        except UnsafeNameError as ex:
            raise ValueError(str(ex)) from ex
    for sha, size in sizes.items():
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise ValueError(f"size given for {sha!r}, which is not a sha256 hash")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 1 << 50:
            raise ValueError(f"the size of {sha[:12]} is not a number of bytes")
    return dict(files), dict(sizes)
