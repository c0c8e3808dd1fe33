"""The device model's typed reads (`integer`, `boolean`, `members`) come from defaults
converted once for the whole fleet, unless a station has a value of its own; a station keeps
only the values that differ from the defaults."""

from __future__ import annotations

import pytest

from fleetsim.simulator.station import StationConfig
from fleetsim.simulator.station.device_model import DeviceModel
from fleetsim.simulator.station.registry import station_spec

HEARTBEAT = ("OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None)
MEASURANDS = ("SampledDataCtrlr", None, None, None, "TxUpdatedMeasurands", None)


class _Owner:
    """The live state that reader variables read."""

    def peek_block_state(self, block: object) -> None:
        return None

    def availability_state(self) -> str:
        return "Occupied"


def _models() -> tuple[DeviceModel, DeviceModel]:
    spec = station_spec(StationConfig(heartbeat_interval_s=60)).device_model
    return DeviceModel(spec, owner=_Owner()), DeviceModel(spec, owner=_Owner())


def test_typed_reads_of_defaults() -> None:
    model, _ = _models()
    assert model.integer("OCPPCommCtrlr", "HeartbeatInterval") == 60
    assert model.integer("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent") == 3
    assert model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled") is True
    assert model.boolean("AuthCtrlr", "LocalPreAuthorize") is False
    assert model.members("SampledDataCtrlr", "TxUpdatedMeasurands") == (
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "SoC",
    )


def test_a_written_value_wins_for_its_station_only() -> None:
    one, other = _models()
    assert one.integer("OCPPCommCtrlr", "HeartbeatInterval") == 60  # the default, now cached
    assert one.write(HEARTBEAT, "15").status == "Accepted"
    assert one.write(MEASURANDS, "SoC").status == "Accepted"
    assert one.integer("OCPPCommCtrlr", "HeartbeatInterval") == 15
    assert one.members("SampledDataCtrlr", "TxUpdatedMeasurands") == ("SoC",)
    assert other.integer("OCPPCommCtrlr", "HeartbeatInterval") == 60
    assert len(other.members("SampledDataCtrlr", "TxUpdatedMeasurands")) == 3
    assert one.write(HEARTBEAT, "60").status == "Accepted"  # back to the default
    assert HEARTBEAT not in one.changed


def test_store_keeps_only_what_differs_from_the_default() -> None:
    model, _ = _models()
    model.store(HEARTBEAT, "60")
    assert model.changed == {}
    model.store(HEARTBEAT, "300")
    assert model.changed == {HEARTBEAT: "300"}
    assert model.integer("OCPPCommCtrlr", "HeartbeatInterval") == 300
    with pytest.raises(KeyError):
        model.store(("Nope", None, None, None, "Nothing", None), "1")


def test_live_variables_are_read_live_and_unknown_ones_refused() -> None:
    model, _ = _models()
    assert model.get("ChargingStation", "AvailabilityState") == "Occupied"
    assert model.integer("SmartChargingCtrlr", "Entries", "ChargingProfiles") == 0
    with pytest.raises(KeyError):
        model.integer("OCPPCommCtrlr", "NoSuchVariable")
