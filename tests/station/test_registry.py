"""The block registry: every block's claims are unique, real OCPP 2.1, and merged once."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest

from fleetsim.simulator.link import Answer
from fleetsim.simulator.ocpp import CSMS_INITIATED
from fleetsim.simulator.station import StationConfig
from fleetsim.simulator.station.blocks import BLOCKS
from fleetsim.simulator.station.core import ActiveLimit, Block, Event, StationCore, TriggerTarget
from fleetsim.simulator.station.device_model import VariableSpec
from fleetsim.simulator.station.evse import Evse
from fleetsim.simulator.station.registry import (
    Registry,
    RegistryError,
    default_registry,
    station_spec,
)


def _trigger_enum() -> set[str]:
    schema = resources.files("ocpp") / "v21" / "schemas" / "TriggerMessageRequest.json"
    definitions: dict[str, Any] = json.loads(schema.read_text())["definitions"]
    return set(definitions["MessageTriggerEnumType"]["enum"])


def _answer(station: StationCore, payload: Any) -> Answer:
    return Answer({"status": "Accepted"})


def _trigger(station: StationCore, target: TriggerTarget) -> Answer:
    return Answer({"status": "Accepted"})


def test_every_claimed_action_is_a_csms_initiated_action_of_2_1() -> None:
    claimed = {action for block in BLOCKS for action in block.handlers}
    assert claimed <= CSMS_INITIATED, sorted(claimed - CSMS_INITIATED)


def test_every_trigger_is_a_requested_message_of_2_1() -> None:
    triggers = set(default_registry().triggers)
    assert triggers <= _trigger_enum(), sorted(triggers - _trigger_enum())


def test_blocks_are_named_once_with_their_letter_and_react_to_events() -> None:
    names = [block.name for block in BLOCKS]
    assert len(names) == len(set(names))
    for block in BLOCKS:
        assert len(block.letter) == 1 and block.letter.isupper(), block.name
        assert all(issubclass(kind, Event) for kind in block.reactions), block.name
        assert set(block.follow_ups) <= set(block.handlers), block.name


def test_the_device_model_of_every_block_merges_without_a_variable_defined_twice() -> None:
    spec = station_spec(StationConfig()).device_model
    keys = [variable.key for variable in spec.variables]
    assert len(keys) == len(set(keys))
    assert station_spec(StationConfig()) is station_spec(StationConfig())


def test_two_blocks_claiming_one_action_are_refused() -> None:
    first = Block(letter="X", name="first", handlers={"Reset": _answer})
    second = Block(letter="Y", name="second", handlers={"Reset": _answer})
    with pytest.raises(RegistryError, match="Reset is claimed by block first"):
        Registry.merge([first, second])


def test_two_blocks_claiming_one_trigger_or_hook_are_refused() -> None:
    first = Block(letter="X", name="first", triggers={"Heartbeat": _trigger})
    second = Block(letter="Y", name="second", triggers={"Heartbeat": _trigger})
    with pytest.raises(RegistryError, match="TriggerMessage Heartbeat"):
        Registry.merge([first, second])
    limit = default_registry().hooks["charging_limit"]
    with pytest.raises(RegistryError, match="charging_limit hook"):
        Registry.merge(
            [
                Block(letter="X", name="first", charging_limit=limit),
                Block(letter="Y", name="second", charging_limit=limit),
            ]
        )


def test_several_blocks_shape_the_charging_limit_in_the_registry_order() -> None:
    def halve(station: StationCore, evse: Evse, limit: ActiveLimit) -> ActiveLimit:
        return replace(limit, limit_w=(limit.limit_w or 0.0) / 2)

    def cap(station: StationCore, evse: Evse, limit: ActiveLimit) -> ActiveLimit:
        return replace(limit, limit_w=min(limit.limit_w or 0.0, 1000.0))

    registry = Registry.merge(
        [
            *BLOCKS,
            Block(letter="X", name="halve", shape_limit=halve),
            Block(letter="Y", name="cap", shape_limit=cap),
        ]
    )
    assert registry.limit_shapers[-2:] == ((None, halve), (None, cap))
    limit = ActiveLimit(limit_w=4000.0)
    for _, shape in registry.limit_shapers[-2:]:
        limit = shape(None, None, limit)  # type: ignore[arg-type]
    assert limit.limit_w == 1000.0


def test_two_blocks_declaring_one_variable_are_refused() -> None:
    def variables(config: StationConfig) -> list[VariableSpec]:
        return [VariableSpec("OCPPCommCtrlr", "HeartbeatInterval", "integer", "60")]

    registry = Registry.merge([*BLOCKS, Block(letter="X", name="extra", variables=variables)])
    with pytest.raises(RegistryError, match="declared by block provisioning and by block extra"):
        registry.variables(StationConfig())


def test_each_hook_of_the_station_has_a_provider() -> None:
    assert set(default_registry().hooks) == {
        "register",
        "online",
        "authorize",
        "admit",
        "use_reservation",
        "local_id_token_info",
        "cached_id_token_info",
        "charging_limit",
        "stop_authority",
        "charging_profile_refusal",
        "network_profile",
        "transaction_cost",
        "cost_details",
        "cost_reached_s",
        "pay_ad_hoc",
        "plug_and_charge",
        "holds_certificate",
    }
