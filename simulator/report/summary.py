"""The end-of-run summary: one dictionary for the terminal table and the `--summary-json` file.

The JSON is a contract for CI: its keys are documented in the README and only ever added to.
Energy is in Wh, as OCPP meters it; latencies in milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from ..stats import RunStats

__all__ = ["SUMMARY_VERSION", "build_summary", "render_summary", "write_summary_json"]

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
        f"transactions {summary['transactions_started']} started, "
        f"{summary['transactions_ended']} ended; "
        f"energy {summary['energy_delivered_wh'] / 1000:.1f} kWh; "
        f"CALLERRORs {summary['callerrors_received']}, "
        f"schema violations from the CSMS {summary['csms_schema_violations']}; "
        f"{summary['wall_seconds']:.1f} s wall, {summary['simulated_seconds']:.0f} s simulated"
    )
    for error in summary["errors"]:
        console.print(f"[red]error:[/red] {error}", highlight=False)
