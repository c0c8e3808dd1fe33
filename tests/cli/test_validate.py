"""`fleetsim validate` and `fleetsim schema`, through the command line a user types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetsim.cli.exit_codes import ExitCode
from fleetsim.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
BROKEN = "tests/cli/broken"


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in messages are printed as given, so the tests give them relative to the root."""
    monkeypatch.chdir(ROOT)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("file_name", "expected_stderr"),
    [
        pytest.param(
            "unknown_key.yaml",
            [
                f"{BROKEN}/unknown_key.yaml:3 stations.count: Field required",
                f"{BROKEN}/unknown_key.yaml:4 stations.cout: unknown key; did you mean count?",
            ],
            id="unknown key",
        ),
        pytest.param(
            "wrong_type.yaml",
            [
                f"{BROKEN}/wrong_type.yaml:6 stations.evses[1].max_power_w: Input should be a "
                "valid number, unable to parse string as a number"
            ],
            id="wrong type",
        ),
        pytest.param(
            "count_zero.yaml",
            [
                f"{BROKEN}/count_zero.yaml:6 stations.count: Input should be greater than or "
                "equal to 1"
            ],
            id="count 0",
        ),
        pytest.param(
            "bad_url_scheme.yaml",
            [
                f"{BROKEN}/bad_url_scheme.yaml:3 csms.url: 'https://csms.example/ocpp' must "
                "start with ws:// or wss://, because OCPP-J runs over WebSocket; did you mean "
                "wss://csms.example/ocpp?"
            ],
            id="bad url scheme",
        ),
        pytest.param(
            "bad_id_pattern.yaml",
            [
                f"{BROKEN}/bad_id_pattern.yaml:4 stations.id_pattern: 'CP-station' must contain "
                "{index} so that the station ids differ, e.g. 'CP{index:05d}'"
            ],
            id="bad id_pattern",
        ),
        pytest.param(
            "yaml_syntax.yaml",
            [
                f"{BROKEN}/yaml_syntax.yaml:4 invalid YAML at column 10: mapping values are not "
                "allowed here"
            ],
            id="YAML syntax error",
        ),
        pytest.param(
            "missing.yaml",
            [f"{BROKEN}/missing.yaml: no such file"],
            id="missing file",
        ),
    ],
)
def test_a_broken_scenario_exits_2_and_names_file_line_and_field(
    file_name: str, expected_stderr: list[str]
) -> None:
    code, stdout, stderr = invoke("validate", f"{BROKEN}/{file_name}")

    assert code == ExitCode.BAD_SCENARIO
    assert stderr.splitlines() == expected_stderr
    assert stdout == ""


def test_exit_codes_keep_the_numbers_pipelines_rely_on() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "THRESHOLD_FAILED": 1,
        "BAD_SCENARIO": 2,
        "CSMS_UNREACHABLE": 3,
        "WORKER_DIED": 4,
        "INTERRUPTED": 130,
    }


def test_the_quickstart_scenario_is_valid() -> None:
    code, stdout, stderr = invoke("validate", "scenarios/quickstart.yaml")

    assert (code, stderr) == (ExitCode.OK, "")
    assert stdout.splitlines() == [
        "ok: scenarios/quickstart.yaml (100 stations with 2 EVSEs each, embedded CSMS, "
        "OCPP 2.1, speed 10, 60 s)"
    ]


def test_every_file_is_checked_even_after_a_broken_one() -> None:
    code, stdout, stderr = invoke(
        "validate", f"{BROKEN}/count_zero.yaml", "scenarios/quickstart.yaml"
    )

    assert code == ExitCode.BAD_SCENARIO
    assert stdout.startswith("ok: scenarios/quickstart.yaml (")
    assert stderr.startswith(f"{BROKEN}/count_zero.yaml:6 stations.count: ")


def test_every_example_scenario_is_valid() -> None:
    examples = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "scenarios").glob("*.yaml"))

    code, stdout, stderr = invoke("validate", *examples)

    assert (code, stderr) == (ExitCode.OK, "")
    assert [line.split(" (")[0] for line in stdout.splitlines()] == [
        f"ok: {path}" for path in examples
    ]


def test_schema_prints_a_json_schema_with_the_field_descriptions() -> None:
    code, stdout, stderr = invoke("schema")

    assert (code, stderr) == (ExitCode.OK, "")
    schema = json.loads(stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "fleetsim scenario"
    assert schema["required"] == ["name", "stations"]
    assert schema["properties"]["speed"]["description"].startswith(
        "Simulated seconds per wall second"
    )
    stations = schema["$defs"]["StationsSettings"]
    assert stations["additionalProperties"] is False
    assert stations["properties"]["count"] == {
        "description": "Number of stations in the fleet.",
        "minimum": 1,
        "title": "Count",
        "type": "integer",
    }


def test_schema_output_is_indented_by_two_spaces() -> None:
    _, stdout, _ = invoke("schema")

    assert stdout.splitlines()[:2] == [
        "{",
        '  "$schema": "https://json-schema.org/draft/2020-12/schema",',
    ]


def test_ev_models_lists_the_catalogue_by_the_names_scenarios_use() -> None:
    code, out, _ = invoke("ev-models")
    assert code == 0
    assert "vw-id3-pro-58kwh" in out
    assert "renault-5-etech-52kwh" in out


def test_an_unknown_ev_model_is_explained_with_the_closest_name(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("name: x\nstations: {count: 1}\nev_fleet:\n  models:\n    vw-id3: 1\n")
    code, _, err = invoke("validate", str(path))
    assert code == ExitCode.BAD_SCENARIO
    assert f"{path}:5 ev_fleet.models.vw-id3: no EV model 'vw-id3' in the catalogue" in err
