"""Block C, authorization: whether a driver's IdToken may charge, and the authorization cache.

Online, the station asks the CSMS (Authorize, C01); offline -- no connection, or not yet
Accepted -- it decides by itself.  With AuthCtrlr.Enabled false every token charges without
asking, as on a free-vend site.

What the station knows locally decides first when AuthCtrlr says so: LocalAuthorizeOffline
offline, LocalPreAuthorize online (C12-C14).  The local authorization list (block D, through the
station's `local_id_token_info` hook) takes precedence over the cache: a token on the list is
judged by its list entry alone, and never cached.  A known token whose status is Accepted
charges at once, without an Authorize; a known token with another status is refused offline
(it is not unknown), and online is asked about again unless the store's DisablePostAuthorize
says not to.  Offline, a token known to neither falls to AuthCtrlr.OfflineTxForUnknownIdEnabled
(C15).

The cache (C10-C12, AuthCacheCtrlr) keeps the CSMS's answers, Accepted or not, from Authorize
and from TransactionEvent (`TransactionEventAnswered`).  An entry holds until its
cacheExpiryDateTime or AuthCacheCtrlr.LifeTime after it was last used, whichever comes first,
checked when it is read: nothing polls.  When a new entry would take the cache past its
Storage maxLimit, expired entries go first, then the entry AuthCacheCtrlr.Policy picks: the
least recently used (LRU) or the oldest (FIFO).  ClearCache empties it (C11), or is Rejected
while the cache is disabled.  The cache is off by default: a cache per station is a fleet's
memory, and the CSMS turns it on with SetVariables.

The CSMS's answer to a TransactionEvent counts (E05): a status other than Accepted ends the
transaction's authorization with TxCtrlr.StopTxOnInvalidId -- which ends the transaction
(Deauthorized / DeAuthorized) when TxStopPoint has Authorized or PowerPathClosed, and otherwise
opens the power path (E06) -- and without it stops the energy once the transaction has had
TxCtrlr.MaxEnergyOnInvalidId Wh (at once with 0): the EV then reports SuspendedEVSE.

A driver stops charging by unplugging, never by presenting a token again, so stopping with the
same token or one of its group (C09, E07) has no code path yet; the group of each cached and
listed token is kept for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...link import Answer
from ..config import StationConfig
from ..core import Block, IdToken, StationCore, TransactionEventAnswered
from ..device_model import VariableSpec
from ..id_tokens import TIME_BYTES, TokenInfo, token_info, token_key
from ..transaction import authorization_ended

__all__ = ["BLOCK", "AuthCache"]

#: AuthCacheCtrlr.Storage's maxLimit: about ninety ISO14443 cards (7-byte UIDs), 47 bytes each.
CACHE_MAX_BYTES = 4096
#: Token types the cache never keeps: a Central token is the CSMS's own, and a
#: NoAuthorization token asks nothing.
_NOT_CACHED = frozenset({"Central", "NoAuthorization"})


class _Cached:
    """One cache entry: the CSMS's answer and when the station last used it (epoch s)."""

    __slots__ = ("info", "used_s")

    def __init__(self, info: TokenInfo, used_s: float) -> None:
        self.info = info
        self.used_s = used_s

    def size_bytes(self, key: str) -> int:
        return self.info.size_bytes(key) + TIME_BYTES

    def expired(self, now_s: float, lifetime_s: int) -> bool:
        return self.info.expired(now_s) or now_s > self.used_s + lifetime_s


