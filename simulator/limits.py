"""What the machine allows a fleet: open files, ephemeral ports and memory, checked before starting.

Every station holds one socket, and with the embedded CSMS the same process holds the other
end too.  A fleet that needs more than the process may open would fail station by station
after minutes of ramp-up; it is better to say so at once, with what to do.

The three limits pull on each other: more worker processes give more open files but cost
memory each, and a fleet that does not fit the machine's memory needs other machines whatever
the number of processes or addresses.  So every limit is computed first, every one exceeded is
named in one message, and the one remedy offered satisfies them all together: the workers for
the files, the source addresses for the ports, and, when memory cannot be met here at all, the
largest fleet that fits and the shards over machines like this one that hold the whole.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import resource
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FleetLayout",
    "MachineLimits",
    "PreflightError",
    "available_memory_bytes",
    "check_fleet_fits",
    "ephemeral_port_count",
    "exceeded_limits",
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
#: What the embedded CSMS holds per connection, in the fleet's process or its own.
EMBEDDED_CSMS_CONNECTION_BYTES = 40 * 1024
_MIB = 1024 * 1024
#: The first loopback address after the one the embedded CSMS listens on: a remedy that needs
#: source addresses for a CSMS on this machine names a range from here.
_FIRST_SPARE_LOOPBACK = ipaddress.IPv4Address("127.0.0.2")
_SPARE_LOOPBACKS = 2**24 - 3  # up to 127.255.255.254


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


@dataclass(frozen=True, slots=True)
class MachineLimits:
    """What one machine allows a fleet; None where the machine does not say."""

    #: Files one process may open (the soft limit, raised to the hard one).
    open_files: int
    #: Local ports one source address has towards one CSMS address.
    ports_per_address: int | None
    memory_available_bytes: int | None

    @classmethod
    def of_this_machine(
        cls,
        *,
        meminfo: Path = Path("/proc/meminfo"),
        port_range: Path = Path("/proc/sys/net/ipv4/ip_local_port_range"),
    ) -> MachineLimits:
        """This machine's limits, raising the soft open-file limit on the way."""
        return cls(
            open_files=raise_open_file_limit(),
            ports_per_address=ephemeral_port_count(port_range),
            memory_available_bytes=available_memory_bytes(meminfo),
        )

    @property
    def sockets_per_process(self) -> int:
        return max(1, self.open_files - RESERVED_FILES)


@dataclass(frozen=True, slots=True)
class FleetLayout:
    """How a fleet runs on one machine: its stations over worker processes and source
    addresses, with or without the embedded CSMS beside them."""

    stations: int
    #: Worker processes (1: the stations run in the `fleetsim run` process itself).
    processes: int = 1
    source_addresses: int = 1
    #: The embedded CSMS runs on this machine: in the fleet's process when `processes` is 1
    #: (and holds the other end of every socket there), else in processes of its own.
    embedded_csms: bool = False
    #: The stations talk over in-memory links to the embedded CSMS in their own process
    #: (`--fast`): no sockets, so only memory limits them.
    in_memory: bool = False

    @property
    def csms_in_process(self) -> bool:
        return self.embedded_csms and self.processes == 1

    def files_per_process(self) -> int:
        """Open files of the busiest process: its stations' sockets (twice, when the embedded
        CSMS holds the other ends in the same process) and the reserved ones."""
        per_process = math.ceil(self.stations / self.processes)
        return per_process * (2 if self.csms_in_process else 1) + RESERVED_FILES


def memory_needed_bytes(layout: FleetLayout, open_files: int) -> int:
    """A generous estimate of the resident memory of `layout`, the embedded CSMS's processes
    included (as many as `open_files` per process makes it start)."""
    per_station = STATION_BYTES
    processes = layout.processes
    if layout.embedded_csms:
        per_station += EMBEDDED_CSMS_CONNECTION_BYTES
        if not layout.csms_in_process:
            processes += math.ceil(layout.stations / max(1, open_files - RESERVED_FILES))
    return processes * PROCESS_BASE_BYTES + layout.stations * per_station


