"""Local source addresses for station connections: `127.0.0.2,127.0.0.3` or `10.0.0.2-10.0.0.9`.

One source address can hold one connection per ephemeral port towards one CSMS address (28,232
with Linux's default range), so a fleet larger than that spreads its stations over several
local addresses: station i connects from address i modulo their number.

An address this machine does not have fails every station's connection in `bind`, before a
packet leaves, which is this machine's fault, not the CSMS's: `check_source_addresses` binds
each address once before a run starts, and `source_address_problem` explains a connection that
failed anyway (an address removed during the run).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from collections.abc import Sequence

__all__ = [
    "SourceAddressError",
    "check_source_addresses",
    "parse_source_addresses",
    "source_address_problem",
]

#: A range this long is almost surely a typo; nobody has that many addresses to spare.
MAX_ADDRESSES = 65_536
#: Unusable addresses named one by one in an error; the rest are counted.
SHOWN_ADDRESSES = 5


class SourceAddressError(ValueError):
    """A `--source-address` the stations cannot connect from; the message says what to do."""


def parse_source_addresses(text: str) -> tuple[str, ...]:
    """The addresses of a comma-separated list of addresses and `first-last` ranges."""
    addresses: list[str] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            raise ValueError(f"--source-address has an empty entry in {text!r}")
        first_text, dash, last_text = part.partition("-")
        try:
            first = ipaddress.ip_address(first_text.strip())
            last = ipaddress.ip_address(last_text.strip()) if dash else first
        except ValueError:
            raise ValueError(
                f"--source-address: {part!r} is not an IP address or a range like "
                "127.0.0.2-127.0.0.9"
            ) from None
        if first.version != last.version or int(last) < int(first):
            raise ValueError(f"--source-address: {part!r} is not a range from low to high")
        if int(last) - int(first) + 1 + len(addresses) > MAX_ADDRESSES:
            raise ValueError(f"--source-address gives more than {MAX_ADDRESSES} addresses")
        # From the first address's own class: an int alone below 2**32 would read as IPv4.
        addresses.extend(str(first + offset) for offset in range(int(last) - int(first) + 1))
    return tuple(addresses)


def _bind_error(address: str) -> OSError | None:
    """The error of binding a socket to `address` (any port, none taken), or None when this
    machine has the address.  Cheap: one socket, closed at once, no port reserved."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # Bind only the address: a port would be one less for the stations (and binding
            # port 0 fails with EADDRINUSE once the address's ports are used up).
            with contextlib.suppress(OSError, AttributeError):
                probe.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
            probe.bind((address, 0))
    except OSError as exc:
        return exc
    return None


def source_address_problem(address: str) -> str | None:
    """Why the stations cannot connect from `address`, as a sentence with the fix, or None
    when a socket binds to it."""
    error = _bind_error(address)
    if error is None:
        return None
    name = errno.errorcode.get(error.errno or 0, str(error.errno))
    if error.errno == errno.EADDRNOTAVAIL:
        length = 128 if ":" in address else 32
        return (
            f"{address} is not an address of this machine (bind failed: {name}); list them "
            f"with `ip -brief address`, or add it to the interface towards the CSMS (as root: "
            f"`ip address add {address}/{length} dev IFACE`; `lo` for a CSMS on this "
            "machine), or leave it out of --source-address"
        )
    return (
        f"the stations cannot connect from {address} (bind failed: {name}, "
        f"{error.strerror}); give addresses of this machine (`ip -brief address` lists them)"
    )


def check_source_addresses(addresses: Sequence[str]) -> None:
    """Raise `SourceAddressError` naming every address of `addresses` the stations cannot
    connect from, before a run starts, rather than one failed connection per station."""
    problems = [
        (address, problem)
        for address in addresses
        if (problem := source_address_problem(address)) is not None
    ]
    if not problems:
        return
    first = problems[0][1]
    if len(problems) == 1:
        raise SourceAddressError(f"--source-address: {first}")
    others = [other for other, _ in problems[1:]]
    shown = ", ".join(others[:SHOWN_ADDRESSES])
    more = f" and {len(others) - SHOWN_ADDRESSES} more" if len(others) > SHOWN_ADDRESSES else ""
    raise SourceAddressError(
        f"--source-address: {len(problems)} of the {len(addresses)} addresses cannot be "
        f"used: {first}; the same holds for {shown}{more}"
    )
