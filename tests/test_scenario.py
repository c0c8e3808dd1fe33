"""The scenario format: defaults, validation messages with file:line, overrides, passwords."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable
from pathlib import Path

import jsonschema_rs
import pytest
import yaml
from pydantic import ValidationError

from fleetsim.simulator.scenario import (
    CsmsSettings,
    EvFleetSettings,
    EvseSpec,
    IdTokenPool,
    Scenario,
    ScenarioError,
    StationsSettings,
    load_scenario,
    scenario_json_schema,
)

ROOT = Path(__file__).resolve().parents[1]


Load = Callable[[str], list[str]]


@pytest.fixture
def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Load:
    """Load YAML text as `s.yaml` and return the problem lines it raises."""
    monkeypatch.chdir(tmp_path)

    def load(text: str) -> list[str]:
        Path("s.yaml").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        with pytest.raises(ScenarioError) as caught:
            load_scenario(Path("s.yaml"))
        return list(caught.value.problems)

    return load


def minimal(**fields: object) -> Scenario:
    return Scenario.model_validate({"name": "t", "stations": {"count": 2}, **fields})


# --- defaults -----------------------------------------------------------------------------------


def test_a_scenario_needs_only_a_name_and_a_station_count() -> None:
    scenario = minimal()

    assert (scenario.seed, scenario.speed, scenario.duration_s, scenario.start) == (
        1,
        1.0,
        None,
        None,
    )
    assert (scenario.ocpp_version, scenario.metrics_port) == ("2.1", None)
    assert scenario.csms == CsmsSettings(
        url=None,
        password=None,
        password_env=None,
        connect_timeout_s=10,
        call_timeout_s=30,
        validate_outgoing=True,
        retry_backoff_wait_minimum_s=3,
        retry_backoff_random_range_s=10,
        retry_backoff_repeat_times=3,
    )
    stations = scenario.stations
    assert (stations.first_index, stations.id_pattern) == (1, "CP{index:05d}")
    assert (stations.vendor, stations.model) == ("fleetsim", "virtual-ac-22")
    assert stations.firmware_version.startswith("fleetsim-")
    assert (stations.ramp_up_per_s, stations.heartbeat_interval_s) == (100, 300)
    assert stations.meter_interval_s == 60
    assert stations.tx_start_points == ("EVConnected", "Authorized")
    assert stations.connector_status_report == "status_notification"
    assert stations.evses == (EvseSpec(max_power_w=22_000, phases=3, connectors=("cType2",)),)
    assert scenario.sites == ()
    assert [(site.name, site.kind, indices) for site, indices in scenario.site_layout()] == [
        ("site", "public", range(1, scenario.stations.count + 1))
    ]
    assert scenario.ev_fleet == EvFleetSettings(
        models=None,
        extra_models={},
        id_token_first_share=0.3,
        id_tokens=IdTokenPool(pattern="TOKEN{index:05d}", count=1000, type="ISO14443"),
        iso15118_share=1.0,
        min_soc=0.2,
        remote_start_plugin_delay_s=30,
    )
    assert (scenario.grid.nominal_hz, scenario.grid.events) == (50, ())


def test_station_ids_follow_the_pattern_from_the_first_index() -> None:
    stations = StationsSettings(count=3, first_index=7, id_pattern="site-a:{index:03d}")

    assert list(stations.station_indices) == [7, 8, 9]
    assert [stations.station_id(i) for i in stations.station_indices] == [
        "site-a:007",
        "site-a:008",
        "site-a:009",
    ]
    with pytest.raises(ValueError, match=r"station index 10 is outside 7\.\.9"):
        stations.station_id(10)


def test_id_tokens_are_numbered_from_one() -> None:
    tokens = IdTokenPool(pattern="RFID-{index}", count=2)

    assert [tokens.id_token(i) for i in tokens.indices] == ["RFID-1", "RFID-2"]
    with pytest.raises(ValueError, match=r"token index 0 is outside 1\.\.2"):
        tokens.id_token(0)


def test_a_scenario_cannot_be_changed_once_built() -> None:
    scenario = minimal()

    with pytest.raises(ValidationError, match="frozen"):
        scenario.stations.count = 5


def test_the_password_stays_out_of_the_repr() -> None:
    assert "hunter2hunter2" not in repr(minimal(csms={"password": "hunter2hunter2"}))


# --- loading ------------------------------------------------------------------------------------


FULL_SCENARIO = """\
name: everything set
description: every key, to check that a file reads back as written
seed: 7
speed: 60
duration_s: 120.5
start: "2026-01-15T06:00:00+01:00"
ocpp_version: "2.0.1"
csms:
  url: wss://csms.example:443/ocpp
  password_env: CSMS_PASSWORD
  security:
    profile: 3
    ca_file: certs/csms-ca.pem
    client_cert: certs/{station_id}.crt
    client_key: certs/{station_id}.key
  connect_timeout_s: 5
  call_timeout_s: 15
  validate_outgoing: false
  retry_backoff_wait_minimum_s: 1
  retry_backoff_random_range_s: 0
  retry_backoff_repeat_times: 0
