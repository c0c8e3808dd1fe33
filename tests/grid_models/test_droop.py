"""`DroopCurve` and `FreqWattCurve`: deadband, slope, saturation, sign and interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from fleetsim.grid_models import DroopCurve, FreqWattCurve

MAX_W = 11_000.0
DROOP = DroopCurve(max_response_w=MAX_W)  # 20 mHz deadband, full response at 200 mHz


@pytest.mark.parametrize("frequency_hz", [50.0, 50.01, 49.99, 50.0199, 49.9801])
def test_no_response_inside_the_deadband(frequency_hz: float) -> None:
    assert DROOP.response_w(frequency_hz, 50.0) == 0.0


def test_over_frequency_increases_consumption_and_under_frequency_reduces_it() -> None:
    assert DROOP.response_w(50.1, 50.0) > 0
    assert DROOP.response_w(49.9, 50.0) < 0
    assert DROOP.response_w(50.1, 50.0) == pytest.approx(-DROOP.response_w(49.9, 50.0))


def test_response_is_linear_from_the_deadband_edge_to_full_response() -> None:
    deviations_hz = np.linspace(0.02, 0.2, 19)
    responses_w = [DROOP.response_w(50.0 + d, 50.0) for d in deviations_hz]
    expected_w = (deviations_hz - 0.02) / 0.18 * MAX_W
    assert responses_w == pytest.approx(expected_w.tolist(), abs=1e-6)
    assert DROOP.response_w(49.89, 50.0) == pytest.approx(-MAX_W / 2)


@pytest.mark.parametrize("frequency_hz", [50.2, 50.5, 52.0])
def test_response_saturates_at_max(frequency_hz: float) -> None:
    assert DROOP.response_w(frequency_hz, 50.0) == pytest.approx(MAX_W)
    assert DROOP.response_w(100.0 - frequency_hz, 50.0) == pytest.approx(-MAX_W)


def test_droop_percent_sets_the_slope_relative_to_nominal() -> None:
    curve = DroopCurve(max_response_w=MAX_W, droop_percent=0.4)
    assert curve.full_response_at_hz(50.0) == pytest.approx(0.22)
    assert curve.full_response_at_hz(60.0) == pytest.approx(0.26)
    assert curve.response_w(50.12, 50.0) == pytest.approx(MAX_W / 2)
    assert curve.response_w(59.86, 60.0) == pytest.approx(-MAX_W / 2)


def test_a_custom_deadband_and_full_response() -> None:
    curve = DroopCurve(max_response_w=1000.0, deadband_hz=0.0, full_response_deviation_hz=0.5)
    assert curve.response_w(60.25, 60.0) == pytest.approx(500.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_response_w": -1.0}, "max_response_w"),
        ({"max_response_w": 1.0, "deadband_hz": -0.01}, "deadband_hz"),
        (
            {"max_response_w": 1.0, "droop_percent": 4.0, "full_response_deviation_hz": 0.2},
            "not both",
        ),
        ({"max_response_w": 1.0, "full_response_deviation_hz": 0.01}, "larger than deadband"),
        ({"max_response_w": 1.0, "deadband_hz": 0.3}, "larger than deadband"),
        ({"max_response_w": 1.0, "droop_percent": 0.0}, "droop_percent"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DroopCurve(**settings)


# -- frequency-watt curves -----------------------------------------------------------------------

V2X_CURVE = [(49.8, -MAX_W), (49.98, 0.0), (50.02, 0.0), (50.2, MAX_W)]


def test_curve_interpolates_linearly_between_points() -> None:
    curve = FreqWattCurve(V2X_CURVE)
    assert curve.power_w(49.89) == pytest.approx(-MAX_W / 2)
    assert curve.power_w(50.0) == 0.0
    assert curve.power_w(50.155) == pytest.approx(MAX_W * 0.75)


def test_curve_holds_its_end_values_outside_its_range() -> None:
    curve = FreqWattCurve(V2X_CURVE)
    assert curve.power_w(49.0) == -MAX_W
    assert curve.power_w(51.0) == MAX_W


def test_the_default_droop_is_the_same_line_as_its_curve() -> None:
    curve = FreqWattCurve(V2X_CURVE)
    for frequency_hz in np.linspace(49.7, 50.3, 61):
        assert curve.power_w(frequency_hz) == pytest.approx(
            DROOP.response_w(frequency_hz, 50.0), abs=1e-6
        )


def test_points_may_come_in_any_order() -> None:
    curve = FreqWattCurve(reversed(V2X_CURVE))
    assert curve.points == V2X_CURVE
    assert len(curve) == 4


def test_curve_from_fractions_scales_to_the_maximum_power() -> None:
    curve = FreqWattCurve.from_fractions([(49.8, -1.0), (50.0, 0.0), (50.2, 1.0)], 7400.0)
    assert curve.power_w(49.9) == pytest.approx(-3700.0)
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        FreqWattCurve.from_fractions([(49.8, -2.0)], 7400.0)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([], "at least one"),
        ([(50.0, 0.0), (50.0, 100.0)], "two points at 50 Hz"),
        ([(float("nan"), 0.0)], "positive number of Hz"),
    ],
)
def test_bad_curves_are_refused(points: list[tuple[float, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FreqWattCurve(points)
