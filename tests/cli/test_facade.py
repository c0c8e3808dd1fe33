"""The command line stays quick to start: `fleetsim --help` and `fleetsim validate` load no
event loop and no engine (that it imports only `simulator.api` is a rule of
`tests/test_layering.py`); and the facade's own calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetsim.simulator import api

ROOT = Path(__file__).resolve().parents[2]
#: fleetsim's packages that `cli/` may reach only through `simulator.api`.
ENGINE_PACKAGES = ("simulator", "ev_models", "grid_models")
FACADE = "simulator.api"


def _modules_loaded_by(*arguments: str) -> set[str]:
    """The modules a fresh interpreter holds after running `fleetsim ARGUMENTS`."""
    script = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from fleetsim.cli.main import app\n"
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
    heavy = {
        "trio",
        *(f"fleetsim.simulator.{name}" for name in ("run", "workers", "csms", "transport")),
    }
    assert "fleetsim.simulator.api" in loaded
    assert not heavy & loaded


def test_the_facade_loads_a_scenario_with_the_flags_that_were_given() -> None:
    path = ROOT / "scenarios" / "quickstart.yaml"
    plain = api.load_scenario(path)
    overridden = api.load_scenario(path, api.ScenarioOverrides(stations=7, seed=3))
    assert (overridden.stations.count, overridden.seed) == (7, 3)
    assert overridden.speed == plain.speed


def test_quickstart_pointed_at_a_csms_runs_in_real_time_and_says_how_to_keep_its_clock() -> None:
    path = ROOT / "scenarios" / "quickstart.yaml"
    pointed = api.plan_run(
        api.RunRequest(
            scenario_path=path, overrides=api.ScenarioOverrides(csms_url="ws://csms:9000/ocpp")
        )
    )
    assert (pointed.scenario.speed, pointed.scenario.start) == (1.0, None)
    (note,) = [warning for warning in pointed.warnings if warning.startswith("--csms")]
    assert "--speed 10 or --start 2026-01-15T12:00:00+00:00" in note

    kept = api.plan_run(
        api.RunRequest(
            scenario_path=path,
            overrides=api.ScenarioOverrides(
                csms_url="ws://csms:9000/ocpp", speed=10, start="2026-01-15T12:00:00Z"
            ),
        )
    )
    assert kept.scenario.speed == 10
    assert not [warning for warning in kept.warnings if warning.startswith("--csms")]
    embedded = api.plan_run(api.RunRequest(scenario_path=path))
    assert embedded.scenario.speed == 10 and embedded.warnings == ()


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