stations:
  count: 250
  first_index: 0
  id_pattern: "DE*ACM*E{index:06d}"
  vendor: Acme
  model: AC-11
  firmware_version: "4.2.0"
  ramp_up_per_s: 25
  heartbeat_interval_s: 900
  meter_interval_s: 30
  tx_start_points: [PowerPathClosed]
  connector_status_report: both
  time_zone: Europe/Berlin
  log_upload: {duration_s: 45, failure_share: 0.1}
  payment_terminal: {authorization_amount: 40, decline_share: 0.05,
                     settlement_failure_share: 0.01}
  battery_swap: null
  evses:
    - {max_power_w: 11000, phases: 1, connectors: [cType2, sType2], supply: null,
       bidirectional: false}
    - max_power_w: 150000
      phases: 3
      connectors: [cCCS2]
      supply: DC
      bidirectional: true
  variables:
    OCPPCommCtrlr.MessageAttempts[TransactionEvent]: "5"
    DeviceDataCtrlr.ItemsPerMessage[GetReport]: "20"
  firmware:
    download_s: 90
    verify_s: 2
    install_s: 300
    download_failure_share: 0.04
    invalid_signature_share: 0.01
    install_failure_share: 0.03
    install_verification_failure_share: 0.02
    local_controller: false
sites:
  - name: depot
    kind: depot
    stations: 1
    capacity_kw: 300
    capacity_changes: [{at_s: 3600, capacity_kw: 150, is_grid_critical: true}]
    external_limits: true
    arrivals_per_evse_per_day: 1.5
    utc_offset_h: 1
    dwell_s: {min: 600, max: 600}
    soc_start: {min: 0.2, max: 0.3}
    target_soc: {min: 0.8, max: 0.9}
    loop_idle_s: null
  - name: street
    kind: public
    stations: null
    capacity_kw: null
    capacity_changes: []
    external_limits: false
    arrivals_per_evse_per_day: 4
    utc_offset_h: 0
    dwell_s: {min: 30, max: 60}
    soc_start: null
    target_soc: null
    loop_idle_s: {min: 5, max: 15}
ev_fleet:
  models: {vw-id3-pro-58kwh: 2, ford-e-transit-68kwh: 1}
  extra_models: {}
  id_token_first_share: 1
  id_tokens: {pattern: "04A{index:07X}", count: 50, type: ISO15693}
  id_token_types: {ISO14443: 3, eMAID: 1}
  stop_with_id_token_share: 0.5
  priority_button_share: 0.1
  payment: {card_share: 0.2, prepaid_share: 0.3, prepaid_balance: 15, vat_number_share: 0.1}
  iso15118_share: 0.5
  plug_and_charge_share: 0.25
  min_soc: 0.25
  remote_start_plugin_delay_s: null
