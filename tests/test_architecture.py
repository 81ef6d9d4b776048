"""The house's rules, checked on the source: one-way doors between the rooms,
and rooms small enough to read in one sitting (docs/developer.md).

Doors: `coordinator.core` is imported by everyone and imports only the standard
library; the client never imports the server; the worker agent and the add-on
import only core and client of the coordinator; what runs inside Blender
imports only the standard library, `bpy` and its siblings; nothing outside the
server imports it but the commands that start or describe it.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("coordinator", "worker_agent", "flamenco_addon")
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
BLENDER_MODULES = frozenset({"bpy", "_cycles", "addon_utils", "mathutils"})

# The modules outside coordinator.server that may import it, and why.
SERVER_DOORS = {
    "coordinator/cli/serve.py": "the `serve` command starts the server",
    "coordinator/cli/apidocs.py": "`openapi-docs` prints the server's own API document",
}

# The add-on's bpy shell: register, draw, operators, preferences, reading the
# scene, and the rewrite and the CLI's trace that run in a separate Blender. Everything else in
# the add-on is plain Python that tests import without Blender.
ADDON_SHELL = frozenset(
    {"addon", "operators", "panels", "preferences", "properties", "scan"}
    | {"rewrite_paths", "trace_paths"}  # scripts run in a separate Blender
)

MAX_MODULE_LINES = 600
DASHBOARD = REPO / "coordinator" / "server" / "dashboard"  # ES modules, held to the same rule
MAX_CLASS_LINES = 400
EXCEPTIONS_HEADING = "## Rooms bigger than the rule"


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, relative to the repository
    line: int
    module: str  # the absolute module name imported

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.module}"


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[Import]:
    """Every import in the file, function-level ones included, made absolute."""
    rel = path.relative_to(REPO).as_posix()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield Import(rel, node.lineno, name)
            # "from coordinator import server" reaches the server as much as "import it"
            for alias in node.names:
                yield Import(rel, node.lineno, f"{name}.{alias.name}")


def top(module: str) -> str:
    return module.split(".", 1)[0]


def is_ours(module: str) -> bool:
    return top(module) in PACKAGES


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def door_violations(path: Path) -> list[str]:
    """What this file imports that its room may not, each with the rule it breaks."""
    rel = path.relative_to(REPO).as_posix()
    bad: list[str] = []
    for imp in imports_of(path):
        module = imp.module
        if rel.startswith("coordinator/core/"):
            if top(module) not in STDLIB and not within(module, "coordinator.core"):
                bad.append(f"{imp}: core imports only the standard library and core")
        elif rel.startswith("worker_agent/in_blender/"):
            if top(module) not in STDLIB | BLENDER_MODULES and not within(
                module, "worker_agent.in_blender"
            ):
                bad.append(f"{imp}: code run inside Blender imports only stdlib, bpy and itself")
        elif rel.startswith(("worker_agent/", "flamenco_addon/")):
            own = rel.split("/", 1)[0]
            allowed = ("coordinator.core", "coordinator.client", own)
            if is_ours(module) and not any(within(module, a) for a in allowed):
                bad.append(f"{imp}: {own} imports only coordinator.core and coordinator.client")
            if (
                own == "flamenco_addon"
                and top(module) in BLENDER_MODULES
                and path.stem not in ADDON_SHELL
            ):
                bad.append(
                    f"{imp}: only the add-on's shell ({', '.join(sorted(ADDON_SHELL))}) imports bpy"
                )
        elif rel.startswith("coordinator/client/") and (
            within(module, "coordinator.server") or within(module, "coordinator.cli")
        ):
            bad.append(f"{imp}: the client never imports the server or the CLI")
        if (
            within(module, "coordinator.server")
            and not rel.startswith("coordinator/server/")
            and rel not in SERVER_DOORS
        ):
            bad.append(f"{imp}: only the server and its entry points import coordinator.server")
    return bad


def test_every_room_keeps_its_doors() -> None:
    bad = [line for path in source_files() for line in door_violations(path)]
    assert bad == [], "\n".join(bad)


def test_the_door_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The rule is not vacuous: a core module importing aiohttp is named, with its line."""
    fake = REPO / "coordinator" / "core" / "_door_probe.py"
    fake.write_text("import json\n\n\ndef f():\n    import aiohttp\n", encoding="utf-8")
    try:
        assert door_violations(fake) == [
            "coordinator/core/_door_probe.py:5 imports aiohttp:"
            " core imports only the standard library and core"
        ]
    finally:
        fake.unlink()


