"""`allocate`, `allocate_by_priority`, `SiteCapacity` and `SiteMeter`: fair shares of a
connection, ranked shares, and the record."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleetsim.grid_models import SiteCapacity, SiteMeter, SiteSample, allocate, allocate_by_priority

#: Floating-point slack for sums of shares.
EPS_W = 1e-6


def test_no_limit_grants_every_demand() -> None:
    demands_w = {"a": 11_000.0, "b": 22_000.0, "c": -5_000.0, "d": 0.0}
    assert allocate(demands_w, None) == demands_w
    assert SiteCapacity(None).allocate(demands_w) == demands_w


def test_everyone_gets_an_equal_share_when_all_demand_more() -> None:
    assert allocate({"a": 11_000.0, "b": 22_000.0, "c": 50_000.0}, 30_000.0) == {
        "a": 10_000.0,
        "b": 10_000.0,
        "c": 10_000.0,
    }


def test_what_a_small_consumer_leaves_goes_to_the_others() -> None:
    grants = allocate({"small": 3_700.0, "big": 22_000.0, "bigger": 50_000.0}, 30_000.0)
    assert grants == pytest.approx({"small": 3_700.0, "big": 13_150.0, "bigger": 13_150.0})


def test_everyone_is_served_when_the_limit_allows() -> None:
    demands_w = {"a": 7_400.0, "b": 11_000.0}
    assert allocate(demands_w, 20_000.0) == demands_w


def test_exports_add_to_the_capacity_of_the_others() -> None:
    grants = allocate({"v2g": -10_000.0, "a": 22_000.0, "b": 22_000.0}, 30_000.0)
    assert grants == {"v2g": -10_000.0, "a": 20_000.0, "b": 20_000.0}
    assert sum(grants.values()) == pytest.approx(30_000.0)


def test_a_zero_limit_grants_consumers_nothing_and_exports_everything() -> None:
    assert allocate({"a": 5_000.0, "v2g": -2_000.0, "b": 1_000.0}, 0.0) == pytest.approx(
        {"a": 1_000.0, "v2g": -2_000.0, "b": 1_000.0}
    )
    assert allocate({"a": 5_000.0}, 0.0) == {"a": 0.0}


def test_idle_consumers_get_zero_and_no_share() -> None:
    assert allocate({"idle": 0.0, "a": 40_000.0}, 30_000.0) == {"idle": 0.0, "a": 30_000.0}


def test_a_higher_priority_is_served_first_and_the_rest_share_what_is_left() -> None:
    demands_w = {"vip": 11_000.0, "a": 11_000.0, "b": 11_000.0}
    grants = allocate_by_priority(demands_w, {"vip": 5}, 15_000.0)
    assert grants == {"vip": 11_000.0, "a": 2_000.0, "b": 2_000.0}


def test_consumers_of_one_priority_share_fairly_and_lower_ones_may_get_nothing() -> None:
    demands_w = {"high1": 11_000.0, "high2": 11_000.0, "low": 11_000.0, "idle": 0.0}
    grants = allocate_by_priority(demands_w, {"high1": 2, "high2": 2, "low": -1}, 12_000.0)
    assert grants == {"high1": 6_000.0, "high2": 6_000.0, "low": 0.0, "idle": 0.0}


def test_exports_add_to_the_capacity_whatever_their_priority() -> None:
    demands_w = {"v2g": -4_000.0, "vip": 11_000.0, "a": 11_000.0}
    grants = allocate_by_priority(demands_w, {"v2g": -9, "vip": 9}, 10_000.0)
    assert grants == {"v2g": -4_000.0, "vip": 11_000.0, "a": 3_000.0}


def test_one_priority_or_no_limit_is_plain_water_filling() -> None:
    demands_w = {"a": 3_700.0, "b": 22_000.0, "c": 50_000.0}
    same = {"a": 3, "b": 3, "c": 3}
    assert allocate_by_priority(demands_w, same, 30_000.0) == allocate(demands_w, 30_000.0)
    assert allocate_by_priority(demands_w, {"c": 1}, None) == demands_w


def test_ranked_shares_refuse_what_plain_shares_refuse() -> None:
    with pytest.raises(ValueError, match="finite"):
        allocate_by_priority({"a": math.nan, "b": 1.0}, {"b": 1}, 10.0)
    with pytest.raises(ValueError, match="limit"):
        allocate_by_priority({"a": 1.0, "b": 1.0}, {"b": 1}, -1.0)


@pytest.mark.parametrize("seed", range(10))
def test_random_ranked_sites_never_exceed_the_limit_nor_serve_a_lower_rank_first(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 40))
    demands_w = {i: float(rng.uniform(0, 50_000)) for i in range(count)}
    priorities = {i: int(rng.integers(-2, 3)) for i in range(count)}
    limit_w = float(rng.uniform(0, 400_000))
    grants = allocate_by_priority(demands_w, priorities, limit_w)
    assert sum(grants.values()) <= limit_w + EPS_W
    assert all(0 <= grants[i] <= demands_w[i] + EPS_W for i in range(count))
    for i in range(count):
        for j in range(count):
            # A consumer left short means nobody of a lower rank got anything.
            if priorities[i] > priorities[j] and grants[i] < demands_w[i] - EPS_W:
                assert grants[j] == pytest.approx(0.0, abs=EPS_W)


@pytest.mark.parametrize("seed", range(25))
def test_random_sites_never_exceed_the_limit_and_shares_are_max_min_fair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 60))
    demands = rng.choice([0.0, 3_700.0, 7_400.0, 11_000.0, 22_000.0, 50_000.0], size=count)
    demands = demands * rng.uniform(0.5, 1.0, size=count)
    demands[rng.random(count) < 0.1] *= -0.5  # a few discharging EVs
    demands_w = {index: float(d) for index, d in enumerate(demands)}
    limit_w = float(rng.uniform(0.0, 1.2) * demands.clip(min=0).sum())
    grants = allocate(demands_w, limit_w)

    assert grants.keys() == demands_w.keys()
    assert sum(grants.values()) <= limit_w + EPS_W
    exports_w = -sum(d for d in demands_w.values() if d < 0)
    consumers = [k for k, d in demands_w.items() if d > 0]
    for key, demand_w in demands_w.items():
        if demand_w <= 0:
            assert grants[key] == demand_w
        else:
            assert 0.0 <= grants[key] <= demand_w
    # Max-min fairness: whoever is cut short gets the largest grant there is.
    short = [k for k in consumers if grants[k] < demands_w[k] - EPS_W]
    if short:
        largest_w = max(grants[k] for k in consumers)
        assert all(grants[k] == pytest.approx(largest_w) for k in short)
        used_w = sum(grants[k] for k in consumers)
        assert used_w == pytest.approx(limit_w + exports_w)


def test_allocation_is_order_independent_for_equal_demands() -> None:
    grants = allocate({key: 10_000.0 for key in "abcdefg"}, 10_000.0)
    assert set(grants.values()) == {10_000.0 / 7}


@pytest.mark.parametrize("limit_w", [-1.0, math.nan, math.inf])
def test_bad_limits_are_refused(limit_w: float) -> None:
    with pytest.raises(ValueError, match="site limit"):
        allocate({"a": 1.0}, limit_w)
    with pytest.raises(ValueError, match="site limit"):
        SiteCapacity(limit_w)


def test_a_non_finite_demand_is_refused() -> None:
    with pytest.raises(ValueError, match="demand of 'a'"):
        allocate({"a": math.nan}, 1.0)


def test_capacity_from_kw() -> None:
    assert SiteCapacity.from_kw(150.0).limit_w == 150_000.0
    assert SiteCapacity.from_kw(None).unlimited


# -- the meter -----------------------------------------------------------------------------------


def test_meter_keeps_only_the_steps() -> None:
    meter = SiteMeter()
    meter.record(0.0, 0.0, 0.0)
    meter.record(10.0, 11_000.0, 0.0)
    meter.record(20.0, 11_000.0, 0.0)  # no change: no step
    meter.record(30.0, 5_000.0, 0.0)
    meter.record(30.0, 4_000.0, 2_000.0)  # same instant: the later state holds
    assert meter.samples() == [
        SiteSample(0.0, 0.0, 0.0),
        SiteSample(10.0, 11_000.0, 0.0),
        SiteSample(30.0, 4_000.0, 2_000.0),
    ]


def test_a_change_undone_at_the_same_instant_leaves_no_step() -> None:
    meter = SiteMeter()
    meter.record(0.0, 1_000.0, 0.0)
    meter.record(5.0, 2_000.0, 0.0)
    meter.record(5.0, 1_000.0, 0.0)
    assert meter.samples() == [SiteSample(0.0, 1_000.0, 0.0)]


def test_meter_reads_the_step_in_effect_and_integrates_energy() -> None:
    meter = SiteMeter()
    meter.record(0.0, 3_600.0, 0.0)
    meter.record(3_600.0, 0.0, 7_200.0)
    assert meter.at(-1.0) is None
    assert meter.at(0.0) == SiteSample(0.0, 3_600.0, 0.0)
    assert meter.at(5_000.0) == SiteSample(3_600.0, 0.0, 7_200.0)
    assert meter.energy_wh(1_800.0) == pytest.approx((1_800.0, 0.0))
    assert meter.energy_wh(5_400.0) == pytest.approx((3_600.0, 3_600.0))


def test_meter_refuses_time_going_back_and_signed_powers() -> None:
    meter = SiteMeter()
    meter.record(10.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="in time order"):
        meter.record(5.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="export_w must be"):
        meter.record(20.0, 0.0, -1.0)
