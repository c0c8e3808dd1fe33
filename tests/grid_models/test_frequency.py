"""`FrequencyModel`: the statistics of the exact OU samples, scripted events, and the rules."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pytest

from fleetsim.grid_models import (
    CE_SIGMA_HZ,
    CE_TIME_CONSTANT_S,
    NERC_EPSILON1_HZ,
    FrequencyEvent,
    FrequencyModel,
    block_average_rms_ratio,
    default_statistics,
    sigma_for_epsilon1,
)

SIGMA_HZ = 0.02
TAU_S = 120.0


def model(
    seed: int = 7,
    *,
    sigma_hz: float = SIGMA_HZ,
    time_constant_s: float = TAU_S,
    events: Iterable[FrequencyEvent] = (),
) -> FrequencyModel:
    return FrequencyModel(
        50.0,
        sigma_hz=sigma_hz,
        time_constant_s=time_constant_s,
        events=events,
        rng=np.random.default_rng(seed),
    )


def deviations_hz(frequency: FrequencyModel, times_s: np.ndarray) -> np.ndarray:
    return np.array([frequency.frequency_at(float(t)) for t in times_s]) - frequency.nominal_hz


def autocorrelation(series: np.ndarray, lag: int) -> float:
    centred = series - series.mean()
    return float(np.dot(centred[:-lag], centred[lag:]) / np.dot(centred, centred))


# -- the stochastic part -------------------------------------------------------------------------


def test_independent_samples_have_mean_zero_and_standard_deviation_sigma() -> None:
    # Ten time constants apart the samples are independent (correlation e^-10), so the sample
    # statistics have textbook errors: the stdev within 1.5 % at 1 sigma for 20 000 samples.
    samples = deviations_hz(model(), np.arange(20_000) * 10 * TAU_S)
    assert abs(samples.mean()) < 4 * SIGMA_HZ / math.sqrt(len(samples))
    assert samples.std() == pytest.approx(SIGMA_HZ, rel=0.03)


def test_densely_sampled_path_has_the_same_standard_deviation() -> None:
    samples = deviations_hz(model(seed=11), np.arange(200_000) * TAU_S / 10)
    assert samples.std() == pytest.approx(SIGMA_HZ, rel=0.05)


@pytest.mark.parametrize("substeps", [1, 10])
def test_autocorrelation_at_lag_tau_is_one_over_e_however_often_it_is_sampled(
    substeps: int,
) -> None:
    """The exact transition makes the path's law independent of the sampling grid: sampled
    every tau, or every tau/10 and thinned to every tau, the lag-tau correlation is e^-1."""
    frequency = model(seed=3 + substeps)
    times_s = np.arange(60_000 * substeps) * TAU_S / substeps
    thinned = deviations_hz(frequency, times_s)[::substeps]
    assert autocorrelation(thinned, 1) == pytest.approx(math.exp(-1), abs=0.02)
    assert autocorrelation(thinned, 2) == pytest.approx(math.exp(-2), abs=0.02)


def test_same_seed_and_same_times_give_identical_values() -> None:
    times_s = [0.0, 0.5, 1.0, 30.0, 3600.0, 3600.25, 86_400.0]
    once, again = model(seed=42), model(seed=42)
    first = [once.frequency_at(t) for t in times_s]
    assert [again.frequency_at(t) for t in times_s] == first
    other = model(seed=43)
    assert [other.frequency_at(t) for t in times_s] != first


def test_asking_twice_for_the_same_time_returns_the_same_value_and_draws_nothing() -> None:
    frequency, twin = model(seed=5), model(seed=5)
    assert frequency.frequency_at(10.0) == frequency.frequency_at(10.0)
    twin.frequency_at(10.0)
    assert frequency.frequency_at(20.0) == twin.frequency_at(20.0)


def test_time_going_backwards_is_refused_with_a_clear_error() -> None:
    frequency = model()
    frequency.frequency_at(100.0)
    with pytest.raises(ValueError, match=r"frequency_at\(50\.0\) called after frequency_at\(100"):
        frequency.frequency_at(50.0)


def test_sigma_zero_keeps_nominal_and_needs_no_generator() -> None:
    frequency = FrequencyModel(60.0, sigma_hz=0.0)
    assert [frequency.frequency_at(t) for t in (0.0, 1.0, 1e6)] == [60.0, 60.0, 60.0]


def test_a_random_frequency_without_a_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="default_rng"):
        FrequencyModel(50.0)


@pytest.mark.parametrize(
    ("sigma_hz", "time_constant_s", "message"),
    [
        (-0.01, TAU_S, "sigma_hz"),
        (SIGMA_HZ, 0.0, "time_constant_s"),
        (SIGMA_HZ, math.inf, "time_constant_s"),
    ],
)
def test_bad_statistics_are_refused(sigma_hz: float, time_constant_s: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model(sigma_hz=sigma_hz, time_constant_s=time_constant_s)


def test_only_50_and_60_hz_grids_have_defaults() -> None:
    with pytest.raises(ValueError, match="50 or 60"):
        FrequencyModel(55.0, sigma_hz=0.0)


# -- calibration ---------------------------------------------------------------------------------


def test_defaults_are_the_published_figures() -> None:
    assert default_statistics(50.0) == (CE_SIGMA_HZ, CE_TIME_CONSTANT_S) == (0.020, 120.0)
    sigma_60_hz, tau_60_s = default_statistics(60.0)
    assert sigma_60_hz == pytest.approx(0.0195, abs=0.0001)
    assert tau_60_s == 120.0
    frequency = FrequencyModel(60.0, rng=np.random.default_rng(0))
    assert (frequency.sigma_hz, frequency.time_constant_s) == (sigma_60_hz, tau_60_s)


def test_ce_defaults_meet_the_so_gl_target_of_15000_minutes_outside_50_mhz() -> None:
    share_outside = math.erfc(0.050 / (CE_SIGMA_HZ * math.sqrt(2)))
    assert share_outside * 365.25 * 24 * 60 < 15_000


def test_block_average_ratio_has_the_right_limits() -> None:
    assert block_average_rms_ratio(1e-6, TAU_S) == pytest.approx(1.0, abs=1e-6)
    long_block_s = 1e4 * TAU_S
    assert block_average_rms_ratio(long_block_s, TAU_S) == pytest.approx(
        math.sqrt(2 * TAU_S / long_block_s), rel=1e-3
    )


def test_one_minute_averages_of_the_60_hz_default_have_rms_epsilon1() -> None:
    """NERC's epsilon1 is defined on one-minute averages; the default sigma is chosen so that a
    path sampled every second and averaged per clock minute has that RMS."""
    sigma_hz = sigma_for_epsilon1(NERC_EPSILON1_HZ["Eastern"])
    frequency = FrequencyModel(60.0, sigma_hz=sigma_hz, rng=np.random.default_rng(9))
    per_second = deviations_hz(frequency, np.arange(60 * 4000, dtype=float))
    minute_means = per_second.reshape(-1, 60).mean(axis=1)
    assert math.sqrt(float(np.mean(minute_means**2))) == pytest.approx(0.018, rel=0.06)


# -- scripted events -----------------------------------------------------------------------------


def test_a_dip_holds_exactly_the_scripted_value_inside_its_window() -> None:
    frequency = model(events=[FrequencyEvent(1000.0, 30.0, 49.8)])
    inside = [frequency.frequency_at(t) for t in np.linspace(1000.0, 1029.999, 50)]
    assert inside == [49.8] * 50
    assert frequency.frequency_at(1030.0) != 49.8


def test_ramps_are_linear_from_and_back_to_the_steady_frequency() -> None:
    event = FrequencyEvent(100.0, 30.0, 49.8, ramp_s=10.0)
    frequency = FrequencyModel(50.0, sigma_hz=0.0, events=[event])
    times_s = [99.0, 100.0, 102.5, 105.0, 110.0, 125.0, 140.0, 145.0, 147.5, 150.0, 151.0]
    expected = [50.0, 50.0, 49.95, 49.9, 49.8, 49.8, 49.8, 49.9, 49.95, 50.0, 50.0]
    actual = [frequency.frequency_at(t) for t in times_s]
    assert actual == pytest.approx(expected, abs=1e-12)


def test_ramps_blend_with_the_random_frequency_that_keeps_running_underneath() -> None:
    event = FrequencyEvent(500.0, 60.0, 50.3, ramp_s=20.0)
    scripted, plain = model(seed=8, events=[event]), model(seed=8)
    for t_s in np.arange(400.0, 700.0, 2.5):
        random_hz = plain.frequency_at(t_s)
        expected = random_hz + event.weight_at(t_s) * (event.frequency_hz - random_hz)
        assert scripted.frequency_at(t_s) == pytest.approx(expected, abs=1e-12)


def test_event_boundaries_list_every_edge_in_order() -> None:
    frequency = model(
        events=[FrequencyEvent(7200.0, 30.0, 49.8, ramp_s=2.0), FrequencyEvent(100.0, 5.0, 50.2)]
    )
    assert frequency.event_boundaries() == [100.0, 105.0, 7200.0, 7202.0, 7232.0, 7234.0]
    assert FrequencyEvent(10.0, 5.0, 50.1, ramp_s=1.0).end_s == 17.0


def test_overlapping_events_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        model(events=[FrequencyEvent(0.0, 30.0, 49.9, ramp_s=5.0), FrequencyEvent(38.0, 5, 50.1)])


def test_an_event_far_from_nominal_is_refused_as_a_likely_mix_up() -> None:
    with pytest.raises(ValueError, match=r"59\.8 Hz, 9\.8 Hz from the nominal 50 Hz"):
        model(events=[FrequencyEvent(0.0, 30.0, 59.8)])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((10.0, -1.0, 49.8), "duration_s must be > 0"),
        ((10.0, 0.0, 49.8), "duration_s must be > 0"),
        ((-1.0, 10.0, 49.8), "start_s must be >= 0"),
        ((10.0, 10.0, 0.0), "frequency_hz must be a positive"),
        ((10.0, 10.0, 49.8, -2.0), "ramp_s must be >= 0"),
    ],
)
def test_bad_events_are_refused(arguments: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FrequencyEvent(*arguments)
