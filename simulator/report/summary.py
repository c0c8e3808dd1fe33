"""The end-of-run summary: one dictionary for the terminal table and the `--summary-json` file.

The JSON is a contract for CI: its keys are documented in the README and only ever added to.
Energy is in Wh, as OCPP meters it; latencies in milliseconds.

`conclude` adds the verdicts a CI job acts on: why the CSMS accepted no station, when it
accepted none (the run then exits 3), and each threshold with its measured figure.
`publish` writes the JSON and JUnit files and prints the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from ..link import LOCAL_CONNECT_OUTCOMES
from ..stats import RunStats
from ..thresholds import Threshold, ThresholdResult, evaluate, format_figure
from .junit import write_junit

__all__ = [
    "SUMMARY_VERSION",
    "build_summary",
    "conclude",
    "no_station_accepted",
    "outcome_lines",
    "publish",
    "ramp_lines",
    "render_summary",
    "write_summary_json",
]

SUMMARY_VERSION = 1


def build_summary(
    stats: RunStats,
    *,
    scenario_name: str,
    stations_total: int,
    wall_seconds: float,
    simulated_seconds: float,
    csms_url: str,
    ocpp_version: str,
    errors: list[str],
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "scenario": scenario_name,
        "csms_url": csms_url,
        "ocpp_version": ocpp_version,
        "stations_total": stations_total,
    }
    summary.update(stats.totals())
    summary["wall_seconds"] = round(wall_seconds, 3)
    summary["simulated_seconds"] = round(simulated_seconds, 3)
    summary["errors"] = errors
    return summary


def no_station_accepted(summary: dict[str, Any], *, interrupted: bool = False) -> str | None:
    """Why the CSMS accepted none of the stations, or None when it accepted one.

    A run that booted nothing measured nothing; CI must hear why: no connection, no answer,
    a CALLERROR, an answer that broke the schema, or Rejected.  Read from the summary alone,
    so a run over worker processes says the same as one in a single process.  A run stopped
    (`interrupted`) before any station tried to connect has nothing to say about the CSMS, and
    one whose every connection failed on this machine (`link.LOCAL_CONNECT_OUTCOMES`) says
    that, and what to fix, rather than that the CSMS accepted none.
    """
    stations = summary["stations_total"]
    if summary["stations_booted"] > 0 or stations == 0:
        return None
    if interrupted and summary["connection_attempts"] == 0:
        return None
    url = summary["csms_url"]
    csms = "the embedded CSMS (in memory)" if url == "memory:" else f"the CSMS at {url}"
    prefix = f"{csms} accepted none of the {stations} stations"
    attempts = summary["connection_attempts"]
    if attempts == 0:
        return f"{prefix}: the run ended before any station tried to connect"
    if summary["stations_connected_peak"] == 0:
        failures = summary["connection_failures"]
        local = _local_failures(summary, attempts)
        if local and sum(count for count, _ in local) == failures:
            return (
                f"none of the {stations} stations reached {csms}: the cause is on this "
                f"machine, not the CSMS: {'; '.join(text for _, text in local)}; the errors "
                "below say more"
            )
        also = ""
        if local:
            also = f"; on this machine: {'; '.join(text for _, text in local)}"
        return (
            f"{prefix}: no station could connect to {url} ({failures} of {attempts} "
            f"connection attempts failed{also}; the errors below say how)"
        )
    reasons = []
    registrations = summary.get("registrations", {})
    if registrations.get("Rejected"):
        reasons.append(
            f"it answered Rejected to the BootNotification of {registrations['Rejected']} stations"
        )
    if registrations.get("Pending"):
        reasons.append(f"it left {registrations['Pending']} stations Pending")
    for code, count in summary.get("callerrors", {}).get("BootNotification", {}).items():
        reasons.append(f"it answered {count} BootNotifications with CALLERROR {code}")
    violations = summary.get("schema_violations", {}).get("BootNotification", {})
    for code, count in violations.items():
        reasons.append(f"{count} of its answers to BootNotification broke the OCPP schema ({code})")
    boots = summary["calls"].get("BootNotification", {})
    if boots.get("timeouts"):
        reasons.append(
            f"it did not answer {boots['timeouts']} BootNotifications within csms.call_timeout_s"
        )
    if not reasons:
        reasons.append(
            "no BootNotification had been answered when the run ended"
            if boots.get("count")
            else "no station had sent its BootNotification when the run ended"
        )
    return f"{prefix}: " + "; ".join(reasons)


def _local_failures(summary: dict[str, Any], attempts: int) -> list[tuple[int, str]]:
    """The connection failures whose cause is on this machine, each counted, with the cause
    and what to fix."""
    by_outcome = summary.get("connection_failures_by_outcome", {})
    found = []
    for outcome, cause in LOCAL_CONNECT_OUTCOMES.items():
        count = by_outcome.get(outcome, 0)
        if count:
            found.append(
                (count, f"{count} of {attempts} connection attempts failed because {cause}")
            )
    return found


def conclude(
    summary: dict[str, Any],
    thresholds: Sequence[Threshold],
    *,
    aborted_by: Threshold | None = None,
    interrupted: bool = False,
) -> list[ThresholdResult]:
    """Add the run's verdicts to `summary` and return the thresholds' results.

    `no_station_accepted` holds the reason, or null, and leads the errors; `thresholds` lists
    each threshold with its measured figure and whether it passed.
    """
    reason = no_station_accepted(summary, interrupted=interrupted)
    summary["no_station_accepted"] = reason
    if reason is not None:
        summary["errors"] = [reason, *summary["errors"]]
    results = evaluate(thresholds, summary, aborted_by=aborted_by)
    summary["thresholds"] = [result.to_json() for result in results]
    return results


def publish(
    summary: dict[str, Any],
    results: Sequence[ThresholdResult],
    console: Console,
    *,
    summary_json_path: Path | None = None,
    junit_path: Path | None = None,
) -> None:
    """Write the summary JSON and the JUnit report where asked, and print the summary."""
    if summary_json_path is not None:
        write_summary_json(summary, summary_json_path)
    if junit_path is not None:
        write_junit(summary, results, junit_path)
    render_summary(summary, console)


def write_summary_json(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_summary(summary: dict[str, Any], console: Console) -> None:
    """Print the summary as a person wants to read it: one row per action, then totals."""
    table = Table(title=f"fleetsim: {summary['scenario']}", title_justify="left")
    for column in ("action", "count", "errors", "timeouts", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "action" else "right")
    for action, row in summary["calls"].items():
        table.add_row(
            action,
            str(row["count"]),
            str(row["errors"]),
            str(row["timeouts"]),
            _ms(row["p50_ms"]),
            _ms(row["p95_ms"]),
            _ms(row["p99_ms"]),
        )
    if summary["calls"]:
        console.print(table)
    wall_s = summary["wall_seconds"] or 1.0
    console.print(
        f"stations {summary['stations_booted']}/{summary['stations_total']} booted, "
        f"peak {summary['stations_connected_peak']} connected; "
        f"messages {summary['messages_sent']} sent, {summary['messages_received']} received "
        f"({(summary['messages_sent'] + summary['messages_received']) / wall_s:.0f}/s); "
        f"CALLERRORs {summary['callerrors_received']}, "
        f"schema violations from the CSMS {summary['csms_schema_violations']}, "
        f"failed connections {summary['connection_failures']}; "
        f"{summary['wall_seconds']:.1f} s wall, {summary['simulated_seconds']:.0f} s simulated"
    )
    for line in [*ramp_lines(summary), *delivery_lines(summary), *outcome_lines(summary)]:
        console.print(line, highlight=False, markup=False)
    faults = summary.get("faults_injected")
    if faults:
        console.print(
            "faults injected on purpose: "
            + ", ".join(f"{kind} {count}" for kind, count in faults.items()),
            highlight=False,
            markup=False,
        )
    for error in summary["errors"]:
        console.print(f"[red]error:[/red] {error}", highlight=False)
    _render_thresholds(summary.get("thresholds", []), console)


def ramp_lines(summary: dict[str, Any]) -> list[str]:
    """A line when handshakes that timed out slowed the ramp down, and one when the stop was
    cut short."""
    lines = []
    ramp = summary.get("ramp")
    if ramp and ramp["slowdowns"]:
        lines.append(
            f"ramp slowed to {_per_second(ramp['lowest_per_s'])} (written "
            f"{_per_second(ramp['written_per_s'])}): up to {ramp['slowed_by_timeouts']:,} "
            f"handshakes timed out in a second; slowed down {ramp['slowdowns']} time(s)"
        )
    stop = summary.get("stop")
    if stop and stop.get("cut_short"):
        lines.append(
            f"stop cut short after {stop['seconds']:.1f} s: " + "; ".join(stop["cut_short"])
        )
    return lines


def _per_second(rate_per_s: float) -> str:
    return f"{rate_per_s:,.0f}/s" if rate_per_s >= 10 else f"{rate_per_s:.1f}/s"


def delivery_lines(summary: dict[str, Any]) -> list[str]:
    """What the CSMS acknowledged, then what the simulation did, so that a CSMS that heard
    nothing is never credited with transactions the stations only simulated."""
    acknowledged = (
        "delivered to the CSMS (acknowledged): transactions "
        f"{summary.get('transactions_started_acknowledged', 0)} started, "
        f"{summary.get('transactions_ended_acknowledged', 0)} ended; "
        f"TransactionEvents {summary.get('transaction_events_acknowledged', 0)}"
    )
    simulated = (
        f"simulated: transactions {summary['transactions_started']} started "
        f"({summary.get('transactions_started_offline', 0)} while offline), "
        f"{summary['transactions_ended']} ended; "
        f"energy {summary['energy_delivered_wh'] / 1000:.1f} kWh into EVs; TransactionEvents "
        f"{summary.get('transaction_events_queued_offline', 0)} queued offline, "
        f"{summary.get('transaction_events_unsent', 0)} never sent, "
        f"{summary.get('transaction_events_dropped', 0)} given up"
    )
    return [acknowledged, simulated]


#: How the summary names each payment and battery-swap outcome, in the order it lists them.
_PAYMENT_WORDS = {
    "settled": "settled",
    "canceled": "canceled (nothing to pay)",
    "settlement_failed": "settlement failed",
    "declined": "cards declined",
    "no_tariff": "cards refused for want of a tariff",
    "not_authorized": "cards not authorized by the CSMS",
    "prepaid_exhausted": "prepaid balances spent",
    "web_started": "web payments started",
    "web_timeout": "web payments timed out",
}
_SWAP_WORDS = {
    "local": "local",
    "remote": "remote (RequestBatterySwap)",
    "no_battery_available": "refused, no battery available",
    "not_authorized": "refused, not authorized",
    "out_timeout": "packs left behind (BatteryOutTimeout)",
}


def _counted(counts: dict[str, int], words: dict[str, str]) -> str:
    known = [f"{counts[key]} {word}" for key, word in words.items() if counts.get(key)]
    others = [f"{count} {key}" for key, count in sorted(counts.items()) if key not in words]
    return ", ".join(known + others)


def outcome_lines(summary: dict[str, Any]) -> list[str]:
    """How the payments, cost limits and battery swaps of the run went: a line for each that
    counted something, none for a run that had none of them."""
    lines = []
    payments = {k: v for k, v in summary.get("payments", {}).items() if v}
    if payments:
        lines.append(f"payments: {_counted(payments, _PAYMENT_WORDS)}")
    limits = summary.get("cost_limits", {})
    if limits.get("reached") or limits.get("ended_local_out_of_credit"):
        lines.append(
            f"cost limits (maxCost): {limits.get('reached', 0)} reached, "
            f"{limits.get('ended_local_out_of_credit', 0)} transactions ended LocalOutOfCredit"
        )
    swaps = {k: v for k, v in summary.get("battery_swaps", {}).items() if v}
    if swaps:
        lines.append(f"battery swaps: {_counted(swaps, _SWAP_WORDS)}")
    return lines


def _render_thresholds(thresholds: list[dict[str, Any]], console: Console) -> None:
    if not thresholds:
        return
    table = Table(title="thresholds", title_justify="left")
    table.add_column("threshold")
    table.add_column("measured", justify="right")
    table.add_column("verdict")
    for row in thresholds:
        measured = row["measured"]
        verdict = "[green]pass[/green]" if row["passed"] else "[red]FAIL[/red]"
        if row["aborted_run"]:
            verdict += " (stopped the run)"
        shown = "-" if measured is None else format_figure(measured)
        table.add_row(row["threshold"], shown, verdict)
    console.print(table)
    failed = sum(not row["passed"] for row in thresholds)
    if failed:
        console.print(f"[red]{failed} of {len(thresholds)} thresholds failed[/red]")
    else:
        console.print(f"[green]all {len(thresholds)} thresholds passed[/green]")
