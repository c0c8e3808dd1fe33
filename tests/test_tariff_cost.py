"""The tariff arithmetic (OCPP 2.1 I) against costs worked out by hand.

Every expected number here was computed on paper from the tariff in the test, never by the
code under test.  2026-01-15 is a Thursday; times are UTC, and a tariff's conditions are read
in UTC unless a test gives the meter a station's time zone.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetsim.simulator.clock import format_timestamp
from fleetsim.simulator.csms.tariffs import agrees
from fleetsim.simulator.tariffs import (
    CostMeter,
    Period,
    Usage,
    _cents,
    conditions_hold,
    fixed_conditions_hold,
    price,
    station_zone,
    tariff_refusal,
)


def at(hhmm: str, day: str = "2026-01-15") -> float:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}:00+00:00").timestamp()


#: 0.30/kWh from 12:00 to 13:00, 0.40/kWh otherwise, both plus 20 % VAT; 0.02 per minute
#: charging, 0.10 per minute idle, a 1.00 start fee.
DAY_NIGHT: dict[str, Any] = {
    "tariffId": "day-night",
    "currency": "EUR",
    "energy": {
        "prices": [
            {"priceKwh": 0.30, "conditions": {"startTimeOfDay": "12:00", "endTimeOfDay": "13:00"}},
            {"priceKwh": 0.40},
        ],
        "taxRates": [{"type": "VAT", "tax": 20}],
    },
    "chargingTime": {"prices": [{"priceMinute": 0.02}]},
    "idleTime": {"prices": [{"priceMinute": 0.10}]},
    "fixedFee": {"prices": [{"priceFixed": 1.00}]},
}


def test_a_session_across_a_time_of_day_boundary_costs_what_the_tariff_says() -> None:
    # 11 kW from 12:30 to 13:30 (5.5 kWh before 13:00, 5.5 kWh after), then 15 minutes idle.
    meter = CostMeter(DAY_NIGHT, at("12:30"), 0.0, charging=True)
    assert meter.next_change_s(11000.0) == at("13:00")  # the boundary is known ahead
    meter.advance(at("13:00"), 5500.0, True)
    meter.advance(at("13:30"), 11000.0, False)
    meter.advance(at("13:45"), 11000.0, False)
    cost = meter.total_cost()
    # energy 5.5 x 0.30 + 5.5 x 0.40 = 3.85, with VAT 4.62; 60 min x 0.02 = 1.20;
    # 15 min x 0.10 = 1.50; fixed 1.00.  Total 7.55 without tax, 8.32 with.
    assert cost["fixed"] == {"exclTax": 1.00, "inclTax": 1.00}
    assert cost["energy"] == {"exclTax": 3.85, "inclTax": 4.62}
    assert cost["chargingTime"] == {"exclTax": 1.20, "inclTax": 1.20}
    assert cost["idleTime"] == {"exclTax": 1.50, "inclTax": 1.50}
    assert cost["total"] == {"exclTax": 7.55, "inclTax": 8.32}
    assert cost["typeOfCost"] == "NormalCost"
    assert [p.start_s for p in meter.periods] == [at("12:30"), at("13:00")]


def test_the_running_cost_halfway_is_the_part_used_so_far() -> None:
    meter = CostMeter(DAY_NIGHT, at("12:30"), 0.0, charging=True)
    meter.advance(at("12:45"), 2750.0, True)
    # 2.75 kWh x 0.30 = 0.825 (x 1.2 = 0.99); 15 min x 0.02 = 0.30; fixed 1.00.
    assert meter.total_cost()["total"] == {"exclTax": 2.13, "inclTax": 2.29}
    assert meter.running_total() == pytest.approx(0.99 + 0.30 + 1.00)


def test_the_price_of_a_day_of_the_week_holds_on_that_day_only() -> None:
    weekend = {
        "tariffId": "weekend",
        "currency": "EUR",
        "energy": {
            "prices": [
                {"priceKwh": 0.20, "conditions": {"dayOfWeek": ["Saturday", "Sunday"]}},
                {"priceKwh": 0.50},
            ]
        },
    }
    thursday = price({"weekend": weekend}, [Period(at("10:00"), "weekend", 10000.0, 3600.0)])
    saturday = price(
        {"weekend": weekend}, [Period(at("10:00", "2026-01-17"), "weekend", 10000.0, 3600.0)]
    )
    assert thursday["total"]["exclTax"] == 5.00  # 10 kWh x 0.50
    assert saturday["total"]["exclTax"] == 2.00  # 10 kWh x 0.20


def test_an_energy_step_inside_a_span_splits_it_at_that_energy() -> None:
    stepped = {
        "tariffId": "stepped",
        "currency": "EUR",
        "energy": {
            "prices": [
                {"priceKwh": 0.30, "conditions": {"maxEnergy": 10000}},
                {"priceKwh": 0.50, "conditions": {"minEnergy": 10000}},
            ]
        },
    }
    meter = CostMeter(stepped, at("09:00"), 0.0, charging=True)
    meter.advance(at("11:00"), 16000.0, True)  # one span across the 10 kWh step
    # 10 kWh x 0.30 + 6 kWh x 0.50 = 3.00 + 3.00
    assert meter.total_cost()["total"]["exclTax"] == 6.00
    assert [round(p.energy_wh) for p in meter.periods] == [10000, 6000]


def test_a_price_for_high_power_applies_only_at_that_power() -> None:
    fast = {
        "tariffId": "fast",
        "currency": "EUR",
        "energy": {
            "prices": [
                {"priceKwh": 0.30, "conditions": {"maxPower": 11000}},
                {"priceKwh": 0.60},
            ]
        },
    }
    slow = price({"fast": fast}, [Period(at("10:00"), "fast", 7400.0, 3600.0)])  # 7.4 kW
    quick = price({"fast": fast}, [Period(at("10:00"), "fast", 22000.0, 3600.0)])  # 22 kW
    assert slow["total"]["exclTax"] == 2.22  # 7.4 x 0.30
    assert quick["total"]["exclTax"] == 13.20  # 22 x 0.60


def test_stacked_taxes_and_a_minimum_cost() -> None:
    taxed = {
        "tariffId": "taxed",
        "currency": "EUR",
        "energy": {
            "prices": [{"priceKwh": 1.00}],
            "taxRates": [{"type": "State", "tax": 10}, {"type": "City", "tax": 10, "stack": 1}],
        },
        "minCost": {"exclTax": 5.00, "inclTax": 6.05},
    }
    big = price({"taxed": taxed}, [Period(at("10:00"), "taxed", 10000.0, 3600.0)])
    # 10.00, +10 % = 11.00, +10 % on that = 12.10
    assert big["total"] == {"exclTax": 10.00, "inclTax": 12.10}
    small = price({"taxed": taxed}, [Period(at("10:00"), "taxed", 1000.0, 600.0)])
    assert small["total"] == {"exclTax": 5.00, "inclTax": 6.05}
    assert small["typeOfCost"] == "MinCost"


def test_a_changed_tariff_prices_what_follows() -> None:
    meter = CostMeter(DAY_NIGHT, at("14:00"), 0.0, charging=True)
    meter.advance(at("14:30"), 5000.0, True)
    cheaper = {"tariffId": "driver", "currency": "EUR", "energy": {"prices": [{"priceKwh": 0.10}]}}
    meter.change_tariff(cheaper)
    meter.advance(at("15:00"), 10000.0, True)
    # fixed 1.00; 5 kWh x 0.40 = 2.00 (2.40 with VAT); 30 min x 0.02 = 0.60; 5 kWh x 0.10 = 0.50
    assert meter.total_cost()["total"] == {"exclTax": 4.10, "inclTax": 4.50}


def test_what_a_station_cannot_evaluate_is_refused() -> None:
    current = {
        "tariffId": "amps",
        "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 0.3, "conditions": {"minCurrent": 16}}]},
    }
    assert tariff_refusal(current, 10) is not None
    assert tariff_refusal(current, 10)[0] == "ConditionNotSupported"  # type: ignore[index]
    many = {
        "tariffId": "many",
        "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 0.3}] * 3},
    }
    assert tariff_refusal(many, 2) == ("TooManyElements", "energy has 3 prices; at most 2")
    assert tariff_refusal(DAY_NIGHT, 10) is None


# -- the station's wall clock: conditions in local time -------------------------------------

#: 0.50/kWh from 18:00 to midnight local time, 0.20/kWh otherwise.
EVENING: dict[str, Any] = {
    "tariffId": "evening",
    "currency": "EUR",
    "energy": {
        "prices": [
            {"priceKwh": 0.50, "conditions": {"startTimeOfDay": "18:00", "endTimeOfDay": "00:00"}},
            {"priceKwh": 0.20},
        ]
    },
}


def test_an_evening_price_starts_at_18_local_in_a_utc_plus_1_zone() -> None:
    berlin = station_zone("Europe/Berlin")  # UTC+1 in January
    # 11 kW from 16:30 to 17:30 UTC, 17:30 to 18:30 in Berlin: the evening price starts at
    # 17:00 UTC, halfway.
    meter = CostMeter(EVENING, at("16:30"), 0.0, charging=True, zone=berlin)
    assert meter.next_change_s(11000.0) == at("17:00")
    meter.advance(at("17:00"), 5500.0, True)
    meter.advance(at("17:30"), 11000.0, True)
    # 5.5 kWh x 0.20 + 5.5 kWh x 0.50 = 1.10 + 2.75 = 3.85
    assert meter.total_cost()["energy"] == {"exclTax": 3.85, "inclTax": 3.85}
    assert [p.start_s for p in meter.periods] == [at("16:30"), at("17:00")]
    # Read in UTC the whole session is before 18:00: 11 kWh x 0.20 = 2.20.
    in_utc = CostMeter(EVENING, at("16:30"), 0.0, charging=True)
    in_utc.advance(at("17:30"), 11000.0, True)
    assert in_utc.total_cost()["energy"]["exclTax"] == 2.20
    # Whoever prices the report again must read it on the same clock.
    details = meter.cost_details(format_timestamp)
    assert agrees({"evening": EVENING}, details, berlin) is True
    assert agrees({"evening": EVENING}, details) is False


def test_summer_time_moves_the_evening_boundary_an_hour_earlier_in_utc() -> None:
    berlin = station_zone("Europe/Berlin")  # UTC+2 in July
    meter = CostMeter(EVENING, at("15:00", "2026-07-15"), 0.0, charging=True, zone=berlin)
    assert meter.next_change_s(11000.0) == at("16:00", "2026-07-15")
    # The clocks went forward at 02:00 on 29 March 2026: that evening is already UTC+2, so
    # the local midnight that ends it is 22:00 UTC.
    spring = CostMeter(EVENING, at("16:30", "2026-03-29"), 0.0, charging=True, zone=berlin)
    assert spring.next_change_s(11000.0) == at("22:00", "2026-03-29")


def test_an_unknown_time_zone_is_an_error_that_says_what_to_write() -> None:
    with pytest.raises(ValueError, match=r"not an IANA time zone.*Europe/Berlin"):
        station_zone("Europe/Atlantis")
    assert station_zone("UTC") is dt.UTC


@settings(max_examples=5000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=-1e7, max_value=1e7, allow_nan=False),
        st.integers(min_value=-(10**8), max_value=10**8).map(lambda n: n / 1000),
        st.integers(min_value=-(10**6), max_value=10**6).map(lambda n: n / 100 + 0.005),
    )
)
def test_a_cent_is_rounded_half_up_as_the_decimal_digits_read(value: float) -> None:
    """The quick path of the cent rounding gives what decimal rounding of the digits does,
    halves included (2.675 is 2.68, though the double below 2.675 is nearer)."""
    expected = float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    assert _cents(value) == expected


# -- the meter's incremental pricing against pricing from scratch ------------------------------


def _reference_price(
    tariffs: dict[str, Any], periods: list[Period], zone: dt.tzinfo = dt.UTC
) -> tuple[dict[str, Any], float]:
    """(TotalCostType, unrounded total including tax) of `periods`, worked out the plain way:
    every period priced again from the tariff documents, element by element, on an AC EVSE."""

    def taxed(net: float, rates: list[dict[str, Any]] | None) -> float:
        amount = net
        for stack in sorted({int(rate.get("stack", 0)) for rate in rates or ()}):
            percent = sum(float(r["tax"]) for r in rates or () if int(r.get("stack", 0)) == stack)
            amount += amount * percent / 100.0
        return amount

    first = periods[0]
    parts: dict[str, list[float]] = {}
    fixed = tariffs[first.tariff_id].get("fixedFee")
    for element in fixed["prices"] if fixed else ():
        if fixed_conditions_hold(element.get("conditions"), first.start_s, "AC", zone):
            net = float(element["priceFixed"])
            parts["fixed"] = [net, taxed(net, fixed.get("taxRates"))]
            break
    used = Usage()
    tariff = tariffs[first.tariff_id]
    for period in periods:
        tariff = tariffs[period.tariff_id]
        usage = Usage(period.start_s - first.start_s, used.energy_wh, used.charging_s, used.idle_s)
        for component, field_name, volume, per in (
            ("energy", "priceKwh", period.energy_wh, 1000.0),
            ("chargingTime", "priceMinute", period.charging_s, 60.0),
            ("idleTime", "priceMinute", period.idle_s, 60.0),
        ):
            part = tariff.get(component)
            element = next(
                (
                    e
                    for e in (part["prices"] if part else ())
                    if conditions_hold(
                        e.get("conditions"), period.start_s, usage, period.power_w, "AC", zone
                    )
                ),
                None,
            )
            if element is None:
                continue
            net = volume / per * float(element[field_name])
            summed = parts.setdefault(component, [0.0, 0.0])
            summed[0] += net
            summed[1] += taxed(net, part.get("taxRates"))
        used = Usage(
            0.0,
            used.energy_wh + period.energy_wh,
            used.charging_s + period.charging_s,
            used.idle_s + period.idle_s,
        )
    total: dict[str, Any] = {"currency": tariff["currency"], "typeOfCost": "NormalCost"}
    excl = incl = 0.0
    for name, (net, gross) in parts.items():
        total[name] = {"exclTax": _cents(net), "inclTax": _cents(gross)}
        excl += _cents(net)
        incl += _cents(gross)
    excl, incl = _cents(excl), _cents(incl)
    raw_excl = sum(net for net, _ in parts.values())
    raw_incl = sum(gross for _, gross in parts.values())
    for bound, kind, beyond in (("minCost", "MinCost", -1), ("maxCost", "MaxCost", 1)):
        limit = tariff.get(bound)
        if limit is None:
            continue
        if (excl - float(limit["exclTax"])) * beyond > 0:
            ratio = incl / excl if excl else 1.0
            excl = float(limit["exclTax"])
            incl = float(limit.get("inclTax", _cents(excl * ratio)))
            total["typeOfCost"] = kind
        if (raw_excl - float(limit["exclTax"])) * beyond > 0:
            raw_incl = float(limit.get("inclTax", limit["exclTax"]))
    total["total"] = {"exclTax": excl, "inclTax": incl}
    return total, raw_incl


_CONDITIONS = st.fixed_dictionaries(
    {},
    optional={
        "startTimeOfDay": st.sampled_from(["00:00", "06:30", "12:00", "17:00", "22:15"]),
        "endTimeOfDay": st.sampled_from(["00:00", "07:00", "13:00", "18:00", "23:00"]),
        "dayOfWeek": st.lists(st.sampled_from(["Thursday", "Friday", "Saturday"]), min_size=1),
        "minEnergy": st.sampled_from([2000.0, 10000.0, 25000.0]),
        "maxEnergy": st.sampled_from([5000.0, 15000.0, 40000.0]),
        "minPower": st.sampled_from([3700.0, 11000.0]),
        "maxPower": st.sampled_from([7400.0, 20000.0]),
        "minTime": st.sampled_from([900.0, 3600.0]),
        "maxTime": st.sampled_from([1800.0, 7200.0]),
        "minChargingTime": st.sampled_from([600.0, 3600.0]),
        "maxIdleTime": st.sampled_from([300.0, 1200.0]),
    },
)
_TAXES = st.lists(
    st.fixed_dictionaries(
        {"type": st.just("VAT"), "tax": st.sampled_from([5.5, 10, 19, 20])},
        optional={"stack": st.integers(0, 2)},
    ),
    max_size=3,
)


def _price_list(field_name: str) -> st.SearchStrategy[dict[str, Any]]:
    element = st.fixed_dictionaries(
        {field_name: st.sampled_from([0.0, 0.01, 0.05, 0.2, 0.32, 0.333, 0.45])},
        optional={"conditions": _CONDITIONS},
    )
    return st.fixed_dictionaries(
        {"prices": st.lists(element, min_size=1, max_size=3)}, optional={"taxRates": _TAXES}
    )


def _tariffs(tariff_id: str) -> st.SearchStrategy[dict[str, Any]]:
    bound = st.fixed_dictionaries(
        {"exclTax": st.sampled_from([0.5, 3.0, 12.0])},
        optional={"inclTax": st.sampled_from([0.6, 3.6, 14.4])},
    )
    fixed_element = st.fixed_dictionaries(
        {"priceFixed": st.sampled_from([0.5, 1.0])},
        optional={"conditions": st.fixed_dictionaries({"startTimeOfDay": st.just("12:00")})},
    )
    return st.fixed_dictionaries(
        {"tariffId": st.just(tariff_id), "currency": st.just("EUR")},
        optional={
            "energy": _price_list("priceKwh"),
            "chargingTime": _price_list("priceMinute"),
            "idleTime": _price_list("priceMinute"),
            "fixedFee": st.fixed_dictionaries(
                {"prices": st.lists(fixed_element, min_size=1, max_size=2)},
                optional={"taxRates": _TAXES},
            ),
            "minCost": bound,
            "maxCost": bound,
        },
    )


#: One step of a session: seconds on, at what power (W, 0: idle), and whether a driver
#: tariff takes over first (None: no; "same": one reusing the first tariff's id).
_STEPS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=7200.0),
        st.sampled_from([0.0, 3700.0, 7400.0, 11000.0, 22000.0]),
        st.sampled_from([None, None, None, None, "driver", "same"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(
    _tariffs("first"),
    _tariffs("driver"),
    _tariffs("first"),
    _STEPS,
    st.sampled_from(["09:40", "11:55", "16:45", "23:30"]),
    st.sampled_from(["UTC", "Europe/Berlin"]),
)
def test_each_report_of_the_meter_costs_what_pricing_every_period_anew_costs(
    tariff: dict[str, Any],
    driver: dict[str, Any],
    same_id: dict[str, Any],
    steps: list[tuple[float, float, str | None]],
    start: str,
    zone_name: str,
) -> None:
    """The meter prices its closed periods once and only the open one per report: every
    report, the total cost and the running total must be what the reported periods cost
    when all of them are priced again from the tariff documents."""
    zone = station_zone(zone_name)
    meter = CostMeter(tariff, at(start), 0.0, charging=False, zone=zone)
    now_s, register_wh, power_w = at(start), 0.0, 0.0
    for seconds, next_power_w, new_tariff in steps:
        if new_tariff is not None:
            meter.change_tariff(driver if new_tariff == "driver" else same_id)
        now_s += seconds
        register_wh += power_w * seconds / 3600.0
        power_w = next_power_w
        meter.advance(now_s, register_wh, power_w > 0)
        details = meter.cost_details(format_timestamp)
        reported = [
            Period(
                p.start_s,
                p.tariff_id,
                round(p.energy_wh, 3),
                round(p.charging_s, 3),
                round(p.idle_s, 3),
            )
            for p in meter.periods
        ]
        expected, _ = _reference_price(meter.tariffs, reported, zone)
        assert details["totalCost"] == expected
        assert details["totalCost"] == price(meter.tariffs, reported, "AC", zone)
        assert [entry["tariffId"] for entry in details["chargingPeriods"]] == [
            p.tariff_id for p in reported
        ]
        assert [entry["dimensions"][0]["volume"] for entry in details["chargingPeriods"]] == [
            p.energy_wh for p in reported
        ]
        total, raw_incl = _reference_price(meter.tariffs, list(meter.periods), zone)
        assert meter.total_cost() == total
        assert meter.running_total() == raw_incl
