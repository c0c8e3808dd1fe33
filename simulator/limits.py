"""What the machine allows a fleet: open files, ephemeral ports and memory, checked before starting.

Every station holds one socket, and with the embedded CSMS the same process holds the other
end too.  A fleet that needs more than the process may open would fail station by station
after minutes of ramp-up; it is better to say so at once, with what to do.
"""

from __future__ import annotations

import math
import resource
from pathlib import Path

__all__ = [
    "PreflightError",
    "available_memory_bytes",
    "check_fleet_fits",
    "ephemeral_port_count",
    "memory_needed_bytes",
    "processes_for_sockets",
    "raise_open_file_limit",
]

#: File descriptors fleetsim needs besides the stations' sockets (logs, trace, metrics, ...).
RESERVED_FILES = 64
#: Resident memory of one fleetsim process before its stations: the interpreter, the compiled
#: OCPP schemas, the scenario (`bench/scale.py` measures about 70 MB; rounded up).
PROCESS_BASE_BYTES = 100 * 1024 * 1024
#: Resident memory per busy station of the reference workload (`bench/scale.py` measures about
#: 27 KB at 10,000 stations; rounded up for scenarios with more EVSEs and queued events).
STATION_BYTES = 40 * 1024
#: What the embedded CSMS holds per connection when it runs in the fleet's process.
EMBEDDED_CSMS_CONNECTION_BYTES = 40 * 1024


class PreflightError(Exception):
    """The fleet cannot run as asked on this machine; the message says what to change."""


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (no privileges needed); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def processes_for_sockets(sockets: int) -> int:
    """The fewest processes that can hold `sockets` open sockets between them, each within the
    (raised) open-file limit and its `RESERVED_FILES`."""
    files = raise_open_file_limit()
    return max(1, math.ceil(sockets / max(1, files - RESERVED_FILES)))


def ephemeral_port_count(
    path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range"),
) -> int | None:
    """How many local ports one source address can use to reach one CSMS address."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return None
    return high - low + 1


def available_memory_bytes(path: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable: what new processes may use without pushing the machine into swap."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "MemAvailable":
                return int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_needed_bytes(stations: int, *, processes: int = 1, embedded_csms: bool = False) -> int:
    """A generous estimate of the resident memory `stations` stations need over `processes`."""
    per_station = STATION_BYTES + (EMBEDDED_CSMS_CONNECTION_BYTES if embedded_csms else 0)
    return processes * PROCESS_BASE_BYTES + stations * per_station


def check_fleet_fits(
    stations: int,
    *,
    embedded_csms_sockets: bool,
    source_addresses: int = 1,
    processes: int = 1,
    meminfo: Path = Path("/proc/meminfo"),
) -> None:
    """Raise `PreflightError` when `stations` WebSockets, split over `processes` worker
    processes, cannot all be open, cannot all have a local port, or would not fit in the
    memory the machine has available."""
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
            f"{processes_for_sockets(stations)} (or --workers auto), or "
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
    needed_bytes = memory_needed_bytes(
        stations, processes=processes, embedded_csms=embedded_csms_sockets
    )
    available_bytes = available_memory_bytes(meminfo)
    if available_bytes is not None and needed_bytes > available_bytes:
        mib = 1024 * 1024
        raise PreflightError(
            f"{stations} stations need about {needed_bytes // mib} MiB of memory, but the "
            f"machine has {available_bytes // mib} MiB available (MemAvailable in /proc/meminfo); "
            "run fewer stations here and the rest on other machines with --shard I/N, or free "
            "memory first"
        )
