"""What the helper process does for the add-on: the network work. No `bpy` here.

Requests arrive on stdin as {"id", "kind", "args"}; each runs in a thread of
this process (outside Blender threads are harmless) and answers on stdout:

    {"id": N, "progress": {"stage", "fraction", "text"}}    while it works
    {"id": N, "ok": RESULT}  or  {"id": N, "error": TEXT}  or  {"id": N, "cancelled": TEXT}

plus news nobody asked for at that moment: {"event": "found", "farms": [...]}.
Errors are already in the artist's words (submitting.artist_message), the
same wording wherever the panel shows them. When stdin closes (Blender quit,
or crashed) the process ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coordinator.client.http import FarmClient, FarmClientError, NotFoundError

from . import local_farm, submitting
from .background import Channel, MsgProgress
from .origins import IDENTITIES
from .packing import Cancelled
from .sync import HashCache, JobRecords, Syncer

log = logging.getLogger(__name__)

JSON = dict[str, Any]
_out_lock = threading.Lock()
_announce_lock = threading.Lock()  # one farm list built and sent at a time
_cancels: dict[int, threading.Event] = {}  # request id of a submit -> its cancel switch
_hashes = HashCache()  # frames already home, hashed once per helper's life
_finder: Any = None  # finder.Finder, once asked to discover
_reach: dict[str, bool] = {}  # url -> whether its /health answered last time
PROBE_EVERY = 5.0  # seconds between reachability checks of the announced farms


def emit(message: JSON) -> None:
    data = (json.dumps(message) + "\n").encode("utf-8")
    with _out_lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


class _Forward(Channel):
    """A submit's progress, sent to the add-on as it happens."""

    def __init__(self, rid: int) -> None:
        super().__init__()
        self.rid = rid

    def post(self, msg: Any) -> None:
        if isinstance(msg, MsgProgress):
            emit({"id": self.rid, "progress": asdict(msg)})


def client_of(args: JSON, timeout: float = 5.0) -> FarmClient:
    return FarmClient(args["url"], token=args.get("token") or None, timeout=timeout)


def _submit(rid: int, args: JSON) -> JSON:
    sub = submitting.Submission.from_json(args)
    channel = _Forward(rid)
    # Registered by main() before this thread started: a cancel read right after
    # the submit finds it even if this thread has not run yet.
    channel.cancel = _cancels.setdefault(rid, threading.Event())
    try:
        job = submitting.run(sub, channel)
    finally:
        _cancels.pop(rid, None)
        shutil.rmtree(sub.pack_root, ignore_errors=True)
    return {"job": job, "text": submitting.done_text(job)}


def _cancel(_rid: int, args: JSON) -> JSON:
    switch = _cancels.get(int(args["target"]))
    if switch is not None:
        switch.set()
    return {}


def _jobs(_rid: int, args: JSON) -> JSON:
    """A page of the farm's jobs, and this file's origin on that farm ("" without a
    saved file). With `mine`, only this file's jobs: asked of the farm by origin,
    and checked here too, as a farm's answer is not to be trusted blindly."""
    client, blend, mine = client_of(args), str(args.get("blend") or ""), bool(args.get("mine"))
    origin = IDENTITIES.origin(client, blend) if blend else ""
    if mine and not origin:
        return {"jobs": [], "origin": "", "running": _running(client)}  # an unsaved file
    filters = {**args.get("filters", {}), **({"origin": origin} if mine else {})}
    page = client.jobs(limit=100, **filters)
    if not isinstance(page, dict) or not isinstance(page.get("jobs"), list):
        raise FarmClientError(f"{args['url']} answered, but not as a farm coordinator does")
    jobs = [j for j in page["jobs"] if isinstance(j, dict)]
    if mine:
        jobs = [j for j in jobs if j.get("origin") == origin]
    return {"jobs": jobs, "origin": origin, "running": _running(client)}


def _running(client: FarmClient) -> int | None:
    """How many of the farm's jobs (anyone's) are queued or rendering: Stop Farm
    asks first when there are any. None: the farm did not say."""
    total = client.jobs(status="queued,active", limit=1).get("total")
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _job_types(_rid: int, args: JSON) -> JSON:
    types = client_of(args).job_types()
    if not isinstance(types, list):
        raise FarmClientError(f"{args['url']} answered, but not as a farm coordinator does")
    return {"types": types}


def _action(_rid: int, args: JSON) -> JSON:
    client, job_id, action = client_of(args), int(args["job_id"]), args["action"]
    if action == "requeue":
        client.job_action(job_id, "requeue", {"which": "failed"})
    elif action == "regenerate":
        try:
            client.regenerate_job(job_id, keep_completed=False)
        except NotFoundError:  # a coordinator from before the regenerate route
            client.job_action(job_id, "requeue", {"which": "all"})
    else:
        client.job_action(job_id, action)
    return {"text": f"Job {job_id}: {args.get('done', action + ' done')}"}


