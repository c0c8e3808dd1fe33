"""Who may import what, read from the source with `ast` so nothing has to be importable.

The OCPP core (`simulator/ocpp/`) is pure protocol: no trio, no sockets, no station or CSMS
code, so it can be tested with strings and reused on both sides.  Only the transport and the
embedded CSMS touch trio-websocket.  The EV and grid models are physics and statistics: no
trio, no simulator, no OCPP payloads.  A station's functional blocks see the station through
its protocol (`station/core.py`), never `Station` and never each other; station code never
touches the transport; the `Link` interface (`simulator/link.py`) needs no trio and none of its
implementations; the command line goes through the engine's facade (`simulator/api.py`); and
no package has an import circle.  Every import counts, including those inside functions and
`if TYPE_CHECKING:` blocks.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The code folders of fleetsim, installed as `fleetsim.<folder>` (pyproject's `package-dir`).
#: The rules below name modules by folder (`simulator.ocpp.rpc`); imports of
#: `fleetsim.simulator.ocpp.rpc` are read as that.
FLEETSIM_PACKAGES = ("simulator", "ev_models", "grid_models", "cli")
NAMESPACE = "fleetsim."


def module_name(path: Path) -> str:
    """`simulator/ocpp/rpc.py` -> `simulator.ocpp.rpc`; a package's `__init__` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> Iterator[str]:
    """The absolute names of the modules `source` imports, relative imports resolved.

    `from x import y` yields both `x` and `x.y`, since `y` may be a submodule.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.removeprefix(NAMESPACE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            elif node.module == "fleetsim":
                for alias in node.names:
                    yield alias.name
                continue
            else:
                base = (node.module or "").removeprefix(NAMESPACE)
            yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}"


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    return set(
        imported_modules(
            path.read_text(encoding="utf-8"),
            module_name(path),
            is_package=path.name == "__init__.py",
        )
    )


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    """`file imports module` for each import of a module within one of `forbidden`."""
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in sorted(imports_of(path))
        if any(is_within(name, package) for package in forbidden)
    ]


def bare_imports(source: str) -> list[str]:
    """Absolute imports of a code folder by its bare name (`simulator.x`, not `fleetsim.…`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        found += [
            name for name in names if any(is_within(name, folder) for folder in FLEETSIM_PACKAGES)
        ]
    return found


# -- the rules ---------------------------------------------------------------------------------


def test_code_tests_and_benchmarks_import_fleetsim_through_its_namespace() -> None:
    """Installed, the folders exist only as `fleetsim.<folder>`: a bare `import simulator` works in
    a checkout (the tests put its root on sys.path) but nowhere else, and would load a second copy
    of every module it reaches."""
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in python_files(*FLEETSIM_PACKAGES, "tests", "bench")
        for name in bare_imports(path.read_text(encoding="utf-8"))
    ]
    assert not found, "import fleetsim.<folder>, not <folder>:\n" + "\n".join(found)


def test_the_namespace_rule_sees_a_bare_import() -> None:
    assert bare_imports("import simulator.run\nfrom grid_models import x\n") == [
        "simulator.run",
        "grid_models",
    ]
    assert bare_imports("from fleetsim.simulator import run\nfrom . import cli\n") == []
    source = "import simulator.run\nfrom grid_models import x\nfrom fleetsim.cli import main\n"
    names = set(imported_modules(source, "tests.probe"))
    assert {"simulator.run", "grid_models", "cli", "cli.main"} <= names


def test_the_ocpp_core_imports_no_trio_and_no_websocket() -> None:
    found = violations(python_files("simulator/ocpp"), ("trio", "trio_websocket"))
    assert not found, "simulator/ocpp/ must stay free of I/O:\n" + "\n".join(found)


def test_the_ocpp_core_imports_no_fleetsim_module_outside_itself() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in python_files("simulator/ocpp")
        for name in sorted(imports_of(path))
        if any(is_within(name, package) for package in FLEETSIM_PACKAGES)
        and not is_within(name, "simulator.ocpp")
    ]
    assert not found, "simulator/ocpp/ may only import itself from fleetsim:\n" + "\n".join(found)


def test_only_the_transport_and_the_csms_import_trio_websocket() -> None:
    allowed = (ROOT / "simulator/transport", ROOT / "simulator/csms")
    others = [
        path
        for path in python_files(*FLEETSIM_PACKAGES)
        if not any(path.is_relative_to(folder) for folder in allowed)
    ]
    found = violations(others, ("trio_websocket",))
    assert not found, (
        "only simulator/transport/ and simulator/csms/ may import trio_websocket:\n"
        + "\n".join(found)
    )


def test_the_ev_models_import_no_trio() -> None:
    found = violations(python_files("ev_models"), ("trio",))
    assert not found, "ev_models/ must be plain functions of time:\n" + "\n".join(found)


def test_the_models_import_no_simulator_code() -> None:
    found = violations(python_files("ev_models", "grid_models"), ("simulator", "trio"))
    assert not found, "ev_models/ and grid_models/ are physics, below the simulator:\n" + "\n".join(
        found
    )


