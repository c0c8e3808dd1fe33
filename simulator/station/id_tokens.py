"""IdTokens as a station remembers them, for the authorization cache (C) and the local list (D).

Both keep, per IdToken, what the CSMS said of it: the status, until when the answer holds
(`cacheExpiryDateTime`) and the group the token belongs to (`groupIdToken`).  They find a token
by one key: OCPP says an idToken is case insensitive, and its type is part of what it is (the
same digits as an ISO14443 card and as a KeyCode are two tokens).

The byte counts are what a record takes as the station stores it -- the key, the status, the
group's key and eight bytes per point in time -- and are what AuthCacheCtrlr.Storage and
LocalAuthListCtrlr.Storage report and limit.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TIME_BYTES", "TokenInfo", "epoch_s", "token_info", "token_key"]

#: Bytes of one stored point in time (a double).
TIME_BYTES = 8


def token_key(id_token: Mapping[str, Any]) -> str:
    """The key an IdTokenType is found by: its type and its case-folded value."""
    return f"{id_token['type']}:{str(id_token['idToken']).casefold()}"


def epoch_s(text: str) -> float:
    """An OCPP dateTime as epoch seconds (UTC when it names no offset); ValueError if it is
    not one."""
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What the station keeps of one IdTokenInfoType."""

    status: str
    #: `cacheExpiryDateTime` in epoch seconds; infinity when the answer carries none.
    expires_s: float = math.inf
    #: The key of `groupIdToken`, None when the token belongs to no group.
    group: str | None = None

    def size_bytes(self, key: str) -> int:
        """What the record of `key` takes in storage."""
        return len(key) + len(self.status) + len(self.group or "") + TIME_BYTES

    def expired(self, now_s: float) -> bool:
        return now_s > self.expires_s


def token_info(info: Mapping[str, Any]) -> TokenInfo:
    """The record of an IdTokenInfoType; ValueError when its cacheExpiryDateTime is not a
    dateTime.  The status is interned: a station holds few distinct ones, many times."""
    expiry = info.get("cacheExpiryDateTime")
    group = info.get("groupIdToken")
    return TokenInfo(
        sys.intern(str(info["status"])),
        math.inf if expiry is None else epoch_s(str(expiry)),
        None if group is None else token_key(group),
    )
