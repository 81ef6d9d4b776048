"""Which farm jobs go to and which jobs are this file's: plain logic, no Blender."""

from __future__ import annotations

from flamenco_addon.farms import (
    Found,
    choose,
    farm_key,
    label,
    rows,
    token_for,
)

LOCAL = "http://127.0.0.1:8765"


def found(name: str, host: str, port: int = 8765, **kw: object) -> Found:
    url = f"http://{host}:{port}"
    return Found(name, url, host, port, 1, f"{name}.{host}._farm._tcp.local.", **kw)  # type: ignore[arg-type]


def test_a_farm_found_on_the_network_is_never_chosen_without_a_click() -> None:
    # Neither an impostor announcing itself nor one that does not answer
    assert choose("", "") == ""
    assert choose("", LOCAL) == LOCAL  # the farm this computer runs: its token is known
    assert choose("http://10.0.0.9:8765", LOCAL) == "http://10.0.0.9:8765"


def test_this_computers_farm_is_listed_once_and_marked() -> None:
    announced = [
        found("studio", "10.0.0.5", here=True),  # our own farm, seen on the LAN
        found("studio", "192.168.7.5", here=True),  # ... and on a second network
        found("render-boss", "10.0.0.9", reachable=True),
        found("render-boss", "10.0.0.9", reachable=True),  # announced twice
        found("render-boss", "192.168.7.9", reachable=True),  # and on another interface
        found("ghost", "10.0.0.66", reachable=False),
    ]
    listed = rows(announced, LOCAL)
    assert [(r.url, r.here) for r in listed] == [
        (LOCAL, True),
        ("http://10.0.0.66:8765", False),
        ("http://10.0.0.9:8765", False),
    ]
    assert listed[0].label == "This computer (8765)"
    assert listed[1].label == "ghost (10.0.0.66): not answering"
    assert listed[1].reachable is False  # drawn greyed: it can't be clicked
    assert label(announced[2]) == "render-boss: 1 worker (10.0.0.9)"


def test_without_a_local_farm_our_address_is_just_another_farm() -> None:
    listed = rows([found("studio", "10.0.0.5", here=True)], "")
    assert [r.url for r in listed] == ["http://10.0.0.5:8765"]


def test_this_computers_farm_gets_its_own_token() -> None:
    mine = {"local_url": LOCAL, "local_token": "local-secret", "typed": "boss-token"}
    assert token_for(LOCAL, **mine) == "local-secret"
    assert token_for("http://localhost:8765", **mine) == "local-secret"
    assert token_for("http://10.0.0.9:8765", **mine) == "boss-token"
    assert token_for("http://127.0.0.1:9999", **mine) == "boss-token"  # another port
    assert token_for(LOCAL, local_url="", local_token="", typed="boss-token") == "boss-token"


def test_farm_keys_tell_farms_apart_and_hide_the_token() -> None:
    assert farm_key("a") != farm_key("b")
    assert "secret" not in farm_key("secret") and len(farm_key("secret")) == 16
    assert farm_key("") == ""
