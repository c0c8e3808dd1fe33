"""The IdToken values drivers carry, in the format of each OCPP IdToken type.

A CSMS under test may check that a token looks like its type says -- a 7-byte ISO 14443 UID,
an eMAID with its country and provider, a MAC address -- so a driver of each type presents a
value of that shape.  Values are a function of (type, token number): token 42 of a type is
the same card in every run, and two numbers never give the same value.

The formats (OCPP IdTokenEnumType, 2.0.1, and the IdTokenEnumStringType values 2.1 adds):

    ISO14443         7-byte UID in hexadecimal, NXP's manufacturer byte 04 first
    ISO15693         8-byte UID in hexadecimal: E0, NXP's manufacturer byte 04, 6 bytes
    eMAID            ISO 15118 / DIN SPEC 91286 contract id without separators and without the
                     optional check digit: country NL, provider FLS, instance C + 8 digits
    KeyCode          a PIN of at least 6 digits
    Local            a UUID, as a station's own generated ids are
    MacAddress       the EV communication controller's MAC address (Autocharge), 02:46:53:..
    EVCCID (2.1)     the same MAC address as 12 hexadecimal digits, as ISO 15118 sends it
    VIN (2.1)        a 17-character vehicle identification number with its check digit
    NoAuthorization  empty: the driver presents nothing

Central tokens are the CSMS's own (remote starts) and DirectPayment and NEMA tokens come from
a payment terminal or protocol fleetsim does not model, so no driver carries one:
`NOT_CARRIED` says why, for the scenario's error message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "CARRIED_TYPES",
    "NOT_CARRIED",
    "OCPP_21_ONLY_TYPES",
    "drivers_id_tokens",
    "id_token_value",
    "pool_id_token",
]

_NAMESPACE = uuid.UUID("6f1c5e0a-3c1b-4e0e-9a8e-5f2c1d7b9a10")
#: Odd multipliers: multiplication by an odd number is a bijection modulo a power of two, so
#: different token numbers give different UIDs that do not look sequential.
_UID_MULTIPLIER = 0x9E3779B97F4A7C15
_VICINITY_UID_MULTIPLIER = 0xC2B2AE3D27D4EB4F
_MAC_MULTIPLIER = 0x5BD1E995
_VIN_LETTERS = {
    **{str(digit): digit for digit in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
#: Plant codes of the VIN: letters a VIN may hold (never I, O or Q).
_VIN_PLANTS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def _mixed(index: int, bits: int, multiplier: int) -> int:
    return (index * multiplier) % (1 << bits)


def _iso14443(index: int) -> str:
    return f"04{_mixed(index, 48, _UID_MULTIPLIER):012X}"


def _iso15693(index: int) -> str:
    return f"E004{_mixed(index, 48, _VICINITY_UID_MULTIPLIER):012X}"


def _emaid(index: int) -> str:
    return f"NLFLSC{index:08d}"


def _key_code(index: int) -> str:
    digits = max(6, len(str(index)))
    return f"{(index * 7919 + 104_729) % 10**digits:0{digits}d}"


def _local(index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"local-{index}"))


def _mac_bytes(index: int) -> str:
    return f"024653{_mixed(index, 24, _MAC_MULTIPLIER):06X}"


def _mac_address(index: int) -> str:
    raw = _mac_bytes(index)
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def _vin(index: int) -> str:
    plant = _VIN_PLANTS[(index // 1_000_000) % len(_VIN_PLANTS)]
    body = f"XFLEV10A0R{plant}{index % 1_000_000:06d}"
    pairs = zip(body, _VIN_WEIGHTS, strict=True)
    total = sum(_VIN_LETTERS[char] * weight for char, weight in pairs)
    check = "X" if total % 11 == 10 else str(total % 11)
    return body[:8] + check + body[9:]


_FORMATS: dict[str, Callable[[int], str]] = {
    "ISO14443": _iso14443,
    "ISO15693": _iso15693,
    "eMAID": _emaid,
    "KeyCode": _key_code,
    "Local": _local,
    "MacAddress": _mac_address,
    "EVCCID": _mac_bytes,
    "VIN": _vin,
    "NoAuthorization": lambda index: "",
}

#: The IdToken types drivers may carry.
CARRIED_TYPES = frozenset(_FORMATS)
#: The types OCPP 2.1 added to 2.0.1's IdTokenEnumType.
OCPP_21_ONLY_TYPES = frozenset({"DirectPayment", "EVCCID", "NEMA", "VIN"})
#: Why no driver carries a token of these types.
NOT_CARRIED: dict[str, str] = {
    "Central": "Central tokens are made by the CSMS for remote starts; no driver holds one",
    "DirectPayment": "DirectPayment tokens come from a payment terminal, which fleetsim does "
    "not model",
    "NEMA": "fleetsim does not model NEMA tokens",
}


def id_token_value(token_type: str, index: int) -> str:
    """The idToken of token number `index` (from 1) of `token_type`, one of CARRIED_TYPES."""
    if index < 1:
        raise ValueError(f"token numbers start at 1, got {index}")
    make = _FORMATS.get(token_type)
    if make is None:
        known = ", ".join(sorted(CARRIED_TYPES))
        raise ValueError(f"drivers carry no {token_type!r} tokens; the types are {known}")
    return make(index)


def pool_id_token(pattern: str, index: int, token_type: str | None = None) -> str:
    """The idToken driver number `index` (from 1) of a pool presents: the pool's `pattern`
    with that number, or, when the pool's drivers carry typed tokens (`id_token_types`), the
    token of that number in `token_type`'s format.  The one place that says what a driver
    presents, so a CSMS that lists the drivers' tokens lists exactly those."""
    if token_type is None:
        return pattern.format(index=index)
    return id_token_value(token_type, index)


def drivers_id_tokens(
    pattern: str, count: int, pool_type: str, token_types: Sequence[str] | None = None
) -> Iterator[tuple[str, str]]:
    """Every (idToken, type) the drivers of a pool of `count` may present, driver by driver
    from number 1, each driver's `token_types` in the order given (without them, the
    pattern's token of `pool_type`).  NoAuthorization drivers present nothing, so they have
    no token here."""
    for index in range(1, count + 1):
        if token_types is None:
            yield pool_id_token(pattern, index), pool_type
            continue
        for token_type in token_types:
            if token_type != "NoAuthorization":
                yield pool_id_token(pattern, index, token_type), token_type
