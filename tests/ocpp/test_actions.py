"""The direction tables of `actions.py` agree with the schema files the `ocpp` package ships."""

from __future__ import annotations

import contextlib
from typing import Literal

import pytest

from fleetsim.simulator.ocpp import OCPP_VERSIONS, OcppVersion, RpcError, schema_set
from fleetsim.simulator.ocpp.actions import (
    CSMS_INITIATED,
    OCPP_201_ACTIONS_MISSING,
    SEND_ONLY,
    STATION_INITIATED,
)

Kind = Literal["Request", "Response"]

ACTIONS_21 = schema_set("2.1").actions
ACTIONS_201 = schema_set("2.0.1").actions


def test_every_21_action_has_a_direction() -> None:
    missing = ACTIONS_21 - (STATION_INITIATED | CSMS_INITIATED)
    assert not missing, f"actions.py gives no direction for {sorted(missing)}"


def test_every_action_with_a_direction_has_a_21_schema() -> None:
    extra = (STATION_INITIATED | CSMS_INITIATED) - ACTIONS_21
    assert not extra, f"actions.py names actions OCPP 2.1 does not have: {sorted(extra)}"


def test_data_transfer_is_the_one_action_both_sides_start() -> None:
    both_sides = STATION_INITIATED & CSMS_INITIATED
    assert both_sides == {"DataTransfer"}


def test_send_only_actions_are_station_initiated_and_have_no_response_schema() -> None:
    assert SEND_ONLY <= STATION_INITIATED
    for action in SEND_ONLY:
        assert schema_set("2.1").has(action, "Request")
        assert not schema_set("2.1").has(action, "Response")


def test_every_other_action_has_a_request_and_a_response_schema() -> None:
    schemas = schema_set("2.1")
    incomplete = [
        action
        for action in sorted(ACTIONS_21 - SEND_ONLY)
        if not (schemas.has(action, "Request") and schemas.has(action, "Response"))
    ]
    assert not incomplete


def test_ocpp_201_actions_missing_is_what_21_added() -> None:
    assert ACTIONS_21 - ACTIONS_201 == OCPP_201_ACTIONS_MISSING


def test_ocpp_201_has_no_action_that_21_dropped() -> None:
    assert not ACTIONS_201 - ACTIONS_21


def _schema_files(version: OcppVersion) -> list[tuple[str, Kind]]:
    schemas = schema_set(version)
    kinds: tuple[Kind, ...] = ("Request", "Response")
    return [
        (action, kind)
        for action in sorted(schemas.actions)
        for kind in kinds
        if schemas.has(action, kind)
    ]


@pytest.mark.parametrize(
    ("version", "action", "kind"),
    [
        (version, action, kind)
        for version in OCPP_VERSIONS
        for action, kind in _schema_files(version)
    ],
    ids=str,
)
def test_each_schema_file_compiles_and_judges_a_payload(
    version: OcppVersion, action: str, kind: Kind
) -> None:
    # RpcError means the schema compiled and found the empty payload wanting; anything else
    # (a schema that does not compile, a file that is not JSON) fails the test.
    with contextlib.suppress(RpcError):
        schema_set(version).validate(action, kind, {})