class AuthCache:
    """One station's authorization cache (made on the first answer it keeps).

    Entries are kept in a dict in eviction order: the order of arrival, with an entry moved to
    the end when it is used under LRU.
    """

    __slots__ = ("_entries", "bytes_used")

    def __init__(self) -> None:
        self._entries: dict[str, _Cached] = {}
        self.bytes_used = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str, now_s: float, lifetime_s: int, lru: bool) -> TokenInfo | None:
        """The entry of `key` if it still holds, marked as used; an expired one is dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expired(now_s, lifetime_s):
            self._remove(key)
            return None
        entry.used_s = now_s
        if lru:
            del self._entries[key]
            self._entries[key] = entry
        return entry.info

    def store(
        self, key: str, info: TokenInfo, now_s: float, lifetime_s: int, max_bytes: int
    ) -> None:
        """Keep `info` for `key` as the newest entry (a new answer replaces the old one),
        making room first: expired entries, else the first in eviction order."""
        entry = _Cached(info, now_s)
        size = entry.size_bytes(key)
        if size > max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes_used -= old.size_bytes(key)
        while self._entries and self.bytes_used + size > max_bytes:
            self._evict(now_s, lifetime_s)
        self._entries[key] = entry
        self.bytes_used += size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes_used = 0

    def _evict(self, now_s: float, lifetime_s: int) -> None:
        expired = [key for key, entry in self._entries.items() if entry.expired(now_s, lifetime_s)]
        for key in expired or [next(iter(self._entries))]:
            self._remove(key)

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self.bytes_used -= entry.size_bytes(key)


# -- authorizing a driver ---------------------------------------------------------------------


async def authorize(station: StationCore, id_token: IdToken) -> bool:
    """Whether `id_token` may charge now."""
    model = station.device_model
    if not model.boolean("AuthCtrlr", "Enabled"):
        return True
    online = station.online
    if (
        model.boolean("AuthCtrlr", "LocalPreAuthorize")
        if online
        else model.boolean("AuthCtrlr", "LocalAuthorizeOffline")
    ):
        decided = _decide_locally(station, id_token, online)
        if decided is not None:
            return decided
    if not online:
        return model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
    response = await station.call("Authorize", {"idToken": id_token})
    if response is None:
        # No answer: offline rules if the connection went meanwhile; a CALLERROR or a timeout
        # on a live connection refuses the driver.
        if not station.online:
            return model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
        return False
    info = response["idTokenInfo"]
    _remember(station, id_token, info)
    return bool(info["status"] == "Accepted")


def _decide_locally(station: StationCore, id_token: IdToken, online: bool) -> bool | None:
    """What the local list, else the cache, says of `id_token`: True or False, or None when
    neither knows it or the CSMS is to be asked again."""
    model = station.device_model
    listed = station.local_id_token_info(id_token)
    if listed is not None:
        if listed.status == "Accepted":
            return True
        if online and not model.boolean("LocalAuthListCtrlr", "DisablePostAuthorize"):
            return None
        return False
    if not model.boolean("AuthCacheCtrlr", "Enabled"):
        return None
    cache = station.peek_block_state(BLOCK)
    if cache is None:
        return None
    cached = cache.lookup(
        token_key(id_token),
        station.clock.epoch_s(),
        model.integer("AuthCacheCtrlr", "LifeTime"),
        _lru(station),
    )
    if cached is None:
        return None
    if cached.status == "Accepted":
        return True
    if online and not model.boolean("AuthCacheCtrlr", "DisablePostAuthorize"):
        return None
    return False


def _lru(station: StationCore) -> bool:
    return station.device_model.get("AuthCacheCtrlr", "Policy") == "LRU"


def _remember(station: StationCore, id_token: IdToken, info: Mapping[str, Any]) -> None:
    """Keep the CSMS's answer about `id_token` in the cache, if the cache is on (C10)."""
    model = station.device_model
    if not model.boolean("AuthCacheCtrlr", "Enabled") or id_token.get("type") in _NOT_CACHED:
        return
    if station.local_id_token_info(id_token) is not None:
        return  # the local list speaks for this token
    try:
        kept = token_info(info)
    except ValueError:
        return  # an expiry that is no dateTime: nothing the station could rely on
    station.block_state(BLOCK).store(
        token_key(id_token),
        kept,
        station.clock.epoch_s(),
        model.integer("AuthCacheCtrlr", "LifeTime"),
        CACHE_MAX_BYTES,
    )


# -- the CSMS's answers -----------------------------------------------------------------------


def clear_cache(station: StationCore, payload: Mapping[str, Any]) -> Answer:
    """C11: empty the cache; Rejected while it is disabled."""
    if not station.device_model.boolean("AuthCacheCtrlr", "Enabled"):
        return Answer(
            {
                "status": "Rejected",
                "statusInfo": {
                    "reasonCode": "NotEnabled",
                    "additionalInfo": "the authorization cache is disabled "
                    "(AuthCacheCtrlr.Enabled is false)",
                },
            }
        )
    cache = station.peek_block_state(BLOCK)
    if cache is not None:
        cache.clear()
    return Answer({"status": "Accepted"})


async def _transaction_answered(station: StationCore, event: TransactionEventAnswered) -> None:
    """The CSMS's idTokenInfo in a TransactionEvent answer: cache it, and deauthorize the
    transaction if it is not Accepted (E05)."""
    info = event.response["idTokenInfo"]
    _remember(station, event.id_token, info)
    if info["status"] == "Accepted":
        return
    evse = event.evse
    transaction = evse.transaction
    if transaction is None or transaction.id != event.transaction_id:
        return  # it ended meanwhile
    model = station.device_model
    if model.boolean("TxCtrlr", "StopTxOnInvalidId"):
        # TxStopPoint decides whether the transaction ends or goes on without energy (E06).
        await authorization_ended(station, evse, "Deauthorized", "DeAuthorized")
        return
    if transaction.energy_cap_wh is None:
        max_energy_wh = model.integer("TxCtrlr", "MaxEnergyOnInvalidId")
        transaction.energy_cap_wh = transaction.start_register_wh + max_energy_wh
        evse.wake()


def _cache_bytes(station: Any) -> str:
    cache = station.peek_block_state(BLOCK)
    return str(0 if cache is None else cache.bytes_used)


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    auth = "AuthCtrlr"
    yield VariableSpec(auth, "Enabled", "boolean", "true")
    yield VariableSpec(auth, "OfflineTxForUnknownIdEnabled", "boolean", "true")
    yield VariableSpec(auth, "LocalAuthorizeOffline", "boolean", "false")
    yield VariableSpec(auth, "LocalPreAuthorize", "boolean", "false")
    # A remote start is not authorized again by the station: a fact, not a setting.
    yield VariableSpec(auth, "AuthorizeRemoteStart", "boolean", "false", "ReadOnly")

    cache = "AuthCacheCtrlr"
    yield VariableSpec(cache, "Available", "boolean", "true", "ReadOnly")
    yield VariableSpec(cache, "Enabled", "boolean", "false")
    yield VariableSpec(cache, "LifeTime", "integer", "86400", unit="s", min_limit=1)
    yield VariableSpec(cache, "Policy", "OptionList", "LRU", values_list=("LRU", "FIFO"))
    yield VariableSpec(
        cache,
        "Storage",
        "integer",
        "0",
        "ReadOnly",
        unit="B",
        max_limit=CACHE_MAX_BYTES,
        reader=_cache_bytes,
    )
    yield VariableSpec(cache, "DisablePostAuthorize", "boolean", "false")


BLOCK: Block[AuthCache] = Block(
    letter="C",
    name="authorization",
    handlers={"ClearCache": clear_cache},
    variables=_variables,
    reactions={TransactionEventAnswered: _transaction_answered},
    new_state=AuthCache,
    authorize=authorize,
)