grid:
  nominal_hz: 60
  sigma_hz: 0.02
  time_constant_s: 60
  sample_interval_s: 2
  events:
    - {at_s: 600, duration_s: 30, frequency_hz: 59.8, ramp_s: 1}
  der_events:
    - {at_s: 900, duration_s: 10, kind: UnderVoltage, value: 200}
embedded_csms:
  tx_limit_w: 7400
  v2x_operation_mode: CentralFrequency
  v2x_setpoint_w: -5000
  v2x_max_power_w: 11000
  deauthorize_share: 0.05
  remote_swap_share: 0.2
  reserve_share: 0.1
  reserve_ahead_s: {min: 300, max: 1800}
  reserve_for: connector_type
  reserve_grace_s: 600
  priority_share: 0.2
  charging_priority: 3
  local_list: {entries: 200, items_per_message: 50}
  display_message: {text: "Welcome: 0.39 EUR/kWh", language: de, id: 4}
  firmware_rollout:
    at_s: 3600
    share: 0.5
    location: "https://firmware.example.com/acme-4.3.0.bin"
    request_id: 12
    signed: true
    retries: 2
    retry_interval_s: 120
    install_after_s: 1800
    max_parallel: 50
  tx_default_profile:
    periods:
      - {at: "00:00", limit_w: 22000}
      - {at: "17:00", limit_w: 7400}
      - {at: "21:00", limit_w: 11000}
    id: 901
    stack_level: 1
  default_tariff: {currency: EUR, price_kwh: 0.39, price_minute: 0.02, idle_price_minute: 0.1,
                   fixed: 1.0}
  log_collection: {time_of_day: "03:30", share: 0.25, log_type: SecurityLog,
                   remote_location: "https://logs.example/upload"}
  der_control: {control_type: VoltWatt, curve: [[90, 40], [95, 100]], priority: 2,
                control_id: grid-vw, after_boot: false, on_alarm: true}
  web_payments: {every_s: 1800, station_share: 0.3, delay_s: 45, timeout_s: 240,
                 abandon_share: 0.15}
  priority_charging: {limit_w: 22000, id: 911, share: 0.1, driver_requests: refuse}
  dynamic_profile:
    curve:
      - {at: "00:00", limit_w: 11000}
      - {at: "18:00", limit_w: 4000}
    update_interval_s: 600
    pull_interval_s: 1800
    id: 921
    stack_level: 2
  afrr:
    from_grid_events: false
    full_activation_hz: 0.1
    signals:
      - {at_s: 7200, signal: 80}
      - {at_s: 7800, signal: 0}
faults:
  - {kind: drop, at: "+30m", for: null, share: 0.1, rate_per_station_hour: null}
  - {kind: drop, at: "07:00", for: 1h, share: 1, rate_per_station_hour: 0.5}
  - {kind: partition, at: "08:00", for: 10m, share: 0.2}
  - {kind: storm, at: "2026-01-15T09:00:00+01:00", share: 1}
  - {kind: slow, at: 3600, for: 600, share: 0.1, delay_s: 2.5}
  - {kind: stuck, at: null, for: null, share: 0.05}
  - {kind: clock_drift, at: "+1h", share: 0.1, drift_s_per_day: -30}
  - {kind: power_cut, site: depot, at: "+2h", for: 5m}
  - {kind: malformed, at: null, for: null, share: 0.5, rate_per_station_hour: 2}
  - {kind: duplicate_id, at: "+10m", for: 20m, share: 0.5, rate_per_station_hour: 1}
metrics_port: 9464
thresholds:
  - {expr: "p99_ms{action=BootNotification} < 500", abort_on_fail: false, delay_abort_eval_s: 0}
  - {expr: "error_rate < 0.01", abort_on_fail: true, delay_abort_eval_s: 30}
