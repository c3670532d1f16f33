"""The layers import one way: the composition root (gateway/assembly.py) knows the areas,
the web layer knows the root and the areas, the areas know only the core services they
are handed, and the core knows no area. Each package is imported, with every module in
it, in a fresh interpreter, and what came in with it is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

ROOT_AND_WEB = ("gateway.assembly", "gateway.app", "gateway.api", "gateway.web", "gateway.cli", "gateway.cli_faces", "gateway.runner",
                "gateway.demo", "gateway.core", "gateway.config_sync")
AREAS = ("drivers", "streams", "recognition")

PROBE = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
for m in pkgutil.walk_packages(getattr(pkg, "__path__", []), pkg.__name__ + "."):
    if not m.name.endswith("__main__") and ".migrations" not in m.name:  # alembic scripts run only under alembic
        importlib.import_module(m.name)
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_importing(package: str) -> list[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, package], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout.strip().splitlines()[-1]))


def _under(mods: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in mods if any(m == p or m.startswith(p + ".") for p in prefixes)]


@pytest.mark.parametrize("package", ["drivers.gps", "drivers.camera", "drivers.kiosk", "drivers.bodycam", "streams", "recognition"])
def test_an_area_brings_in_neither_the_root_nor_the_web_layer(package: str) -> None:
    assert _under(modules_after_importing(package), ROOT_AND_WEB) == []


@pytest.mark.parametrize("package", ["gateway.alerts", "gateway.bus", "gateway.events", "gateway.db", "gateway.mqtt", "gateway.audit", "gateway.push",
                                     "gateway.core"])
def test_the_core_brings_in_no_area(package: str) -> None:
    mods = modules_after_importing(package)
    assert _under(mods, AREAS) == []
    assert _under(mods, ("gateway.assembly", "gateway.app", "gateway.api", "gateway.web", "gateway.cli", "gateway.config_sync")) == []


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_area_names_the_root_or_the_web_layer_anywhere() -> None:
    """Also imports under TYPE_CHECKING and inside functions, which the runtime check
    above cannot see: a circle hidden that way still ties an area to what builds it."""
    bad = []
    for top in AREAS:
        for path in sorted((ROOT / top).rglob("*.py")):
            for name in sorted(_imports(path)):
                if any(name == p or name.startswith(p + ".") for p in ROOT_AND_WEB + ("gateway.services",)):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []
