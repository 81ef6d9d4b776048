"""What crosses the LAN: every byte of a submit-render-deliver run with
`serve --tls`, recorded by a TCP relay in the test between the farm and both
its clients (the artist's and a real worker with real Blender). The token,
the project's files and the frames never appear in it. The same relay in
front of a plain-HTTP farm does see the token: the capture can fail.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from tests.e2e.test_render import submit
from tests.support.blendgen import DEBIAN_BLENDER, make_scene
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.blender, pytest.mark.timeout(300)]


class Relay:
    """127.0.0.1:port -> 127.0.0.1:target, recording both directions."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.captured = bytearray()
        self.connections = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                with self.lock:
                    self.sockets.append(client)
                upstream = socket.create_connection(("127.0.0.1", self.target))
                with self.lock:
                    self.connections += 1
                    self.sockets.append(upstream)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self.lock:
                    self.captured += data
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                s.close()

    def bytes(self) -> bytes:
        with self.lock:
            return bytes(self.captured)


@contextlib.contextmanager
def relayed_farm(root: Path, *, tls: bool) -> Iterator[tuple[LocalFarm, Relay, str]]:
    with LocalFarm(root=root, tls=tls) as farm:
        farm.start_coordinator("--no-zeroconf")
        relay = Relay(farm.port)
        try:
            yield farm, relay, f"{'https' if tls else 'http'}://127.0.0.1:{relay.port}"
        finally:
            relay.close()


def slices(data: bytes, *, size: int = 48, count: int = 12) -> list[bytes]:
    """Pieces from all over a file, each varied enough to be its own (not zeros)."""
    step = max(1, (len(data) - size) // (count * 4))
    pieces = [data[i : i + size] for i in range(0, len(data) - size, step)]
    varied = [p for p in pieces if len(set(p)) >= 16]
    assert len(varied) >= count // 2, "the file has too few distinctive pieces"
    return varied[:: max(1, len(varied) // count)]


def test_a_tls_run_shows_the_lan_no_token_no_project_and_no_frames(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "project" / "shot.blend", frames=(1, 2))
    notes = tmp_path / "project" / "notes.txt"
    marker = f"project secret {secrets.token_hex(16)}"
    notes.write_text(marker * 4)
    with relayed_farm(tmp_path / "farm", tls=True) as (farm, relay, url):
        farm.start_worker("w1", "--coordinator", url, "--no-standby", blender=DEBIAN_BLENDER)
        artist = FarmClient(url, token=farm.token)
        out = tmp_path / "out"
        job_id = submit(
            artist,
            {"shot.blend": scene, "notes.txt": notes},
            "shot.blend",
            out,
            frames="1-2",
            chunk=1,
        )
        job = farm.wait_for_job(job_id, timeout=240)
        assert job["status"] == "completed", job["status_reason"]
        pulled = tmp_path / "pulled"
        for output in artist.outputs(job_id):  # delivered over the LAN too
            artist.download_output(job_id, output, pulled / output["name"])
        frames = sorted(pulled.iterdir())
        assert [f.name for f in frames] == ["frame_0001.png", "frame_0002.png"]
        captured = relay.bytes()
        artist.session.close()
    assert relay.connections >= 2 and len(captured) > sum(f.stat().st_size for f in frames)
    assert captured.startswith(b"\x16\x03")  # a TLS handshake, not HTTP
    assert farm.token.encode() not in captured
    assert marker.encode() not in captured
    for piece in slices(scene.read_bytes()) + [p for f in frames for p in slices(f.read_bytes())]:
        assert piece not in captured


def test_the_same_relay_sees_the_token_of_a_plain_http_farm(tmp_path: Path) -> None:
    with relayed_farm(tmp_path / "farm", tls=False) as (farm, relay, url):
        client = FarmClient(url, token=farm.token)
        client.jobs()  # loopback: plain HTTP is allowed
        client.session.close()
        assert farm.token.encode() in relay.bytes()