"""


def test_a_scenario_file_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "full.yaml"
    path.write_text(FULL_SCENARIO, encoding="utf-8")

    scenario = load_scenario(path)

    assert scenario.start == dt.datetime(2026, 1, 15, 5, 0, tzinfo=dt.UTC)
    assert scenario.csms.url == "wss://csms.example:443/ocpp"
    assert scenario.stations.station_id(0) == "DE*ACM*E000000"
    assert scenario.stations.evses[0] == EvseSpec(
        max_power_w=11_000, phases=1, connectors=("cType2", "sType2")
    )
    assert scenario.ev_fleet.id_tokens.id_token(50) == "04A0000032"
    assert scenario.ev_fleet.remote_start_plugin_delay_s is None
    assert [(site.name, indices) for site, indices in scenario.site_layout()] == [
        ("depot", range(0, 1)),
        ("street", range(1, scenario.stations.count)),
    ]
    written = yaml.safe_load(FULL_SCENARIO)
    assert scenario.model_dump(mode="json") == written | {
        "csms": written["csms"] | {"password": None}
    }
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(scenario.model_dump(mode="json")), encoding="utf-8")
    assert load_scenario(again) == scenario


def test_the_json_schema_accepts_the_example_scenarios_and_rejects_unknown_keys() -> None:
    validator = jsonschema_rs.validator_for(scenario_json_schema())

    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert validator.is_valid(yaml.safe_load(path.read_text(encoding="utf-8"))), path
    assert validator.is_valid(yaml.safe_load(FULL_SCENARIO))
    assert not validator.is_valid({"name": "t", "stations": {"count": 1, "cout": 1}})


def test_a_missing_key_is_reported_at_the_key_of_its_section(problems: Load) -> None:
    assert problems(
        """
        # comment lines count too
        speed: 2
        stations:
          vendor: acme
        """
    ) == [
        "s.yaml:2 name: Field required",
        "s.yaml:3 stations.count: Field required",
    ]


def test_an_unknown_key_is_reported_on_its_own_line_with_the_keys_allowed_there(
    problems: Load,
) -> None:
    assert problems(
        """
        name: t
        stations:
          count: 1
          evses:
            - max_power_w: 7400
              conectors: [cType2]
        criteria: {}
        """
    ) == [
        "s.yaml:6 stations.evses[0].conectors: unknown key; did you mean connectors?",
        "s.yaml:7 criteria: unknown key; expected one of name, description, seed, speed, "
        "duration_s, start, ocpp_version, csms, stations, sites, ev_fleet, grid, embedded_csms, "
        "faults, metrics_port, thresholds",
    ]


def test_errors_in_flow_style_and_in_lists_point_at_their_lines(problems: Load) -> None:
    assert problems(
        """
        name: t
        stations:
          count: 1
          tx_start_points:
            - EVConnected
            - Plugged
          evses: [{phases: 2}]
        """
    ) == [
        "s.yaml:6 stations.tx_start_points[1]: Input should be 'EVConnected', 'Authorized' or "
        "'PowerPathClosed'",
        "s.yaml:7 stations.evses[0].phases: Input should be 1 or 3",
    ]


def test_a_repeated_key_is_an_error_rather_than_silently_overwritten(problems: Load) -> None:
    assert problems(
        """
        name: t
        stations:
          count: 1
          count: 2
        """
    ) == [
        "s.yaml:4 stations.count: duplicate key (first given at line 3); YAML keeps only the "
        "last, so remove one"
    ]


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: t
            stations:
              count: 1
              evses:
                - &ac {max_power_w: 11000, phases: 3}
                - {<<: *ac, phases: 1}
            """
        ),
        encoding="utf-8",
    )

    evses = load_scenario(path).stations.evses

    assert [(evse.max_power_w, evse.phases) for evse in evses] == [(11_000, 3), (11_000, 1)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "s.yaml: the file is empty; a scenario needs at least name and stations"),
        pytest.param(
            "# only a comment\n- name: t\n",
            "s.yaml:2 the scenario must be a mapping of keys (name: ..., stations: ...), "
            "not a list",
        ),
        pytest.param(
            "name: t\n---\nname: u\n",
            "s.yaml:2 invalid YAML at column 1: expected a single document in the stream, "
            "but found another document",
            id="two documents",
        ),
        pytest.param(
            "name: [t\n",
            "s.yaml:2 invalid YAML at column 1: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence that starts at line 1)",
            id="unclosed list",
        ),
        pytest.param(
            "name: !!python/object/apply:os.system [true]\n",
            "s.yaml:1 invalid YAML at column 7: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'",
            id="python tag",
        ),
    ],
)
def test_a_file_that_is_not_a_scenario_mapping_is_reported(
    problems: Load, text: str, expected: str
) -> None:
    assert problems(text) == [expected]


