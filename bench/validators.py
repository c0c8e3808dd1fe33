"""Which JSON-schema validator fleetsim uses, and why: the cost of validating one message.

Validates the same TransactionEventRequest (three sampled values) against the official OCPP 2.1
schema with each validator installed, and prints microseconds per validation (median of 5
batches).  jsonschema and fastjsonschema are benchmark-only dependencies (`pip install
-e '.[bench]'`); jsonschema-rs is the one fleetsim ships with.

    python bench/validators.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from fleetsim.simulator.ocpp import schema_set

PAYLOAD = {
    "eventType": "Updated",
    "timestamp": "2026-01-15T06:00:00.000Z",
    "triggerReason": "MeterValuePeriodic",
    "seqNo": 3,
    "transactionInfo": {"transactionId": "CP00001-000001", "chargingState": "Charging"},
    "evse": {"id": 1, "connectorId": 1},
    "meterValue": [
        {
            "timestamp": "2026-01-15T06:00:00.000Z",
            "sampledValue": [
                {
                    "value": 1234.5,
                    "context": "Sample.Periodic",
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                },
                {"value": 7000.0, "measurand": "Power.Active.Import"},
                {"value": 55.0, "measurand": "SoC", "location": "EV"},
            ],
        }
    ],
}


def _time_us(validate: Callable[[Any], Any], batch: int) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(batch):
            validate(PAYLOAD)
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return statistics.median(samples)


def main() -> None:
    schema = schema_set("2.1").schema("TransactionEvent", "Request")
    candidates: list[tuple[str, Callable[[], Callable[[Any], Any]], int]] = []

    def rs() -> Callable[[Any], Any]:
        import jsonschema_rs

        return jsonschema_rs.validator_for(schema).validate  # type: ignore[no-any-return]

    def fast() -> Callable[[Any], Any]:
        import fastjsonschema

        return fastjsonschema.compile(schema)  # type: ignore[no-any-return]

    def python() -> Callable[[Any], Any]:
        import jsonschema

        validator = jsonschema.Draft6Validator(schema)
        return validator.validate

    candidates = [
        ("jsonschema-rs", rs, 20_000),
        ("fastjsonschema", fast, 5_000),
        ("jsonschema", python, 500),
    ]
    print(f"{'validator':<16} {'µs per TransactionEventRequest':>32}")
    for name, build, batch in candidates:
        try:
            validate = build()
        except ImportError:
            print(f"{name:<16} {'not installed':>32}")
            continue
        print(f"{name:<16} {_time_us(validate, batch):>32.1f}")


if __name__ == "__main__":
    main()
