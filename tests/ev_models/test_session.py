"""`EvSession`: energy balances, curve steps, caps, V2X and droop, checked with plain numbers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest

from fleetsim.ev_models import EvModel, EvSession, ac_curve, load_catalogue

CATALOGUE = load_catalogue()
ID3 = CATALOGUE["vw-id3-pro-58kwh"]  # 400 V car, stepped DC curve, 11 kW three-phase AC
LEAF = CATALOGUE["nissan-leaf-40kwh"]  # bidirectional, 6 kW discharge, 6.6 kW single-phase AC


def dc_session(model: EvModel = ID3, **overrides: float) -> EvSession:
    settings: dict[str, float] = dict(
        evse_max_w=150_000.0, soc=0.1, target_soc=0.9, min_soc=0.2, now_s=0.0
    )
    settings.update(overrides)
    return EvSession(model, supply="DC", evse_phases=3, **settings)


class Recorder:
    """Drives a session and keeps (time, power) after every change, to integrate by hand."""

    def __init__(self, session: EvSession) -> None:
        self.session = session
        self.points: list[tuple[float, float]] = [(0.0, session.power_w)]

    def at(self, now_s: float, change: Callable[[float], None]) -> None:
        """Apply `change` at `now_s`, after the curve events that come first, as an owner
        sleeping until min(next input, next_change_s()) would."""
        while self.session.next_change_s() < now_s:
            self._apply(self.session.next_change_s(), self.session.on_change)
        self._apply(now_s, change)

    def _apply(self, now_s: float, change: Callable[[float], None]) -> None:
        change(now_s)
        self.points.append((now_s, self.session.power_w))

    def run_out(self, limit: int = 100) -> float:
        """Follow `next_change_s` until nothing is left to happen; returns the last time."""
        for _ in range(limit):
            next_s = self.session.next_change_s()
            if math.isinf(next_s):
                return self.points[-1][0]
            self.at(next_s, self.session.on_change)
        raise AssertionError("the session never settled")

    def integral_wh(self, end_s: float) -> float:
        total_j = 0.0
        for (start_s, power_w), (stop_s, _) in zip(
            self.points, [*self.points[1:], (end_s, 0.0)], strict=True
        ):
            total_j += power_w * (stop_s - start_s)
        return total_j / 3600.0


def test_imported_energy_matches_the_integral_of_power_and_the_battery_balance() -> None:
    session = dc_session(soc=0.1, target_soc=0.9)
    drive = Recorder(session)
    drive.at(60.0, lambda t: session.set_enabled(True, t))
    drive.at(600.0, lambda t: session.set_limit(50_000.0, t))
    drive.at(1_200.0, lambda t: session.set_share(30_000.0, t))
    drive.at(1_800.0, lambda t: session.set_share(None, t))
    drive.at(2_400.0, lambda t: session.set_limit(None, t))
    end_s = drive.run_out() + 600.0

    assert session.soc_at(end_s) == 0.9
    assert session.power_w == 0.0
    imported_wh = session.imported_wh_at(end_s)
    assert imported_wh == pytest.approx(drive.integral_wh(end_s), rel=1e-3)
    battery_wh = (0.9 - 0.1) * ID3.usable_battery_wh
    assert imported_wh == pytest.approx(battery_wh / ID3.dc_efficiency, rel=1e-3)
    assert session.exported_wh_at(end_s) == 0.0
    # The curve's breakpoints between the folds above became events of their own.
    assert len(drive.points) > 8


def test_a_late_on_change_crosses_every_event_on_the_way() -> None:
    stepped = dc_session()
    stepped.set_enabled(True, 0.0)
    Recorder(stepped).run_out()
    late = dc_session()
    late.set_enabled(True, 0.0)
    late.on_change(10 * 3600.0)
    assert late.soc_at(10 * 3600.0) == 0.9
    assert late.imported_wh_at(10 * 3600.0) == pytest.approx(
        stepped.imported_wh_at(10 * 3600.0), rel=1e-12
    )


def test_readings_ahead_of_the_next_change_follow_the_curve_without_changing_the_session() -> None:
    session = dc_session()
    session.set_enabled(True, 0.0)
    first_change_s = session.next_change_s()
    assert session.soc_at(20 * 3600.0) == 0.9
    assert session.next_change_s() == first_change_s
    assert session.soc_at(first_change_s / 2) == pytest.approx(0.1 + (0.3 - 0.1) / 2)


def test_the_dc_curve_tapers_above_the_knee() -> None:
    powers = {}
    for soc in (0.3, 0.9):
        session = dc_session(soc=soc, target_soc=1.0)
        session.set_enabled(True, 0.0)
        powers[soc] = session.power_w
    assert powers[0.9] < powers[0.3]
    assert powers[0.3] == 90_000.0


def test_the_ac_curve_is_flat_to_95_percent_and_ends_near_30_percent() -> None:
    curve = ac_curve(ID3)
    assert curve[0] == (0.0, 11_000.0)
    assert curve[1][0] == 0.95
    assert [w for _, w in curve] == sorted((w for _, w in curve), reverse=True)
    assert curve[-1][1] == pytest.approx(11_000.0 * 0.37)
    # The steps carry the energy of a straight line from 100 % to 30 %.
    step_energy = sum(w * 0.01 for _, w in curve[1:])
    assert step_energy == pytest.approx(11_000.0 * 0.05 * (1.0 + 0.3) / 2)


def test_a_charging_limit_caps_the_power_exactly() -> None:
    session = EvSession(
        ID3, supply="AC", evse_max_w=22_000.0, evse_phases=3, soc=0.2, target_soc=0.8,
        min_soc=0.2, now_s=0.0,
    )  # fmt: skip
    session.set_enabled(True, 0.0)
    assert session.power_w == 11_000.0
    session.set_limit(7_400.0, 10.0)
    assert session.power_w == 7_400.0
    session.set_limit(0.0, 20.0)
    assert session.power_w == 0.0
    session.set_limit(None, 30.0)
    assert session.power_w == 11_000.0


def test_an_evse_with_fewer_phases_scales_a_three_phase_charger() -> None:
    session = EvSession(
        ID3, supply="AC", evse_max_w=22_000.0, evse_phases=1, soc=0.2, target_soc=0.8,
        min_soc=0.2, now_s=0.0,
    )  # fmt: skip
    session.set_enabled(True, 0.0)
    assert session.power_w == pytest.approx(11_000.0 / 3)
    single_phase_car = EvSession(
        LEAF, supply="AC", evse_max_w=22_000.0, evse_phases=3, soc=0.2, target_soc=0.8,
        min_soc=0.2, now_s=0.0,
    )  # fmt: skip
    single_phase_car.set_enabled(True, 0.0)
    assert single_phase_car.power_w == 6_600.0


def test_power_is_zero_until_the_power_path_closes_and_after_it_opens() -> None:
    session = dc_session()
    assert session.power_w == 0.0
    assert math.isinf(session.next_change_s())
    session.set_enabled(True, 100.0)
    assert session.power_w == 100_000.0
    session.set_enabled(False, 200.0)
    assert session.power_w == 0.0
    assert session.imported_wh_at(1_000.0) == pytest.approx(100_000.0 * 100 / 3600)
    assert session.peak_w == 100_000.0


def test_v2x_discharge_stops_exactly_at_the_minimum_soc() -> None:
    session = dc_session(LEAF, evse_max_w=10_000.0, soc=0.8, target_soc=0.9, min_soc=0.3)
    session.set_enabled(True, 0.0)
    session.set_setpoint(-5_000.0, 0.0)
    assert session.power_w == -5_000.0
    stop_s = session.next_change_s()
    battery_wh = (0.8 - 0.3) * LEAF.usable_battery_wh
    grid_wh = battery_wh * LEAF.dc_efficiency
    assert stop_s == pytest.approx(grid_wh / 5_000.0 * 3600.0)
    session.on_change(stop_s)
    assert session.power_w == 0.0
    assert session.soc_at(stop_s) == 0.3
    assert math.isinf(session.next_change_s())
    assert session.exported_wh_at(stop_s + 3600.0) == pytest.approx(grid_wh, rel=1e-9)
    assert session.imported_wh_at(stop_s + 3600.0) == 0.0


def test_discharge_is_capped_by_the_model_the_evse_and_the_limit() -> None:
    session = dc_session(LEAF, evse_max_w=10_000.0, soc=0.8, min_soc=0.3)
    session.set_enabled(True, 0.0)
    session.set_setpoint(-50_000.0, 0.0)
    assert session.power_w == -LEAF.max_discharge_w
    session.set_limit(2_500.0, 1.0)
    assert session.power_w == -2_500.0
    session.set_limit(-4_000.0, 2.0)  # a discharge limit: its magnitude caps the export
    assert session.power_w == -4_000.0


def test_a_unidirectional_ev_ignores_a_discharge_setpoint() -> None:
    session = dc_session(ID3, soc=0.8, min_soc=0.3)
    session.set_enabled(True, 0.0)
    session.set_setpoint(-5_000.0, 0.0)
    assert session.power_w == 0.0
    assert math.isinf(session.next_change_s())


def test_a_positive_setpoint_charges_past_the_target_until_full() -> None:
    session = dc_session(LEAF, soc=0.85, target_soc=0.8)
    session.set_enabled(True, 0.0)
    assert session.power_w == 0.0
    session.set_setpoint(4_000.0, 0.0)
    assert session.power_w == 4_000.0
    session.on_change(24 * 3600.0)
    assert session.soc_at(24 * 3600.0) == 1.0
    assert session.power_w == 0.0


def test_droop_changes_the_power_by_exactly_the_offset_within_the_caps() -> None:
    session = dc_session(LEAF, evse_max_w=10_000.0, soc=0.6, min_soc=0.3)
    session.set_enabled(True, 0.0)
    session.set_setpoint(2_000.0, 0.0)
    session.set_droop(-1_500.0, 1.0)
    assert session.power_w == 500.0
    session.set_droop(-3_500.0, 2.0)
    assert session.power_w == -1_500.0  # through zero into export: V2X mode allows it
    session.set_droop(+2_500.0, 3.0)
    assert session.power_w == 4_500.0
    session.set_droop(-20_000.0, 4.0)
    assert session.power_w == -LEAF.max_discharge_w  # clipped at the export limit
    session.set_droop(+80_000.0, 5.0)
    assert session.power_w == 10_000.0  # the EVSE rating, below the curve's 38 kW


def test_droop_without_a_setpoint_moves_the_import_but_never_exports() -> None:
    session = EvSession(
        ID3, supply="AC", evse_max_w=22_000.0, evse_phases=3, soc=0.2, target_soc=0.8,
        min_soc=0.2, now_s=0.0,
    )  # fmt: skip
    session.set_enabled(True, 0.0)
    session.set_limit(7_000.0, 0.0)
    session.set_droop(-1_500.0, 1.0)
    assert session.power_w == 5_500.0
    session.set_droop(+2_000.0, 2.0)
    assert session.power_w == 9_000.0  # above the limit: droop is capped by the hardware only
    session.set_droop(-20_000.0, 3.0)
    assert session.power_w == 0.0


def test_the_site_share_caps_import_and_droop() -> None:
    session = dc_session()
    session.set_enabled(True, 0.0)
    session.set_share(30_000.0, 0.0)
    assert session.power_w == 30_000.0
    session.set_droop(5_000.0, 1.0)
    assert session.power_w == 30_000.0


def test_a_session_refuses_time_going_backwards() -> None:
    session = dc_session()
    session.set_enabled(True, 100.0)
    with pytest.raises(ValueError, match="backwards"):
        session.set_limit(1_000.0, 50.0)
    with pytest.raises(ValueError, match="before its last change"):
        session.soc_at(99.0)


def test_an_ev_without_an_ac_inlet_cannot_charge_on_ac() -> None:
    truck = CATALOGUE["mercedes-eactros-600"]
    with pytest.raises(ValueError, match="no AC inlet"):
        EvSession(
            truck, supply="AC", evse_max_w=22_000.0, evse_phases=3, soc=0.2, target_soc=0.8,
            min_soc=0.2, now_s=0.0,
        )  # fmt: skip


def test_next_change_is_the_next_breakpoint_in_the_direction_of_travel() -> None:
    model = replace(ID3, dc_curve=((0.0, 100_000.0), (0.5, 50_000.0)))
    session = dc_session(model, soc=0.2, target_soc=0.8)
    session.set_enabled(True, 0.0)
    to_knee_wh = (0.5 - 0.2) * model.usable_battery_wh / model.dc_efficiency
    assert session.next_change_s() == pytest.approx(to_knee_wh / 100_000.0 * 3600.0)
    session.on_change(session.next_change_s())
    assert session.power_w == 50_000.0
    to_target_wh = (0.8 - 0.5) * model.usable_battery_wh / model.dc_efficiency
    assert session.next_change_s() == pytest.approx(
        to_knee_wh / 100_000.0 * 3600.0 + to_target_wh / 50_000.0 * 3600.0
    )