def test_a_directory_is_not_a_scenario(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a directory, not a scenario file"):
        load_scenario(tmp_path)


# --- validators ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_lines", "expected"),
    [
        pytest.param(
            "speed: 0",
            "s.yaml:3 speed: Input should be greater than 0",
            id="speed",
        ),
        pytest.param(
            "speed: .inf",
            "s.yaml:3 speed: Input should be a finite number",
            id="infinite speed",
        ),
        pytest.param(
            "duration_s: -5",
            "s.yaml:3 duration_s: Input should be greater than 0",
            id="duration",
        ),
        pytest.param(
            "start: 2026-01-15 06:00:00",
            "s.yaml:3 start: 2026-01-15T06:00:00 has no time zone; add Z for UTC "
            "(2026-01-15T06:00:00Z) or an offset such as +01:00",
            id="naive start",
        ),
        pytest.param(
            "metrics_port: 70000",
            "s.yaml:3 metrics_port: Input should be less than or equal to 65535",
            id="metrics port",
        ),
        pytest.param(
            "ocpp_version: '1.6'",
            "s.yaml:3 ocpp_version: Input should be '2.1' or '2.0.1'",
            id="ocpp version",
        ),
        pytest.param(
            "csms: {url: 'http://localhost:9000/ocpp'}",
            "s.yaml:3 csms.url: 'http://localhost:9000/ocpp' must start with ws:// or wss://, "
            "because OCPP-J runs over WebSocket; did you mean ws://localhost:9000/ocpp?",
            id="http url",
        ),
        pytest.param(
            "csms: {url: 'localhost:9000'}",
            "s.yaml:3 csms.url: 'localhost:9000' must start with ws:// or wss://, because "
            "OCPP-J runs over WebSocket",
            id="url without scheme",
        ),
        pytest.param(
            "csms: {url: 'ws:///ocpp'}",
            "s.yaml:3 csms.url: 'ws:///ocpp' has no host; write it as ws://host:port/path",
            id="url without host",
        ),
        pytest.param(
            "csms: {url: 'ws://h/ocpp?x=1'}",
            "s.yaml:3 csms.url: 'ws://h/ocpp?x=1' has a query or fragment; stations append "
            "/<station id> to the URL, so it must end with the path",
            id="url with query",
        ),
        pytest.param(
            "csms: {password: pw, password_env: PW}",
            "s.yaml:3 csms.password_env: give either password or password_env, not both",
            id="two password sources",
        ),
        pytest.param(
            "csms: {call_timeout_s: 0}",
            "s.yaml:3 csms.call_timeout_s: Input should be greater than 0",
            id="call timeout",
        ),
        pytest.param(
            "sites: [{name: a, dwell_s: {min: 500, max: 100}}]",
            "s.yaml:3 sites[0].dwell_s.max: max (100) is below min (500); swap them",
            id="range upside down",
        ),
        pytest.param(
            "sites: [{name: a, dwell_s: {min: 0, max: 100}}]",
            "s.yaml:3 sites[0].dwell_s.min: Input should be greater than 0",
            id="range not positive",
        ),
        pytest.param(
            "sites: [{name: a, soc_start: {min: 0.5, max: 1.2}}]",
            "s.yaml:3 sites[0].soc_start.max: Input should be less than or equal to 1",
            id="soc above 1",
        ),
        pytest.param(
            "ev_fleet: {id_token_first_share: 1.5}",
            "s.yaml:3 ev_fleet.id_token_first_share: Input should be less than or equal to 1",
            id="share above 1",
        ),
        pytest.param(
            "ev_fleet: {id_tokens: {pattern: TOKEN}}",
            "s.yaml:3 ev_fleet.id_tokens.pattern: 'TOKEN' must contain {index} so that the "
            "tokens differ, e.g. 'TOKEN{index:05d}'",
            id="token pattern",
        ),
        pytest.param(
            "ev_fleet: {id_tokens: {pattern: 'T{index:.0e}', count: 20}}",
            "s.yaml:3 ev_fleet.id_tokens.pattern: tokens 10 and 11 would both be 'T1e+01'; "
            "write the index so that every number shows, e.g. {index:05d}",
            id="tokens repeat",
        ),
        pytest.param(
            "ev_fleet: {id_tokens: {pattern: 'T{index:0300d}'}}",
            "s.yaml:3 ev_fleet.id_tokens.pattern: token 'T"
            + "0" * 299
            + "1' has 301 characters; OCPP 2.1 allows at most 255",
            id="token too long",
        ),
    ],
)
def test_each_rule_names_the_field_and_what_to_fix(
    problems: Load, yaml_lines: str, expected: str
) -> None:
    assert problems(f"name: t\nstations: {{count: 2}}\n{yaml_lines}\n") == [expected]


