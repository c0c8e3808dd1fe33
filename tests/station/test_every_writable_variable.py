"""Every writable variable, set over OCPP, either changes what the station acts on or is refused.

The walk sets each writable variable of the device model to a valid value other than the one in
effect, through SetVariables, and reads it back the way station code reads it (`integer`,
`boolean`, `members`, `get`): Accepted means the acting code sees the new value at once,
RebootRequired means it sees the old one until the next reboot and the new one after it, and
Rejected must say why.  `test_honest_variables` proves that each of these reads is in station
code; the behaviour each one drives has its own test in the block's test file.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from simulator.ocpp import OcppVersion
from simulator.station import EvseConfig, StationConfig
from simulator.station.device_model import DeviceModel, VariableSpec
from tests.helpers import STATION_ID, station_on_memory_link


def other_value(spec: VariableSpec, current: str) -> str:
    """A valid value of `spec` that is not `current`."""
    if spec.data_type == "boolean":
        return "false" if current == "true" else "true"
    if spec.data_type in ("integer", "decimal"):
        number = int(float(current or "0")) + 1
        if spec.max_limit is not None and number > spec.max_limit:
            number = int(spec.min_limit or 0)
        return str(number)
    if spec.data_type == "OptionList":
        return next(value for value in spec.values_list if value != current)
    if spec.data_type in ("MemberList", "SequenceList"):
        first = spec.values_list[-1] if current != spec.values_list[-1] else spec.values_list[0]
        return first
    return f"{current}-changed"


def as_read(model: DeviceModel, spec: VariableSpec) -> Any:
    """The value as station code reads it."""
    instance = spec.variable_instance
    if spec.data_type == "integer":
        return model.integer(spec.component, spec.variable, instance)
    if spec.data_type == "boolean":
        return model.boolean(spec.component, spec.variable)
    if spec.data_type in ("MemberList", "SequenceList"):
        return model.members(spec.component, spec.variable)
    return model.get(spec.component, spec.variable, variable_instance=instance)


def parsed(spec: VariableSpec, value: str) -> Any:
    if spec.data_type == "integer":
        return int(value)
    if spec.data_type == "boolean":
        return value == "true"
    if spec.data_type in ("MemberList", "SequenceList"):
        return tuple(member for member in value.split(",") if member)
    return value


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_every_writable_variable_changes_what_the_station_acts_on_or_is_refused(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(EvseConfig(), EvseConfig()))
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        model = station.device_model
        writable = [
            spec
            for spec in model.spec.variables
            if spec.mutability != "ReadOnly" and spec.reader is None
        ]
        assert len(writable) > 20
        # A profile in slot 2, so that a priority naming it can be set (and wait for a reboot).
        profile = await csms.call(
            STATION_ID,
            "SetNetworkProfile",
            {
                "configurationSlot": 2,
                "connectionData": {
                    "ocppVersion": "OCPP20" if version == "2.0.1" else "OCPP21",
                    "ocppTransport": "JSON",
                    "ocppInterface": "Wired0",
                    "ocppCsmsUrl": "ws://127.0.0.1:9000/ocpp",
                    "messageTimeout": round(config.message_timeout_s),
                    "securityProfile": station.security_profile,
                },
            },
        )
        assert profile["status"] == "Accepted"
        waiting: list[tuple[VariableSpec, str]] = []
        for spec in writable:
            before = model.value(spec)
            value = other_value(spec, before)
            assert spec.check_value(value) is None, (spec.key, value)
            item: dict[str, Any] = {
                "component": spec.component_json(),
                "variable": spec.variable_json(),
                "attributeValue": value,
            }
            answer = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [item]})
            result = answer["setVariableResult"][0]
            status = result["attributeStatus"]
            name = f"{spec.component}.{spec.variable}"
            if status == "Accepted":
                assert as_read(model, spec) == parsed(spec, value), name
            elif status == "RebootRequired":
                assert spec.reboot_required, name
                assert as_read(model, spec) == parsed(spec, before), name
                waiting.append((spec, value))
            else:
                assert status == "Rejected", (name, status)
                assert result["attributeStatusInfo"]["additionalInfo"], name
                assert as_read(model, spec) == parsed(spec, before), name
        assert [spec.variable for spec, _ in waiting] == ["NetworkConfigurationPriority"]
        if waiting:
            seen = csms.station(STATION_ID).messages_received
            assert (await csms.call(STATION_ID, "Reset", {"type": "Immediate"}))[
                "status"
            ] == "Accepted"
            with trio.fail_after(600):
                await csms.wait_for_message(STATION_ID, "BootNotification", since=seen)
            for spec, value in waiting:
                assert as_read(model, spec) == parsed(spec, value), spec.key
