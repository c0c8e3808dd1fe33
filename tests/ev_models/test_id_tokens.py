"""The IdTokens drivers carry: each type's format, distinct cards, drawn by share, and the
scenario's refusals of types a driver cannot hold or the chosen OCPP version lacks."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from fleetsim.ev_models import CARRIED_TYPES, id_token_value
from fleetsim.simulator.scenario import ScenarioError, load_scenario
from tests.ev_models.test_population import chain, process

FORMATS = {
    "ISO14443": r"04[0-9A-F]{12}",
    "ISO15693": r"E004[0-9A-F]{12}",
    "eMAID": r"[A-Z]{2}[A-Z0-9]{3}C[A-Z0-9]{8}",
    "KeyCode": r"[0-9]{6}",
    "Local": r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    "MacAddress": r"([0-9A-F]{2}:){5}[0-9A-F]{2}",
    "EVCCID": r"[0-9A-F]{12}",
    "VIN": r"[A-HJ-NPR-Z0-9]{8}[0-9X][A-HJ-NPR-Z0-9]{8}",
    "NoAuthorization": r"",
}
#: North American VIN check digit: transliteration and weights (ISO 3779 / 49 CFR 565).
_VALUES = dict(
    zip(
        "0123456789ABCDEFGHJKLMNPRSTUVWXYZ",
        [*range(10), *range(1, 9), *range(1, 6), 7, 9, *range(2, 10)],
        strict=True,
    )
)
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check_digit(vin: str) -> str:
    total = sum(_VALUES[char] * weight for char, weight in zip(vin, _WEIGHTS, strict=True)) % 11
    return "X" if total == 10 else str(total)


def test_every_carried_type_has_a_format() -> None:
    assert set(FORMATS) == CARRIED_TYPES


@pytest.mark.parametrize("token_type", sorted(FORMATS))
def test_each_type_looks_like_its_kind_and_every_card_differs(token_type: str) -> None:
    values = [id_token_value(token_type, index) for index in range(1, 2001)]
    for value in values[:50] + values[-50:]:
        assert re.fullmatch(FORMATS[token_type], value), value
        assert len(value) <= 36  # fits OCPP 2.0.1's idToken
    if token_type != "NoAuthorization":
        assert len(set(values)) == len(values)
    assert id_token_value(token_type, 42) == id_token_value(token_type, 42)


def test_a_vin_carries_its_check_digit() -> None:
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"  # a published example
    for index in (1, 7, 999_999, 1_000_001):
        vin = id_token_value("VIN", index)
        assert vin[8] == vin_check_digit(vin), vin


def test_types_no_driver_carries_are_refused() -> None:
    with pytest.raises(ValueError, match="drivers carry no 'Central' tokens"):
        id_token_value("Central", 1)
    with pytest.raises(ValueError, match="start at 1"):
        id_token_value("ISO14443", 0)


def test_drivers_carry_the_types_in_their_shares() -> None:
    arrivals = chain(process("public", id_token_types=[("ISO14443", 3.0), ("eMAID", 1.0)]), 2000)
    types = [a.id_token_type for a in arrivals]
    assert set(types) == {"ISO14443", "eMAID"}
    assert types.count("eMAID") / len(types) == pytest.approx(0.25, abs=0.04)
    for arrival in arrivals[:100]:
        assert re.fullmatch(FORMATS[arrival.id_token_type], arrival.id_token)


def test_a_share_of_drivers_stops_with_their_token() -> None:
    arrivals = chain(process("public", stop_with_id_token_share=0.5), 2000)
    share = sum(a.stops_with_id_token for a in arrivals) / len(arrivals)
    assert share == pytest.approx(0.5, abs=0.05)
    assert all(
        a.stops_with_id_token for a in chain(process("public", stop_with_id_token_share=1), 20)
    )


def test_new_settings_left_at_their_defaults_change_no_run() -> None:
    plain = chain(process("public", seed=5), 200)
    explicit = chain(
        process("public", seed=5, id_token_types=None, stop_with_id_token_share=0.0), 200
    )
    assert plain == explicit
    assert not any(a.stops_with_id_token for a in plain)


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return [problem.split(" ", 1)[1] for problem in caught.value.problems]


def test_the_scenario_refuses_types_a_driver_cannot_hold(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
        name: t
        stations: {count: 1}
        ev_fleet:
          id_token_types: {Central: 1, ISO1443: 2, eMAID: 0}
        """,
    )
    carried = ", ".join(sorted(CARRIED_TYPES))
    assert problems == [
        "ev_fleet.id_token_types.Central: Central tokens are made by the CSMS for remote starts; "
        f"no driver holds one; drivers carry {carried}",
        "ev_fleet.id_token_types.ISO1443: no IdToken type 'ISO1443'; did you mean ISO14443? "
        f"drivers carry {carried}",
        "ev_fleet.id_token_types.eMAID: the share must be a positive number, got 0.0",
    ]


def test_a_2_0_1_scenario_refuses_the_types_2_1_added(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
        name: t
        ocpp_version: "2.0.1"
        stations: {count: 1}
        ev_fleet:
          id_token_types: {ISO14443: 1, VIN: 1, EVCCID: 1}
        """,
    )
    assert problems == [
        f"ev_fleet.id_token_types.{new}: {new} tokens are new in OCPP 2.1 and a 2.0.1 CSMS would "
        "refuse them; use ocpp_version 2.1 or drop this type"
        for new in ("VIN", "EVCCID")
    ]