@pytest.mark.parametrize(
    ("stations_lines", "expected"),
    [
        pytest.param(
            "count: 0",
            "stations.count: Input should be greater than or equal to 1",
            id="no stations",
        ),
        pytest.param(
            "count: 2\n  id_pattern: CP",
            "stations.id_pattern: 'CP' must contain {index} so that the station ids differ, "
            "e.g. 'CP{index:05d}'",
            id="no index",
        ),
        pytest.param(
            "count: 2\n  id_pattern: '{site}-{index}'",
            "stations.id_pattern: '{site}-{index}' may only use {index}, not {site}",
            id="other field",
        ),
        pytest.param(
            "count: 2\n  id_pattern: 'CP{index:q}'",
            "stations.id_pattern: 'CP{index:q}' does not format a number (Unknown format code "
            "'q' for object of type 'int'); write it as {index} or a number format such as "
            "{index:05d}",
            id="bad format spec",
        ),
        pytest.param(
            "count: 2\n  id_pattern: 'CP{index'",
            "stations.id_pattern: 'CP{index' is not a valid format string (expected '}' before "
            "end of string); write a literal brace as {{ or }}, e.g. 'CP{index:05d}'",
            id="unbalanced brace",
        ),
        pytest.param(
            "count: 12\n  id_pattern: 'CP{index:.0e}'",
            "stations.id_pattern: stations 10 and 11 would both be 'CP1e+01'; write the index "
            "so that every number shows, e.g. {index:05d}",
            id="ids repeat",
        ),
        pytest.param(
            "count: 2\n  id_pattern: 'CP {index}/x'",
            "stations.id_pattern: station ids would contain ' ' '/'; use letters, digits and "
            "* - _ = : + @ .",
            id="not URL safe",
        ),
        pytest.param(
            "count: 2\n  id_pattern: 'CP{index:048d}'",
            "stations.id_pattern: station id 'CP"
            + "0" * 47
            + "1' has 50 characters; OCPP-J allows at most 48",
            id="id too long",
        ),
        pytest.param(
            "count: 2\n  model: 'a model name longer than twenty'",
            "stations.model: String should have at most 20 characters",
            id="model too long",
        ),
        pytest.param(
            "count: 2\n  tx_start_points: [Authorized, Authorized]",
            "stations.tx_start_points: Authorized is listed more than once",
            id="start point twice",
        ),
        pytest.param(
            "count: 2\n  tx_start_points: []",
            "stations.tx_start_points: List should have at least 1 item, not 0",
            id="no start point",
        ),
        pytest.param(
            "count: 2\n  evses: []",
            "stations.evses: List should have at least 1 item, not 0",
            id="no EVSE",
        ),
        pytest.param(
            "count: 2\n  evses: [{connectors: cType2}]",
            "stations.evses[0].connectors: Input should be a list",
            id="connector not in a list",
        ),
        pytest.param(
            "count: 2\n  evses: [{connectors: []}]",
            "stations.evses[0].connectors: List should have at least 1 item, not 0",
            id="no connector",
        ),
        pytest.param(
            "count: 2\n  heartbeat_interval_s: 0.5",
            "stations.heartbeat_interval_s: Input should be a valid integer, got a number with "
            "a fractional part",
            id="fractional heartbeat",
        ),
    ],
)
def test_each_station_rule_names_the_field_and_what_to_fix(
    problems: Load, stations_lines: str, expected: str
) -> None:
    (problem,) = problems(f"name: t\nstations:\n  {stations_lines}\n")

    assert problem.split(" ", 1)[1] == expected


