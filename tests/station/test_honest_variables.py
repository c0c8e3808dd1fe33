"""Every variable is honest: one the CSMS may write is one that station code reads.

A writable variable that nothing reads would take a SetVariables Accepted and change nothing.
The scan reads the station's source with `ast` and collects every typed read of the device
model (`integer`, `boolean`, `members`, `get`) whose component and variable are written out;
each writable variable of the device model must be among them.  Read-only variables state facts
and need no reader, but those that follow the station's state must be read live.
"""

from __future__ import annotations

import ast
from pathlib import Path

from fleetsim.simulator.station import EvseConfig, StationConfig
from fleetsim.simulator.station.registry import station_spec

ROOT = Path(__file__).resolve().parents[2]
_READS = {"integer", "boolean", "members", "get"}


def reads_in(source: str) -> set[tuple[str, str]]:
    """(component, variable) of each device-model read in `source` written with literals."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _READS
            and len(node.args) >= 2
            and all(
                isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                for arg in node.args[:2]
            )
        ):
            component, variable = (arg.value for arg in node.args[:2])  # type: ignore[attr-defined]
            found.add((component, variable))
    return found


def station_reads() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in sorted((ROOT / "simulator").rglob("*.py")):
        found |= reads_in(path.read_text(encoding="utf-8"))
    return found


def test_every_writable_variable_is_read_by_station_code() -> None:
    config = StationConfig(evses=(EvseConfig(), EvseConfig(bidirectional=True)))
    reads = station_reads()
    unread = sorted(
        f"{spec.component}.{spec.variable}"
        for spec in station_spec(config).device_model.variables
        if spec.mutability != "ReadOnly"
        and spec.reader is None
        and (spec.component, spec.variable) not in reads
    )
    assert not unread, (
        "writable variables that no station code reads (make them ReadOnly with their true "
        "value, remove them, or act on them): " + ", ".join(unread)
    )


def test_the_scan_finds_reads_and_nothing_else() -> None:
    source = (
        'model.integer("OCPPCommCtrlr", "HeartbeatInterval")\n'
        'model.boolean("AuthCtrlr", "Enabled")\n'
        'VariableSpec("TxCtrlr", "StopTxOnInvalidId", "boolean", "true")\n'
        'model.members(component, "TxStartPoint")\n'
    )
    assert reads_in(source) == {("OCPPCommCtrlr", "HeartbeatInterval"), ("AuthCtrlr", "Enabled")}


def test_the_scan_sees_the_reads_of_the_station() -> None:
    reads = station_reads()
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in reads
    assert ("SampledDataCtrlr", "TxUpdatedInterval") in reads


def test_read_only_facts_track_the_connection() -> None:
    spec = station_spec(StationConfig(security_profile=2, message_timeout_s=12.0)).device_model
    by_name = {(v.component, v.variable): v for v in spec.variables}
    assert by_name[("SecurityCtrlr", "SecurityProfile")].reader is not None
    assert by_name[("OCPPCommCtrlr", "MessageTimeout")].reader is not None