def test_the_server_doors_exist() -> None:
    for rel in SERVER_DOORS:
        assert (REPO / rel).is_file(), f"{rel} is listed as a door to the server but is gone"


# ---------------------------------------------------------------------------
# Sizes


def documented_exceptions() -> dict[str, str]:
    """path -> the sentence in docs/developer.md saying why it is better whole."""
    text = (REPO / "docs" / "developer.md").read_text(encoding="utf-8")
    if EXCEPTIONS_HEADING not in text:
        return {}
    section = text.split(EXCEPTIONS_HEADING, 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"^- `([^`]+)`[^:]*: (.+)$", section, flags=re.MULTILINE)
    return dict(found)


def line_count(text: str) -> int:
    return text.count("\n") + 1


def dashboard_oversized(folder: Path, *, root: Path = REPO) -> list[tuple[str, str]]:
    """The dashboard's JavaScript modules are rooms too: (path, size) of each
    over 600 lines (classes are not counted there)."""
    out = []
    for path in sorted(folder.glob("*.js")):
        lines = line_count(path.read_text(encoding="utf-8"))
        if lines > MAX_MODULE_LINES:
            out.append((path.relative_to(root).as_posix(), f"module of {lines} lines"))
    return out


def oversized() -> list[tuple[str, str]]:
    """(what, how big) for each module over 600 lines and class over 400."""
    out = dashboard_oversized(DASHBOARD)
    for path in source_files():
        rel = path.relative_to(REPO).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = line_count(text)
        if lines > MAX_MODULE_LINES:
            out.append((rel, f"module of {lines} lines"))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    out.append((f"{rel}::{node.name}", f"class of {size} lines"))
    return out


def test_rooms_fit_in_one_sitting() -> None:
    excused = documented_exceptions()
    unexcused = [f"{what}: {size}" for what, size in oversized() if what not in excused]
    assert unexcused == [], (
        "over the size rule (module 600 lines, class 400) without a sentence in"
        f" docs/developer.md under '{EXCEPTIONS_HEADING}':\n" + "\n".join(unexcused)
    )


def test_the_size_check_reads_the_dashboard(tmp_path: Path) -> None:
    """The dashboard's scripts are where the check looks, and one too big is named."""
    assert DASHBOARD / "app.js" in DASHBOARD.glob("*.js")
    (tmp_path / "big.js").write_text("// one line\n" * 600, encoding="utf-8")
    (tmp_path / "fits.js").write_text("// one line\n" * 599, encoding="utf-8")
    assert dashboard_oversized(tmp_path, root=tmp_path) == [("big.js", "module of 601 lines")]


def test_excused_rooms_are_still_big() -> None:
    """An exception outlives its reason when the room shrinks: drop it from the docs."""
    big = {what for what, _ in oversized()}
    stale = sorted(set(documented_exceptions()) - big)
    assert stale == [], f"docs/developer.md excuses rooms that now fit the rule: {stale}"


@pytest.mark.parametrize("rel", sorted(SERVER_DOORS))
def test_server_doors_import_the_server_lazily(rel: str) -> None:
    """`python -m coordinator jobs` must not pay for aiohttp: the doors import
    the server inside the command, never at the top of the module."""
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert not any(within(n or "", "coordinator.server") for n in names), (
                f"{rel}:{node.lineno} imports the server at module level"
            )


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "bench").glob("*.py")))
def test_benchmarks_still_import(name: str) -> None:
    """Benchmarks run by hand, so a move that breaks their imports goes unseen
    until someone needs the figures; importing them here catches it."""
    importlib.import_module(f"bench.{name}")