def test_ocpp_201_rejects_what_only_21_defines(problems: Load) -> None:
    assert problems(
        """
        name: t
        ocpp_version: "2.0.1"
        stations:
          count: 1
          evses:
            - connectors: [cCCS2]
            - connectors: [cType2, cNACS]
        ev_fleet:
          id_tokens: {type: DirectPayment, pattern: 'T{index:040d}'}
        """
    ) == [
        "s.yaml:7 stations.evses[1].connectors[1]: cNACS is new in OCPP 2.1; use ocpp_version "
        "2.1 or a connector type of OCPP 2.0.1",
        "s.yaml:9 ev_fleet.id_tokens.type: OCPP 2.0.1 has no IdToken type 'DirectPayment'; use "
        "one of Central, ISO14443, ISO15693, KeyCode, Local, MacAddress, NoAuthorization, eMAID",
        "s.yaml:9 ev_fleet.id_tokens.pattern: token 'T"
        + "0" * 39
        + "1' has 41 characters; OCPP 2.0.1 allows at most 36",
    ]


# --- overrides ----------------------------------------------------------------------------------


def test_command_line_values_override_the_file() -> None:
    scenario = minimal(csms={"url": "ws://a/ocpp", "password": "pw"})

    changed = scenario.with_overrides(
        stations=500,
        duration_s=30,
        speed=60,
        seed=9,
        ocpp_version="2.0.1",
        csms_url="wss://b/ocpp",
        metrics_port=9464,
    )

    assert (changed.stations.count, changed.duration_s, changed.speed, changed.seed) == (
        500,
        30,
        60,
        9,
    )
    assert (changed.ocpp_version, changed.csms.url, changed.metrics_port) == (
        "2.0.1",
        "wss://b/ocpp",
        9464,
    )
    assert changed.csms.password == "pw"
    assert scenario.stations.count == 2


def test_flags_that_were_not_given_change_nothing() -> None:
    scenario = minimal(speed=5, duration_s=10)

    assert scenario.with_overrides() == scenario
    assert scenario.with_overrides(speed=None, stations=None) == scenario


NOON = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)


def test_a_scenario_for_the_embedded_csms_runs_in_real_time_against_another() -> None:
    written = minimal(speed=10, start="2026-01-15T12:00:00Z")

    pointed = written.with_overrides(csms_url="ws://csms/ocpp")

    assert (pointed.speed, pointed.start, pointed.csms.url) == (1.0, None, "ws://csms/ocpp")
    # Against the embedded CSMS the scenario's clock holds.
    assert (written.with_overrides(stations=5).speed, written.start) == (10, NOON)


