"""A movie job regenerated with other chunks keeps its rendered frames, and the new
encode gets every one of them as an input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import API, AUTH, claim, finish, register, submit_render

Client = TestClient[Any, Any]


async def test_regenerated_chunks_hand_their_frames_to_the_new_encode(
    client: Client, tmp_path: Path
) -> None:
    job = await submit_render(
        client, str(tmp_path / "frame_"), frames="1-4", file_format="FFMPEG", chunk_size=2
    )
    worker = await register(client)
    for _ in range(2):
        task = await claim(client, worker)
        assert task is not None and task["kind"] == "render"
        for frame in task["payload"]["frames"]:
            name = f"farm_movie_frame_{frame:04d}.png"
            resp = await client.put(
                f"{API}/worker/tasks/{task['task_id']}/outputs/{name}?frame={frame}",
                data=f"png {frame}".encode(),
                headers=worker,
            )
            assert resp.status in (200, 201), await resp.text()
        await finish(client, worker, task["task_id"])
    encode = await claim(client, worker)
    assert encode is not None and encode["kind"] == "encode"
    assert len(encode["inputs"]) == 4

    resp = await client.post(
        f"{API}/jobs/{job['id']}/regenerate", json={"settings": {"chunk_size": 4}}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["regenerated"] == {"tasks": 2, "kept": 1, "stopped": 1}
    again = await claim(client, worker)
    assert again is not None and again["kind"] == "encode"
    assert sorted(again["inputs"]) == [f"farm_movie_frame_000{f}.png" for f in range(1, 5)]
