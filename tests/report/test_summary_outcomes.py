"""The end-of-run summary's payments, cost limits and battery swaps: in the JSON and on the
terminal only when the run counted any, never as noise in a run that had none."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from fleetsim.simulator.report import build_summary, render_summary
from fleetsim.simulator.stats import RunStats


def _summary(stats: RunStats) -> dict[str, Any]:
    return build_summary(
        stats,
        scenario_name="outcomes",
        stations_total=1,
        wall_seconds=2.0,
        simulated_seconds=3600.0,
        csms_url="memory:",
        ocpp_version="2.1",
        errors=[],
    )


def _printed(summary: dict[str, Any]) -> str:
    console = Console(record=True, width=300)
    render_summary(summary, console)
    return console.export_text()


def test_a_run_without_payments_limits_or_swaps_shows_none_of_them() -> None:
    summary = _summary(RunStats())
    assert not {"payments", "cost_limits", "battery_swaps"} & summary.keys()
    printed = _printed(summary)
    for word in ("payments:", "cost limits", "battery swaps:"):
        assert word not in printed


def test_counted_outcomes_appear_in_the_json_and_on_the_terminal() -> None:
    stats = RunStats()
    for outcome in ("settled", "settled", "canceled", "settlement_failed", "declined"):
        stats.payment(outcome)
    stats.cost_limit_reached()
    stats.transaction_ended("LocalOutOfCredit")
    for outcome in ("local", "local", "not_authorized", "out_timeout"):
        stats.battery_swap(outcome)
    summary = _summary(stats)
    assert summary["payments"] == {
        "canceled": 1,
        "declined": 1,
        "settled": 2,
        "settlement_failed": 1,
    }
    assert summary["cost_limits"] == {"reached": 1, "ended_local_out_of_credit": 1}
    assert summary["battery_swaps"] == {"local": 2, "not_authorized": 1, "out_timeout": 1}
    printed = _printed(summary)
    assert (
        "payments: 2 settled, 1 canceled (nothing to pay), 1 settlement failed, 1 cards declined"
        in printed
    )
    assert "cost limits (maxCost): 1 reached, 1 transactions ended LocalOutOfCredit" in printed
    assert (
        "battery swaps: 2 local, 1 refused, not authorized, 1 packs left behind "
        "(BatteryOutTimeout)" in printed
    )
