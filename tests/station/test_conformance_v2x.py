"""Conformance rows of block Q, V2X (OCPP 2.1 only): NotifyAllowedEnergyTransfer and AFRRSignal
in the states that change their answer, with what follows."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station.blocks.v2x import BLOCK
from tests.station.conformance import (
    IN_FIVE_MINUTES,
    ONLY_21,
    Outcome,
    Row,
    cases,
    request,
    run_row,
    with_transaction,
)


async def restricted_to_charging(outcome: Outcome) -> None:
    """A charging-only list stored: a V2X setpoint the CSMS sends now is refused its discharge
    (the transaction stays ChargingOnly: no OperationModeChanged, import goes on)."""
    transaction_id = outcome.request["transactionId"]
    answer = await outcome.csms.call(
        "CP00001",
        "SetChargingProfile",
        {
            "evseId": 1,
            "chargingProfile": {
                "id": 77,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "transactionId": transaction_id,
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [
                            {
                                "startPeriod": 0,
                                "operationMode": "CentralSetpoint",
                                "setpoint": -5000,
                            }
                        ],
                    }
                ],
            },
        },
    )
    assert answer["status"] == "Accepted"
    session = outcome.station.evses[0].session
    assert session is not None and session.power_w >= 0
    transaction = outcome.station.evses[0].transaction
    assert transaction is not None and transaction.operation_mode is None


async def signal_stored(outcome: Outcome) -> None:
    state = outcome.station.peek_block_state(_v2x_block())
    assert state is not None and [level for _, level in state.signals] == [10]


def _v2x_block() -> Any:
    return BLOCK


ROWS: list[Row] = [
    Row(
        "NotifyAllowedEnergyTransfer",
        "no such transaction",
        request({"transactionId": "not-running", "allowedEnergyTransfer": ["AC_BPT"]}),
        "Rejected",
        reason="TxNotFound",
        versions=ONLY_21,
    ),
    Row(
        "NotifyAllowedEnergyTransfer",
        "transaction running",
        with_transaction(
            lambda transaction_id: {
                "transactionId": transaction_id,
                "allowedEnergyTransfer": ["AC_three_phase"],
            }
        ),
        "Accepted",
        then=restricted_to_charging,
        versions=ONLY_21,
    ),
    Row(
        "AFRRSignal",
        "idle",
        request({"timestamp": IN_FIVE_MINUTES, "signal": 10}),
        "Accepted",
        then=signal_stored,
        versions=ONLY_21,
    ),
]


@pytest.mark.parametrize(("row", "version"), cases(ROWS))
async def test_action_in_state(autojump_clock: MockClock, row: Row, version: OcppVersion) -> None:
    await run_row(row, version)