def test_speed_and_start_flags_win_over_the_real_time_default() -> None:
    written = minimal(speed=10, start="2026-01-15T12:00:00Z")

    kept = written.with_overrides(
        csms_url="ws://csms/ocpp", speed=10, start="2026-01-15T13:00:00+01:00"
    )
    assert (kept.speed, kept.start) == (10, NOON)
    assert written.with_overrides(start="now").start is None


def test_a_scenario_that_names_its_csms_keeps_its_speed_and_start() -> None:
    written = minimal(csms={"url": "ws://a/ocpp"}, speed=30, start="2026-01-15T12:00:00Z")

    pointed = written.with_overrides(csms_url="ws://b/ocpp")

    assert (pointed.speed, pointed.start, pointed.csms.url) == (30, NOON, "ws://b/ocpp")


def test_the_stations_time_zone_must_be_one_the_system_knows() -> None:
    assert minimal().stations.time_zone == "UTC"
    assert minimal(stations={"count": 1, "time_zone": "Europe/Berlin"}).stations.time_zone == (
        "Europe/Berlin"
    )
    with pytest.raises(ValidationError, match="'Mars/Olympus' is not an IANA time zone"):
        minimal(stations={"count": 1, "time_zone": "Mars/Olympus"})


def test_a_start_flag_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ScenarioError) as caught:
        minimal().with_overrides(start="2026-01-15T12:00:00")

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("command line: start: ")
    assert "2026-01-15T12:00:00Z" in caught.value.problems[0]


def test_overrides_are_validated_with_the_rest_of_the_scenario() -> None:
    scenario = minimal(stations={"count": 5, "id_pattern": "X" * 45 + "{index}"})

    with pytest.raises(ScenarioError) as caught:
        scenario.with_overrides(stations=1000, speed=0, csms_url="http://x")

    assert caught.value.problems == (
        "command line: speed: Input should be greater than 0",
        "command line: csms.url: 'http://x' must start with ws:// or wss://, because OCPP-J "
        "runs over WebSocket; did you mean ws://x?",
        "command line: stations.id_pattern: station id '"
        + "X" * 45
        + "1000' has 49 characters; OCPP-J allows at most 48",
    )


def test_an_ocpp_version_override_checks_the_connectors_again() -> None:
    scenario = minimal(stations={"count": 1, "evses": [{"connectors": ["cMCS"]}]})

    with pytest.raises(ScenarioError) as caught:
        scenario.with_overrides(ocpp_version="2.0.1")

    assert caught.value.problems == (
        "command line: stations.evses[0].connectors[0]: cMCS is new in OCPP 2.1; use "
        "ocpp_version 2.1 or a connector type of OCPP 2.0.1",
    )


# --- passwords ----------------------------------------------------------------------------------


def test_the_password_comes_from_the_scenario_or_from_the_named_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEETSIM_TEST_PASSWORD", "s3cret-from-env")

    assert minimal().resolved_password() is None
    assert minimal(csms={"password": "inline"}).resolved_password() == "inline"
    from_env = minimal(csms={"password_env": "FLEETSIM_TEST_PASSWORD"})
    assert from_env.resolved_password() == "s3cret-from-env"
    assert from_env.csms.password is None


@pytest.mark.parametrize(("value", "state"), [(None, "is not set"), ("", "is empty")])
def test_an_unset_password_variable_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, value: str | None, state: str
) -> None:
    if value is None:
        monkeypatch.delenv("FLEETSIM_TEST_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("FLEETSIM_TEST_PASSWORD", value)
    scenario = minimal(csms={"password_env": "FLEETSIM_TEST_PASSWORD"})

    with pytest.raises(ScenarioError) as caught:
        scenario.resolved_password()

    assert str(caught.value) == (
        f"csms.password_env: the environment variable FLEETSIM_TEST_PASSWORD {state}; export "
        "it with the CSMS password (export FLEETSIM_TEST_PASSWORD=...) or remove password_env"
    )
