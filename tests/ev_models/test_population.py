"""`ArrivalProcess`: reproducible, shaped by the site's hourly profile, sensible stays."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from fleetsim.ev_models import SITE_PROFILES, ArrivalProcess, EvArrival, load_catalogue

CATALOGUE = load_catalogue()
MIX = [
    (CATALOGUE["vw-id3-pro-58kwh"], 3.0),
    (CATALOGUE["renault-5-etech-52kwh"], 1.0),
    (CATALOGUE["mercedes-esprinter-113kwh"], 1.0),
]
#: Midnight UTC, so simulated seconds modulo a day are the UTC time of day.
START_EPOCH_S = dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()
#: Upper 99.9 % points of the chi-square distribution by degrees of freedom.
CHI2_999 = {2: 13.82, 3: 16.27, 23: 49.73}


def process(kind: str, seed: int = 7, per_day: float = 40.0, **options: object) -> ArrivalProcess:
    return ArrivalProcess(
        SITE_PROFILES[kind],
        MIX,
        arrivals_per_day=per_day,
        rng=np.random.default_rng(seed),
        start_epoch_s=START_EPOCH_S,
        **options,  # type: ignore[arg-type]
    )


def chain(arrivals: ArrivalProcess, count: int) -> list[EvArrival]:
    """`count` consecutive arrivals, each drawn after the one before."""
    drawn: list[EvArrival] = []
    after_s = 0.0
    for _ in range(count):
        arrival = arrivals.next_arrival(after_s)
        assert arrival is not None
        drawn.append(arrival)
        after_s = arrival.arrival_s
    return drawn


def local_hour(arrival_s: float, tz_offset_s: int = 0) -> int:
    return int(((arrival_s + tz_offset_s) % 86_400) // 3_600)


def test_the_same_seed_gives_the_same_arrivals() -> None:
    assert chain(process("public", seed=11), 300) == chain(process("public", seed=11), 300)
    assert chain(process("public", seed=11), 50) != chain(process("public", seed=12), 50)


@pytest.mark.parametrize("kind", ["depot", "workplace", "public", "highway"])
def test_the_hourly_histogram_of_10000_arrivals_follows_the_profile(kind: str) -> None:
    weights = np.array(SITE_PROFILES[kind].hourly_weights)
    observed = np.bincount(
        [local_hour(a.arrival_s) for a in chain(process(kind), 10_000)], minlength=24
    )
    assert observed[weights == 0].sum() == 0, "arrivals in hours the profile leaves empty"
    active = weights > 0
    expected = 10_000 * weights[active] / weights.sum()
    chi2 = float((((observed[active] - expected) ** 2) / expected).sum())
    degrees = int(active.sum()) - 1
    assert chi2 < CHI2_999[degrees], f"chi-square {chi2:.1f} with {degrees} degrees of freedom"


def test_the_mean_rate_is_arrivals_per_day() -> None:
    arrivals = chain(process("highway", per_day=25.0), 2_500)
    days = arrivals[-1].arrival_s / 86_400
    assert 2_500 / days == pytest.approx(25.0, rel=0.05)


def test_depot_evs_arrive_in_the_evening_and_leave_the_next_morning() -> None:
    for arrival in chain(process("depot"), 500):
        assert 17 <= local_hour(arrival.arrival_s) < 21
        assert 5 <= local_hour(arrival.departure_s) < 8
        assert 8 * 3600 < arrival.departure_s - arrival.arrival_s < 15 * 3600


def test_the_site_utc_offset_shifts_the_profile_to_local_time() -> None:
    offset_s = 2 * 3600
    for arrival in chain(process("workplace", tz_offset_s=offset_s), 300):
        assert 7 <= local_hour(arrival.arrival_s, offset_s) < 10
        assert 5 <= local_hour(arrival.arrival_s) < 8


def test_stays_and_charge_levels_fall_in_the_profile_ranges() -> None:
    for arrival in chain(process("workplace"), 300):
        assert 6 * 3600 <= arrival.departure_s - arrival.arrival_s <= 9 * 3600
        assert 0.2 <= arrival.soc_start <= 0.8
        assert arrival.soc_start <= arrival.target_soc <= 1.0
    for arrival in chain(process("highway"), 300):
        assert 20 * 60 <= arrival.departure_s - arrival.arrival_s <= 45 * 60
        assert arrival.target_soc <= max(0.85, arrival.soc_start)
        assert 0.05 <= arrival.soc_start <= 0.5


def test_models_come_in_their_shares() -> None:
    names = [a.model.name for a in chain(process("public"), 3_000)]
    assert names.count("vw-id3-pro-58kwh") / len(names) == pytest.approx(0.6, abs=0.04)


def test_only_iso15118_20_models_use_it_and_only_in_the_given_share() -> None:
    everyone = chain(process("public", iso15118_share=1.0), 1_000)
    assert {a.model.name for a in everyone if a.uses_iso15118_20} == {"renault-5-etech-52kwh"}
    nobody = chain(process("public", iso15118_share=0.0), 300)
    assert not any(a.uses_iso15118_20 for a in nobody)


def test_tokens_come_from_the_pool_and_a_fixed_min_soc_applies_to_all() -> None:
    arrivals = chain(
        process("public", id_tokens=("CARD-{index:03d}", 5, "RFID"), min_soc=0.25), 200
    )
    assert {a.id_token for a in arrivals} <= {f"CARD-{i:03d}" for i in range(1, 6)}
    assert {a.id_token_type for a in arrivals} == {"RFID"}
    assert {a.min_soc for a in arrivals} == {0.25}
    first_share = sum(a.id_token_first for a in arrivals) / len(arrivals)
    assert 0.15 < first_share < 0.45


def test_a_site_with_no_arrivals_yields_none() -> None:
    assert process("public", per_day=0.0).next_arrival(0.0) is None


def test_profile_overrides_replace_ranges() -> None:
    profile = SITE_PROFILES["depot"].with_overrides(dwell_s=(600.0, 900.0), target_soc=(0.5, 0.6))
    assert profile.departure_window_h is None
    arrivals = ArrivalProcess(
        profile, MIX, 10.0, np.random.default_rng(1), START_EPOCH_S
    ).next_arrival(0.0)
    assert arrivals is not None
    assert 600.0 <= arrivals.departure_s - arrivals.arrival_s <= 900.0
    assert SITE_PROFILES["depot"].with_overrides() is SITE_PROFILES["depot"]


def test_bad_settings_say_what_to_fix() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ArrivalProcess(SITE_PROFILES["public"], [], 1.0, np.random.default_rng(), 0.0)
    with pytest.raises(ValueError, match=r"\{index\}"):
        process("public", id_tokens=("TOKEN{number}", 5, "RFID"))
    with pytest.raises(ValueError, match="hourly_weights"):
        SITE_PROFILES["public"].__class__(
            kind="x", hourly_weights=(1.0,) * 23, soc_start=(0.1, 0.2),
            soc_start_beta=(1.0, 1.0), target_soc=(0.8, 0.9), min_soc=(0.2, 0.3),
            dwell_s=(60.0, 120.0),
        )  # fmt: skip
