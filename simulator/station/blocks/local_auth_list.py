"""Block D, the local authorization list: SendLocalList (D01) and GetLocalListVersion (D02).

The CSMS installs the list whole (Full) or changes it (Differential: an entry with idTokenInfo
is added or replaced, one without is removed), and the list takes the request's version.  A
Differential update whose version is not newer than the list's is a VersionMismatch (the CSMS
missed an update and must send the list whole); version 0 and below are Failed (D01.FR.18: 0
means "no list").  A request is applied whole or not at all: Failed, with the reason, for
duplicate tokens (D01.FR.06), a Full entry without idTokenInfo, more entries than
ItemsPerMessage or more bytes than BytesPerMessage, a list that would not fit the Entries and
Storage maxLimits, or a list while LocalAuthListCtrlr.Enabled is false.

GetLocalListVersion answers the list's version, 0 while there is none or the list is disabled.
The list lives on the station object, so it survives reconnects and Resets, as a real list in
flash does; a station that is never sent one holds nothing.

The authorization block reads the list through the station's `local_id_token_info` hook (this
block provides it): an entry past its cacheExpiryDateTime counts as absent
(SupportsExpiryDateTime), and LocalAuthListCtrlr.DisablePostAuthorize decides whether a listed
token that is not Accepted is asked about again online (C14).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ...link import Answer
from ..config import StationConfig
from ..core import Block, IdToken, StationCore
from ..device_model import VariableSpec
from ..id_tokens import TokenInfo, token_info, token_key

__all__ = ["BLOCK", "LocalList"]

#: LocalAuthListCtrlr.Entries' maxLimit: a list per station is a fleet's memory.
MAX_ENTRIES = 256
#: LocalAuthListCtrlr.Storage's maxLimit.
MAX_BYTES = 32_768
ITEMS_PER_MESSAGE = 100
BYTES_PER_MESSAGE = 32_768


class LocalList:
    """One station's local authorization list (made by the first accepted SendLocalList)."""

    __slots__ = ("bytes_used", "entries", "version")

    def __init__(self) -> None:
        self.version = 0
        self.entries: dict[str, TokenInfo] = {}
        self.bytes_used = 0

    def install(self, version: int, entries: dict[str, TokenInfo], bytes_used: int) -> None:
        self.version = version
        self.entries = entries
        self.bytes_used = bytes_used


def _failed(reason_code: str, info: str) -> Answer:
    return Answer(
        {"status": "Failed", "statusInfo": {"reasonCode": reason_code, "additionalInfo": info}}
    )


def send_local_list(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    model = station.device_model
    if not model.boolean("LocalAuthListCtrlr", "Enabled"):
        return _failed(
            "NotEnabled", "the local authorization list is disabled (LocalAuthListCtrlr.Enabled)"
        )
    version = int(payload["versionNumber"])
    if version <= 0:
        return _failed("InvalidValue", "versionNumber must be above 0: 0 means no list")
    items: list[Mapping[str, Any]] = list(payload.get("localAuthorizationList") or ())
    if len(items) > ITEMS_PER_MESSAGE:
        return _failed(
            "TooManyElements",
            f"{len(items)} entries; LocalAuthListCtrlr.ItemsPerMessage is {ITEMS_PER_MESSAGE}",
        )
    size = len(orjson.dumps(payload))
    if size > BYTES_PER_MESSAGE:
        return _failed(
            "TooLargeElement",
            f"{size} bytes; LocalAuthListCtrlr.BytesPerMessage is {BYTES_PER_MESSAGE}",
        )
    keys = [token_key(item["idToken"]) for item in items]
    if len(set(keys)) < len(keys):
        return _failed("InvalidValue", "an idToken appears twice in localAuthorizationList")
    current = station.peek_block_state(BLOCK)
    full = payload["updateType"] == "Full"
    if not full and version <= (0 if current is None else current.version):
        return Answer({"status": "VersionMismatch"})
    entries: dict[str, TokenInfo] = {} if full or current is None else dict(current.entries)
    for key, item in zip(keys, items, strict=True):
        info = item.get("idTokenInfo")
        if info is None:
            if full:
                return _failed("MissingParam", f"{key}: a Full list entry needs idTokenInfo")
            entries.pop(key, None)
            continue
        try:
            entries[key] = token_info(info)
        except ValueError:
            return _failed("InvalidValue", f"{key}: cacheExpiryDateTime is not a dateTime")
    used = sum(info.size_bytes(key) for key, info in entries.items())
    if len(entries) > MAX_ENTRIES or used > MAX_BYTES:
        return _failed(
            "OutOfStorage",
            f"the list would hold {len(entries)} entries in {used} bytes; the limits are "
            f"{MAX_ENTRIES} entries (LocalAuthListCtrlr.Entries) and {MAX_BYTES} bytes "
            "(LocalAuthListCtrlr.Storage)",
        )
    station.block_state(BLOCK).install(version, entries, used)
    return Answer({"status": "Accepted"})


def get_local_list_version(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    listed = station.peek_block_state(BLOCK)
    if listed is None or not station.device_model.boolean("LocalAuthListCtrlr", "Enabled"):
        return Answer({"versionNumber": 0})
    return Answer({"versionNumber": listed.version})


def local_id_token_info(station: StationCore, id_token: IdToken) -> TokenInfo | None:
    """The list's entry for `id_token`: None when the list is off or does not hold it, or the
    entry is past its cacheExpiryDateTime."""
    listed = station.peek_block_state(BLOCK)
    if listed is None or not station.device_model.boolean("LocalAuthListCtrlr", "Enabled"):
        return None
    info = listed.entries.get(token_key(id_token))
    if info is None or info.expired(station.clock.epoch_s()):
        return None
    return info


def _entries(station: Any) -> str:
    listed = station.peek_block_state(BLOCK)
    return str(0 if listed is None else len(listed.entries))


def _bytes(station: Any) -> str:
    listed = station.peek_block_state(BLOCK)
    return str(0 if listed is None else listed.bytes_used)


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    local = "LocalAuthListCtrlr"
    yield VariableSpec(local, "Available", "boolean", "true", "ReadOnly")
    yield VariableSpec(local, "Enabled", "boolean", "true")
    yield VariableSpec(
        local, "Entries", "integer", "0", "ReadOnly", max_limit=MAX_ENTRIES, reader=_entries
    )
    yield VariableSpec(local, "ItemsPerMessage", "integer", str(ITEMS_PER_MESSAGE), "ReadOnly")
    yield VariableSpec(local, "BytesPerMessage", "integer", str(BYTES_PER_MESSAGE), "ReadOnly")
    yield VariableSpec(
        local, "Storage", "integer", "0", "ReadOnly", unit="B", max_limit=MAX_BYTES, reader=_bytes
    )
    yield VariableSpec(local, "DisablePostAuthorize", "boolean", "false")
    yield VariableSpec(local, "SupportsExpiryDateTime", "boolean", "true", "ReadOnly")


BLOCK: Block[LocalList] = Block(
    letter="D",
    name="local_auth_list",
    handlers={"SendLocalList": send_local_list, "GetLocalListVersion": get_local_list_version},
    variables=_variables,
    new_state=LocalList,
    local_id_token_info=local_id_token_info,
)