def _farm_start(_rid: int, args: JSON) -> JSON:
    root = Path(args["root"])
    state = local_farm.start_coordinator(
        root,
        python=args["python"],
        pythonpath=args["pythonpath"],
        name=args["name"],
        lan=args["lan"],
        zeroconf_interfaces=args.get("interfaces"),
    )
    if args.get("worker"):
        local_farm.start_worker(
            root,
            python=args["python"],
            pythonpath=args["pythonpath"],
            url=state.url,
            token=state.token,
            name=f"{args['name']} (local)",
            blender=args.get("blender", ""),
            bpy_python=args.get("bpy_python", ""),
        )
    return {"text": f"Farm running at {state.url}"}


def _farm_stop(_rid: int, args: JSON) -> JSON:
    root = Path(args["root"])
    stopped = local_farm.stop(root, local_farm.WORKER)
    if args.get("which") == "ALL":
        stopped = local_farm.stop(root, local_farm.COORDINATOR) or stopped
    return {"text": "Stopped" if stopped else "Nothing was running"}


def _discover(_rid: int, args: JSON) -> JSON:
    global _finder
    from .finder import Finder

    if _finder is None:
        _finder = Finder(on_change=_announce)
        threading.Thread(target=_probe_loop, name="farm-probe", daemon=True).start()
    _finder.start(online=bool(args.get("online", True)), interfaces=args.get("interfaces"))
    _announce()
    return {"error": _finder.error}


def _announce() -> None:
    """Sends the farm list as it is now. The knocks, zeroconf and the probe each
    call this from their own thread: built and sent under one lock, a list
    built later is also sent later, so the panel never ends on an older one."""
    if _finder is None:
        return
    mine = _local_addresses()  # this computer's, not the list's: may be slow, outside the lock
    with _announce_lock:
        farms = [
            {
                **asdict(c),
                "here": bool(set(c.addresses or (c.host,)) & mine),
                "reachable": _reach.get(c.url),
            }
            for c in _finder.entries()
        ]
        emit({"event": "found", "farms": farms})


def _probe_loop() -> None:
    """Whether each announced farm answers: an unreachable one is shown as such."""
    while True:
        entries = _finder.entries() if _finder is not None else []
        changed = False
        for found in entries:
            try:
                FarmClient(found.url, timeout=2.0).health()
                ok = True
            except FarmClientError:
                ok = False
            changed = changed or _reach.get(found.url) != ok
            _reach[found.url] = ok
        if changed:
            _announce()
        time.sleep(PROBE_EVERY)


def _local_addresses() -> set[str]:
    found = {"127.0.0.1", "::1"}
    with contextlib.suppress(ImportError, OSError):
        import ifaddr

        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                found.add(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    with contextlib.suppress(OSError):
        found.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return found


def _sync(_rid: int, args: JSON) -> JSON:
    tokens: dict[str, str] = args.get("tokens", {})
    records = JobRecords(Path(args["records"]))
    syncer = Syncer(records, lambda url: tokens.get(url, ""), cache=_hashes)
    syncer.blends = set(args.get("blends", []))
    syncer.run_once()
    return {"status": {str(k): v for k, v in syncer.status.items()}}


HANDLERS: dict[str, Callable[[int, JSON], JSON]] = {
    "submit": _submit,
    "cancel": _cancel,
    "jobs": _jobs,
    "job_types": _job_types,
    "action": _action,
    "farm_start": _farm_start,
    "farm_stop": _farm_stop,
    "discover": _discover,
    "sync": _sync,
}


def answer(rid: int, kind: str, args: JSON) -> JSON:
    """The final message of one request, whatever happened."""
    try:
        return {"id": rid, "ok": HANDLERS[kind](rid, args)}
    except Cancelled:
        return {"id": rid, "cancelled": "Submission cancelled; nothing was sent to the farm"}
    except local_farm.LocalFarmError as ex:
        return {"id": rid, "error": str(ex)}
    except Exception as ex:
        log.debug("%s failed", kind, exc_info=True)
        return {"id": rid, "error": submitting.artist_message(ex, url=args.get("url", ""))}


def _run(request: JSON) -> None:
    emit(answer(int(request["id"]), request["kind"], request.get("args", {})))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for raw in sys.stdin.buffer:
        try:
            request = json.loads(raw)
        except ValueError:
            log.warning("not a request: %r", raw[:200])
            continue
        if request.get("kind") == "cancel":  # at once, not behind a busy thread
            _run(request)
            continue
        if request.get("kind") == "submit":
            _cancels[int(request["id"])] = threading.Event()
        threading.Thread(target=_run, args=(request,), daemon=True).start()
    if _finder is not None:
        _finder.stop()
    os._exit(0)  # Blender is gone: don't wait for uploads nobody will see end
