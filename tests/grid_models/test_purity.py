"""The grid models stay pure: numpy and the standard library, no trio, simpy or simulator.

Read from the source with `ast`, every import counted, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

from fleetsim import grid_models

PACKAGE = Path(grid_models.__file__).resolve().parent
FORBIDDEN = ("trio", "trio_websocket", "simpy", "simulator", "cli")


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_grid_models_import_no_io_and_no_simulation_engine() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert files
    found = [
        f"{path.name} imports {root}"
        for path in files
        for root in sorted(imported_roots(path))
        if root in FORBIDDEN
    ]
    assert not found, "grid_models/ must be plain functions of time:\n" + "\n".join(found)


def test_the_package_exports_what_its_modules_share() -> None:
    assert sorted(grid_models.__all__) == sorted(set(grid_models.__all__))
    for name in grid_models.__all__:
        assert hasattr(grid_models, name), name
