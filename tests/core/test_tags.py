"""The tag and needs rules every program shares (coordinator/core/tags.py)."""

from __future__ import annotations

import pytest

from coordinator.core.tags import check_needs, describe_memory, parse_memory, parse_need


@pytest.mark.parametrize(
    ("text", "mb"),
    [("16G", 16384), ("16 GiB", 16384), ("16gb", 16384), ("1.5G", 1536), ("512M", 512)],
)
def test_sizes_as_people_write_them(text: str, mb: int) -> None:
    assert parse_memory(text) == mb


@pytest.mark.parametrize("text", ["16", "lots", "16T", "-1G", "0G", ""])
def test_a_size_without_a_unit_or_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_memory(text)


def test_needs_from_the_command_line() -> None:
    assert parse_need("memory=16G") == ("memory_mb", 16384)
    assert parse_need("os=macOS") == ("os", "darwin")
    assert parse_need(" device = gpu ") == ("device", "GPU")
    assert parse_need("engine=cycles") == ("engine", "CYCLES")
    for bad in ("colour=red", "memory", "os=", "memory_mb=16384"):
        with pytest.raises(ValueError, match="expected engine=NAME"):
            parse_need(bad)
    with pytest.raises(ValueError, match="not a size"):
        parse_need("memory=lots")


def test_needs_as_the_api_takes_them() -> None:
    needs = {"engine": "cycles", "device": "", "memory_mb": 8192, "os": "WIN"}
    assert check_needs(needs) == {"engine": "CYCLES", "memory_mb": 8192, "os": "windows"}
    assert check_needs({"memory_mb": 0}) == {}  # the add-on's "no need"
    with pytest.raises(ValueError, match="whole number of MiB"):
        check_needs({"memory_mb": True})


def test_memory_as_warnings_say_it() -> None:
    assert [describe_memory(m) for m in (512, 1024, 1536, 16384)] == [
        "512 MiB",
        "1 GiB",
        "1.5 GiB",
        "16 GiB",
    ]