def exceeded_limits(layout: FleetLayout, machine: MachineLimits) -> list[str]:
    """Each limit of `machine` that `layout` exceeds, as a clause that names the limit, what
    the fleet needs and what the machine has; empty when the fleet fits."""
    exceeded = []
    files = layout.files_per_process()
    if not layout.in_memory and files > machine.open_files:
        whose = "the process" if layout.processes == 1 else "each of the worker processes"
        both = (
            " (both ends of every connection, as the embedded CSMS runs in that process)"
            if layout.csms_in_process
            else ""
        )
        exceeded.append(
            f"open files: {whose} would need {files:,}{both}, but a process may open "
            f"{machine.open_files:,} (the hard limit, `ulimit -Hn`, which only root raises)"
        )
    ports = machine.ports_per_address
    if (
        not layout.in_memory
        and ports is not None
        and layout.stations > ports * layout.source_addresses
    ):
        if layout.source_addresses == 1:
            have = f"1 source address has {ports:,}"
        else:
            have = (
                f"{layout.source_addresses:,} source addresses have "
                f"{ports * layout.source_addresses:,} ({ports:,} each)"
            )
        exceeded.append(
            f"local ports: every station needs one towards the CSMS, {layout.stations:,} in "
            f"all, but {have} (net.ipv4.ip_local_port_range)"
        )
    available = machine.memory_available_bytes
    needed = memory_needed_bytes(layout, machine.open_files)
    if available is not None and needed > available:
        exceeded.append(
            f"memory: about {needed // _MIB:,} MiB ({STATION_BYTES // 1024} KiB per station"
            f"{' and as much for its CSMS connection' if layout.embedded_csms else ''}, "
            f"{PROCESS_BASE_BYTES // _MIB} MiB per process), but the machine has "
            f"{available // _MIB:,} MiB available (MemAvailable in /proc/meminfo)"
        )
    return exceeded


def check_fleet_fits(
    stations: int,
    *,
    embedded_csms: bool,
    source_addresses: int = 1,
    processes: int = 1,
    shards: int = 1,
    fleet_stations: int | None = None,
    in_memory: bool = False,
    machine: MachineLimits | None = None,
) -> None:
    """Raise `PreflightError` when `stations`, split over `processes` worker processes and
    `source_addresses` local addresses, exceed any limit of `machine` (this one by default):
    open files per process, local ports, memory.  The message names every limit exceeded and
    one remedy that meets them all.

    `shards` is the N of `--shard I/N` when this machine runs one shard of a fleet of
    `fleet_stations` stations (`stations` itself when not given); a remedy that needs more
    machines then says how many shards the whole fleet needs.  With `in_memory` (`--fast`:
    one process, no sockets) only memory is checked.
    """
    machine = machine if machine is not None else MachineLimits.of_this_machine()
    layout = FleetLayout(stations, processes, source_addresses, embedded_csms, in_memory)
    exceeded = exceeded_limits(layout, machine)
    if not exceeded:
        return
    what = f"{stations:,} stations" + (
        f" ({'the shard' if shards > 1 else 'the fleet'} in {processes:,} worker processes)"
        if processes > 1
        else ""
    )
    limits = "one limit" if len(exceeded) == 1 else f"{len(exceeded)} limits"
    lines = [f"{what} do not fit this machine as asked; they exceed {limits}:"]
    lines += [f"  {clause}" for clause in exceeded]
    lines.append(
        _remedy(layout, machine, shards, fleet_stations if fleet_stations is not None else stations)
    )
    raise PreflightError("\n".join(lines))


def _fewest_processes(stations: int, embedded_csms: bool, machine: MachineLimits) -> int:
    """The fewest processes whose open files hold `stations` stations: one while its sockets
    (and, with the embedded CSMS, their other ends) fit a process, else enough workers (at
    least two, since only workers put the embedded CSMS in processes of its own)."""
    per_process = machine.sockets_per_process
    if stations * (2 if embedded_csms else 1) <= per_process:
        return 1
    return max(2 if embedded_csms else 1, math.ceil(stations / per_process))


