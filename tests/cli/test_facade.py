"""The command line reaches the engine through one door, `simulator.api`, and stays quick to
start: `fleetsim --help` and `fleetsim validate` load no event loop and no engine."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import api

ROOT = Path(__file__).resolve().parents[2]
#: fleetsim's packages that `cli/` may reach only through `simulator.api`.
ENGINE_PACKAGES = ("simulator", "ev_models", "grid_models")
FACADE = "simulator.api"


def _imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every import in `source`, in functions and `TYPE_CHECKING` blocks
    too.  `from package import name` imports the module `package.name` when `package` is a
    folder of the repository (`name` may be a module); `from module import name` imports
    `module`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if (ROOT / node.module.replace(".", "/")).is_dir():
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _engine_imports_besides_the_facade(source: str) -> list[tuple[int, str]]:
    return [
        (line, name)
        for line, name in _imports(source)
        if name.split(".")[0] in ENGINE_PACKAGES and name != FACADE
    ]


def test_the_cli_imports_no_engine_module_but_the_facade() -> None:
    files = sorted((ROOT / "cli").rglob("*.py"))
    assert files
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in _engine_imports_besides_the_facade(path.read_text(encoding="utf-8"))
    ]
    assert not found, "cli/ may import only simulator.api of fleetsim's packages:\n" + "\n".join(
        found
    )


def test_the_cli_does_import_the_facade() -> None:
    source = (ROOT / "cli" / "main.py").read_text(encoding="utf-8")
    assert FACADE in {name for _, name in _imports(source)}


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("import simulator.api as api", True),
        ("from simulator import api", True),
        ("from simulator.api import load_scenario", True),
        ("import typer\nfrom rich.console import Console", True),
        ("from simulator.scenario import load_scenario", False),
        ("from simulator import api, scenario", False),
        ("import simulator", False),
        ("def f():\n    import simulator.workers\n", False),
        ("if TYPE_CHECKING:\n    from simulator.shard import Shard\n", False),
        ("from ev_models import load_catalogue", False),
        ("import grid_models.droop", False),
    ],
)
def test_the_check_sees_every_kind_of_import(source: str, allowed: bool) -> None:
    assert (not _engine_imports_besides_the_facade(source)) == allowed


def _modules_loaded_by(*arguments: str) -> set[str]:
    """The modules a fresh interpreter holds after running `fleetsim ARGUMENTS`."""
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        f"result = CliRunner().invoke(app, {list(arguments)!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(json.loads(output.splitlines()[-1]))


@pytest.mark.parametrize(
    "arguments", [("--help",), ("validate", "scenarios/quickstart.yaml"), ("schema",)]
)
def test_help_validate_and_schema_load_no_event_loop_and_no_engine(
    arguments: tuple[str, ...],
) -> None:
    loaded = _modules_loaded_by(*arguments)
    heavy = {"trio", "simulator.run", "simulator.workers", "simulator.csms", "simulator.transport"}
    assert not heavy & loaded


def test_the_facade_loads_a_scenario_with_the_flags_that_were_given() -> None:
    path = ROOT / "scenarios" / "quickstart.yaml"
    plain = api.load_scenario(path)
    overridden = api.load_scenario(path, api.ScenarioOverrides(stations=7, seed=3))
    assert (overridden.stations.count, overridden.seed) == (7, 3)
    assert overridden.speed == plain.speed


def test_the_facade_refuses_a_bad_flag_before_starting_anything() -> None:
    request = api.RunRequest(
        scenario_path=ROOT / "scenarios" / "quickstart.yaml", workers="2", in_memory=True
    )
    with pytest.raises(api.RunRefused, match="--fast runs in one process; drop --workers"):
        api.plan_run(request)


def test_a_worker_plans_its_block_at_its_share_of_the_ramp_up() -> None:
    path = ROOT / "scenarios" / "quickstart.yaml"
    whole = api.load_scenario(path)
    plan = api.plan_run(api.RunRequest(scenario_path=path, worker="1/4"))
    assert plan.worker is not None and plan.worker_count == 1
    assert plan.scenario.stations.count == whole.stations.count // 4
    assert plan.scenario.stations.ramp_up_per_s == whole.stations.ramp_up_per_s / 4
