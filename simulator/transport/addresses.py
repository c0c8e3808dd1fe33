"""Local source addresses for station connections: `127.0.0.2,127.0.0.3` or `10.0.0.2-10.0.0.9`.

One source address can hold one connection per ephemeral port towards one CSMS address (28,232
with Linux's default range), so a fleet larger than that spreads its stations over several
local addresses: station i connects from address i modulo their number.
"""

from __future__ import annotations

import ipaddress

__all__ = ["parse_source_addresses"]

#: A range this long is almost surely a typo; nobody has that many addresses to spare.
MAX_ADDRESSES = 65_536


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
        addresses.extend(
            str(ipaddress.ip_address(value)) for value in range(int(first), int(last) + 1)
        )
    return tuple(addresses)