def ocpp_field_names() -> set[str]:
    """Every camelCase property name of the OCPP 2.1 schemas (`chargingNeeds`, `eventData`)."""
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                names.add(key)
                walk(value)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for schema in (resources.files("ocpp") / "v21" / "schemas").iterdir():
        if schema.name.endswith(".json"):
            walk(json.loads(schema.read_text(encoding="utf-8")))
    return {name for name in names if name != name.lower()}


def string_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


def test_the_models_build_no_ocpp_payload() -> None:
    fields = ocpp_field_names()
    found = [
        f"{path.relative_to(ROOT)} uses the OCPP field name {name!r}"
        for path in python_files("ev_models", "grid_models")
        for name in sorted(string_literals(path) & fields)
    ]
    assert not found, "OCPP payloads are the station's business (its blocks):\n" + "\n".join(found)


def test_blocks_see_the_station_protocol_not_the_station_nor_each_other() -> None:
    folder = ROOT / "simulator/station/blocks"
    blocks = [
        path for path in python_files("simulator/station/blocks") if path != folder / "__init__.py"
    ]
    assert blocks

    def block_of(path: Path) -> str:
        """A block is a module of the folder or a package in it, whose modules share it."""
        return f"simulator.station.blocks.{path.relative_to(folder).parts[0].removesuffix('.py')}"

    found = violations(blocks, ("simulator.station.station", "simulator.station.registry"))
    found += [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in blocks
        for name in sorted(imports_of(path))
        if name in ("simulator.station", "simulator.station.blocks")
        or any(is_within(name, other) for other in {block_of(b) for b in blocks} - {block_of(path)})
    ]
    assert not found, "blocks import simulator/station/core.py, not Station:\n" + "\n".join(found)


def test_station_code_does_not_touch_the_transport() -> None:
    found = violations(python_files("simulator/station"), ("simulator.transport",))
    assert not found, "simulator/station/ works over any Link:\n" + "\n".join(found)


def test_the_command_line_imports_only_the_facade() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in python_files("cli")
        for name in sorted(imports_of(path))
        if any(is_within(name, package) for package in ("simulator", "ev_models", "grid_models"))
        and name != "simulator.api"
    ]
    assert not found, "cli/ reaches the engine through simulator/api.py only:\n" + "\n".join(found)
    assert any("simulator.api" in imports_of(path) for path in python_files("cli"))


def import_graph() -> dict[str, set[str]]:
    """Module -> the fleetsim modules it imports (packages' own ancestors left out: importing
    `a.b.c` runs `a.b`'s `__init__` first, which is an order, not a dependency)."""
    paths = python_files(*FLEETSIM_PACKAGES)
    modules = {module_name(path): path for path in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {
            target
            for target in imports_of(path)
            if target in modules and target != name and not is_within(name, target)
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_package_has_an_import_circle() -> None:
    graph = import_graph()
    within_packages = {
        name: {
            t
            for t in targets
            if t.rpartition(".")[0] == name.rpartition(".")[0]
            or is_within(t, name.rpartition(".")[0])
        }
        for name, targets in graph.items()
    }
    found = cycles(within_packages)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_circle_finder_finds_circles() -> None:
    assert cycles({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}) == [
        ["a.x", "a.y", "a.z"]
    ]
    assert cycles({"a.x": {"a.y"}, "a.y": set()}) == []


def test_the_link_interface_imports_no_trio_and_no_implementation() -> None:
    found = violations(
        [ROOT / "simulator/link.py"], ("trio", "trio_websocket", "simulator.transport")
    )
    assert not found, "simulator/link.py is the interface only:\n" + "\n".join(found)


def test_the_rules_have_files_to_check() -> None:
    assert python_files("simulator/ocpp")
    assert python_files("ev_models")
    assert any(
        "trio_websocket" in imports_of(path) for path in python_files("simulator/transport")
    ), "the scan found no trio_websocket import where one is known to be"


# -- the scanner itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import trio", "simulator.ocpp.rpc", "trio"),
        ("import trio.testing as tt", "simulator.ocpp.rpc", "trio.testing"),
        ("from trio_websocket import serve_websocket", "simulator.ocpp.rpc", "trio_websocket"),
        ("from .frames import dump", "simulator.ocpp.rpc", "simulator.ocpp.frames"),
        ("from ..link import Answer", "simulator.ocpp.rpc", "simulator.link"),
        ("from .. import clock", "simulator.ocpp.rpc", "simulator.clock"),
        ("def f():\n    import trio\n", "simulator.ocpp.rpc", "trio"),
        (
            "if TYPE_CHECKING:\n    from ..station import Station\n",
            "simulator.ocpp.rpc",
            "simulator.station",
        ),
    ],
)
def test_the_scanner_sees_every_kind_of_import(source: str, module: str, expected: str) -> None:
    assert expected in set(imported_modules(source, module))


def test_the_scanner_resolves_relative_imports_in_a_package_init() -> None:
    names = set(imported_modules("from .rpc import RpcSession", "simulator.ocpp", is_package=True))
    assert "simulator.ocpp.rpc" in names


def test_a_violation_names_the_file_and_the_import() -> None:
    bad = ROOT / "simulator" / "ocpp" / "frames.py"
    found = violations([bad], ("orjson",))
    assert found == ["simulator/ocpp/frames.py imports orjson"]
