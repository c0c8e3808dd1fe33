"""What the machine allows a fleet: open files and ephemeral ports, checked before starting.

Every station holds one socket, and with the embedded CSMS the same process holds the other
end too.  A fleet that needs more than the process may open would fail station by station
after minutes of ramp-up; it is better to say so at once, with what to do.
"""

from __future__ import annotations

import math
import resource
from pathlib import Path

__all__ = ["PreflightError", "check_fleet_fits", "ephemeral_port_count", "raise_open_file_limit"]

#: File descriptors fleetsim needs besides the stations' sockets (logs, trace, metrics, ...).
RESERVED_FILES = 64


class PreflightError(Exception):
    """The fleet cannot run as asked on this machine; the message says what to change."""


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (no privileges needed); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def ephemeral_port_count(
    path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range"),
) -> int | None:
    """How many local ports one source address can use to reach one CSMS address."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return None
    return high - low + 1


def check_fleet_fits(
    stations: int, *, embedded_csms_sockets: bool, source_addresses: int = 1, processes: int = 1
) -> None:
    """Raise `PreflightError` when `stations` WebSockets, split over `processes` worker
    processes, cannot all be open, or cannot all have a local port."""
    files = raise_open_file_limit()
    per_process = math.ceil(stations / processes)
    needed = per_process * (2 if embedded_csms_sockets else 1) + RESERVED_FILES
    if needed > files:
        both = (
            " (both ends, since the embedded CSMS runs in this process)"
            if (embedded_csms_sockets)
            else ""
        )
        whose = f"{stations} stations" if processes == 1 else f"{per_process} stations per worker"
        raise PreflightError(
            f"{whose} need about {needed} open files{both}, but a process may open {files}; "
            f"run the fleet as more processes with --workers "
            f"{math.ceil(stations / max(1, files - RESERVED_FILES))} (or --workers auto), or "
            "over machines with --shard I/N"
        )
    ports = ephemeral_port_count()
    if ports is not None and stations > ports * source_addresses:
        raise PreflightError(
            f"{stations} stations need {stations} local ports to reach the CSMS, but "
            f"{source_addresses} source address(es) have {ports * source_addresses} "
            f"({ports} each, net.ipv4.ip_local_port_range); give more with --source-address "
            "or split the fleet with --shard I/N over machines"
        )