def _fitting_layout(
    stations: int, asked: FleetLayout, machine: MachineLimits, *, keep_processes: bool
) -> FleetLayout:
    """The layout of `stations` stations that meets the open-file and port limits: the workers
    and source addresses asked for (with `keep_processes`; else the fewest workers), and more
    of either where the limits need them.  An in-memory fleet keeps its one process."""
    if asked.in_memory:
        return dataclasses.replace(asked, stations=stations)
    processes = _fewest_processes(stations, asked.embedded_csms, machine)
    if keep_processes:
        processes = max(processes, min(asked.processes, stations))
    ports = machine.ports_per_address
    needed_addresses = math.ceil(stations / ports) if ports else 1
    addresses = max(asked.source_addresses, needed_addresses)
    return FleetLayout(stations, processes, addresses, asked.embedded_csms)


def _fits_memory(layout: FleetLayout, machine: MachineLimits) -> bool:
    available = machine.memory_available_bytes
    return available is None or memory_needed_bytes(layout, machine.open_files) <= available


def _most_stations_in_memory(asked: FleetLayout, machine: MachineLimits) -> int:
    """The largest fleet, up to `asked.stations`, whose fitting layout fits this machine's
    memory (the estimate grows with the stations, so a bisection finds it)."""
    low, high = 0, asked.stations
    while low < high:
        middle = (low + high + 1) // 2
        layout = _fitting_layout(middle, asked, machine, keep_processes=False)
        if _fits_memory(layout, machine):
            low = middle
        else:
            high = middle - 1
    return low


def _remedy(asked: FleetLayout, machine: MachineLimits, shards: int, fleet_stations: int) -> str:
    """One way to run the fleet that meets every limit at once, as a sentence."""
    for keep_processes in (True, False):
        layout = _fitting_layout(asked.stations, asked, machine, keep_processes=keep_processes)
        if _fits_memory(layout, machine) and not asked.in_memory:
            return f"Run it with {' and '.join(_flags_for(layout, asked))}."
    most = _most_stations_in_memory(asked, machine)
    available_mib = (machine.memory_available_bytes or 0) // _MIB
    if most == 0:
        return (
            f"Memory cannot be met on this machine at all: its {available_mib:,} MiB available "
            "do not hold one fleetsim process with a station; free memory first, or run the "
            "fleet on other machines with --shard I/N."
        )
    machines = math.ceil(fleet_stations / most)
    per_shard = math.ceil(fleet_stations / machines)
    layout = _fitting_layout(per_shard, asked, machine, keep_processes=False)
    flags = _flags_for(layout, asked)
    each = f", each with {' and '.join(flags)}" if flags else ""
    whole = f"the whole fleet of {fleet_stations:,} stations" if shards > 1 else "the fleet"
    whatever = (
        " in one process (--fast runs in one)"
        if asked.in_memory
        else ", whatever --workers and --source-address"
    )
    return (
        f"Memory cannot be met on this machine{whatever}: at "
        f"most {most:,} stations fit in its {available_mib:,} MiB. Run {whole} on "
        f"{machines:,} machines like this one, machine I with --shard I/{machines} "
        f"(I from 0 to {machines - 1}, about {per_shard:,} stations each){each}."
    )


def _flags_for(layout: FleetLayout, asked: FleetLayout) -> list[str]:
    """The `--workers` and `--source-address` that turn `asked` into `layout`."""
    flags = []
    if layout.processes != asked.processes:
        flags.append(f"--workers {layout.processes}")
    if layout.source_addresses > asked.source_addresses:
        count = layout.source_addresses
        addresses = _count(count, "local address", "local addresses")
        example = ""
        if asked.embedded_csms and count <= _SPARE_LOOPBACKS:
            last = _FIRST_SPARE_LOOPBACK + (count - 1)
            example = f", such as {_FIRST_SPARE_LOOPBACK}-{last} for the embedded CSMS"
        flags.append(f"--source-address giving {addresses} of the machine{example}")
    return flags


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"
