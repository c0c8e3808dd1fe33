"""Payments, cost limits and battery swaps as a run reports them: small fleets against the
embedded CSMS on the MockClock, their summary figures and the Prometheus series of the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import yaml
from prometheus_client import REGISTRY, generate_latest
from rich.console import Console
from trio.testing import MockClock

from fleetsim.simulator.metrics import BATTERY_SWAP_OUTCOMES, PAYMENT_OUTCOMES
from fleetsim.simulator.report.summary import outcome_lines
from fleetsim.simulator.run import RunOptions, RunOutcome, run_scenario
from fleetsim.simulator.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent


def _run(data: dict[str, Any], scrape_at_wall_s: float) -> tuple[RunOutcome, str]:
    """Run the scenario in memory; the summary, and a scrape of the metrics taken while it ran."""
    scenario = Scenario.model_validate(data)
    outcomes: list[RunOutcome] = []
    scraped: list[str] = []

    async def run_and_scrape() -> None:
        async def run() -> None:
            options = RunOptions(in_memory=True, show_progress=False)
            outcomes.append(await run_scenario(scenario, options, Console(quiet=True)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await trio.sleep(scrape_at_wall_s)
            scraped.append(generate_latest(REGISTRY).decode())

    trio.run(run_and_scrape, clock=MockClock(autojump_threshold=0))
    return outcomes[0], scraped[0]


def _series(text: str, name: str) -> dict[str, float]:
    """The samples of one metric in an exposition text, by their label text."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, value = line.rsplit(" ", 1)
            found[labels[len(name) :]] = float(value)
    return found


def test_a_swap_run_counts_its_swaps_in_the_summary_and_the_metrics() -> None:
    data = yaml.safe_load((ROOT / "scenarios" / "battery-swap.yaml").read_text())
    data["stations"]["count"] = 3
    data["duration_s"] = 180  # three simulated hours at speed 60
    data["sites"][0]["arrivals_per_evse_per_day"] = 12
    outcome, scraped = _run(data, scrape_at_wall_s=170)
    swaps = outcome.summary["battery_swaps"]
    assert set(swaps) <= set(BATTERY_SWAP_OUTCOMES)
    assert swaps.get("local", 0) > 0 and swaps.get("remote", 0) > 0
    assert "payments" not in outcome.summary and "cost_limits" not in outcome.summary
    (line,) = outcome_lines(outcome.summary)
    assert line.startswith(f"battery swaps: {swaps['local']} local, {swaps['remote']} remote")
    # Every outcome is a series from the start; the scrape near the end saw the swaps so far.
    series = _series(scraped, "fleetsim_battery_swaps_total")
    assert {f'{{outcome="{o}"}}' for o in BATTERY_SWAP_OUTCOMES} == set(series)
    assert 0 < series['{outcome="local"}'] <= swaps["local"]


def test_a_run_of_prepaid_card_payers_counts_payments_and_cost_limits() -> None:
    data: dict[str, Any] = {
        "name": "prepaid-cards",
        "seed": 5,
        "speed": 60,
        "duration_s": 180,  # three simulated hours
        "start": "2026-01-15T12:00:00Z",
        "stations": {
            "count": 4,
            "payment_terminal": {},
            "variables": {"TxCtrlr.TxStopPoint": "EnergyTransfer"},
        },
        "sites": [{"name": "mall", "kind": "public", "arrivals_per_evse_per_day": 20}],
        "ev_fleet": {
            "id_token_first_share": 0.0,
            "payment": {"card_share": 1.0, "prepaid_share": 1.0, "prepaid_balance": 2.0},
        },
        "embedded_csms": {"default_tariff": {"currency": "EUR", "price_kwh": 0.40}},
    }
    outcome, scraped = _run(data, scrape_at_wall_s=170)
    summary = outcome.summary
    payments = summary["payments"]
    assert set(payments) <= set(PAYMENT_OUTCOMES)
    # 2.00 at 0.40 a kWh is 5 kWh: every prepaid card runs out, ends its transaction
    # (EnergyTransfer is a stop point) and is settled at its balance.
    assert payments.get("prepaid_exhausted", 0) > 0
    assert payments.get("settled", 0) > 0
    limits = summary["cost_limits"]
    assert limits["reached"] >= payments["prepaid_exhausted"]
    assert limits["ended_local_out_of_credit"] > 0
    lines = outcome_lines(summary)
    assert lines[0].startswith(f"payments: {payments['settled']} settled")
    assert lines[1].startswith(f"cost limits (maxCost): {limits['reached']} reached")
    series = _series(scraped, "fleetsim_payments_total")
    assert {f'{{outcome="{o}"}}' for o in PAYMENT_OUTCOMES} == set(series)
    assert _series(scraped, "fleetsim_cost_limits_reached_total")[""] > 0
