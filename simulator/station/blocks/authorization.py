"""Block C, authorization: whether a driver's IdToken may charge, and the authorization cache.

Online, the station asks the CSMS (Authorize, C01); offline -- no connection, or not yet
Accepted -- it decides by itself.  An answer with a personal message for the driver is
announced to the other blocks (`AuthorizeAnswered`: the display shows it) before it is acted
on.  With AuthCtrlr.Enabled false every token charges without asking, as on a free-vend site.

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

The CSMS's answer to a TransactionEvent counts (E05): a status other than Accepted for the
transaction's own token ends the transaction's authorization with TxCtrlr.StopTxOnInvalidId --
which ends the transaction (Deauthorized / DeAuthorized) when TxStopPoint has Authorized or
PowerPathClosed, and otherwise opens the power path (E06) -- and without it stops the energy
once the transaction has had
TxCtrlr.MaxEnergyOnInvalidId Wh (at once with 0): the EV then reports SuspendedEVSE.

A NoAuthorization token is the driver presenting nothing: it charges without an Authorize.

Who may end a transaction by presenting a token (the `stop_authority` hook, E07, C09, C16):
the token that started it, always and without asking anyone; a token of the same group, when
the station knows both groups and calls the presented token valid (Accepted, or ConcurrentTx,
the CSMS's word for a member of a group already charging); a master pass -- a valid token
whose group is AuthCtrlr.MasterPassGroupId -- any transaction, with stoppedReason MasterPass.
A master pass never starts a transaction.  The group of the transaction's token comes from
the CSMS's answers about it (Authorize, TransactionEvent), kept for the transaction whether or
not the cache is on, else from the local list or the cache; the presented token is judged by
the local list or the cache, and when they do not call it valid the station asks the CSMS
(Authorize, C09) -- offline it has only what they say.  With AuthCtrlr.Enabled false only the
transaction's own token ends it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from typing import Any

from ...link import Answer
from ..config import StationConfig
from ..core import (
    AuthorizeAnswered,
    Block,
    IdToken,
    StationCore,
    TransactionEnded,
    TransactionEventAnswered,
)
from ..device_model import VariableSpec
from ..evse import Transaction
from ..id_tokens import TIME_BYTES, TokenInfo, token_info, token_key
from ..transaction import authorization_ended

__all__ = ["BLOCK", "GROUPS_PER_EVSE", "AuthCache", "AuthState"]

#: AuthCacheCtrlr.Storage's maxLimit: about ninety ISO14443 cards (7-byte UIDs), 47 bytes each.
CACHE_MAX_BYTES = 4096
#: Token types the cache never keeps: a Central token is the CSMS's own, and a
#: NoAuthorization token asks nothing.
_NOT_CACHED = frozenset({"Central", "NoAuthorization"})
#: The groups of this many recently answered tokens per EVSE are remembered for the
#: transactions those tokens start, whether or not the cache is on (C09).
GROUPS_PER_EVSE = 4
#: Statuses with which a presented token may end a transaction of its group or as a master
#: pass: Accepted, and ConcurrentTx, which a CSMS answers for a member of a group whose token
#: is already charging -- the very case of a group stop.
_MAY_STOP = frozenset({"Accepted", "ConcurrentTx"})


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

    def peek(self, key: str) -> TokenInfo | None:
        """The entry of `key` as stored, expired or not, without using it."""
        entry = self._entries.get(key)
        return None if entry is None else entry.info

    def discard(self, key: str) -> None:
        if key in self._entries:
            self._remove(key)

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


class AuthState:
    """What one station's authorization block keeps (made on the first answer worth keeping):
    the cache, and the group of each recently answered token, by token key, in the order the
    answers came (the oldest goes first when there are too many)."""

    __slots__ = ("cache", "groups")

    def __init__(self) -> None:
        self.cache = AuthCache()
        self.groups: dict[str, str] = {}

    def remember_group(self, key: str, group: str, most: int) -> None:
        self.groups.pop(key, None)
        self.groups[key] = group
        while len(self.groups) > most:
            del self.groups[next(iter(self.groups))]


# -- authorizing a driver ---------------------------------------------------------------------


async def authorize(station: StationCore, id_token: IdToken) -> bool:
    """Whether `id_token` may charge now."""
    if id_token.get("type") == "NoAuthorization":
        return True  # the driver presented nothing: there is nothing to authorize
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
    info = await _ask(station, id_token)
    if info is None:
        # No answer: offline rules if the connection went meanwhile; a CALLERROR or a timeout
        # on a live connection refuses the driver.
        if not station.online:
            return model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
        return False
    # A master pass stops transactions and starts none (C16).
    return info.status == "Accepted" and not _is_master_pass(station, info.group)


async def _ask(station: StationCore, id_token: IdToken) -> TokenInfo | None:
    """The CSMS's answer to an Authorize of `id_token` (remembered, and shown to the driver
    when it carries a personal message), or None when it did not answer."""
    response = await station.call("Authorize", {"idToken": id_token})
    if response is None:
        return None
    info = response["idTokenInfo"]
    _remember(station, id_token, info)
    allowed = response.get("allowedEnergyTransfer")
    if "personalMessage" in info or allowed is not None:
        await station.emit(
            AuthorizeAnswered(id_token, info, None if allowed is None else tuple(allowed))
        )
    try:
        return token_info(info)
    except ValueError:  # an expiry that is no dateTime: the status and group still hold
        return TokenInfo(str(info["status"]), group=_group_key(info))


def _known(station: StationCore, id_token: IdToken) -> tuple[TokenInfo, bool] | None:
    """What the local list, else the cache, says of `id_token` now, with whether that store's
    word is final (its DisablePostAuthorize); None when neither knows it."""
    model = station.device_model
    listed = station.local_id_token_info(id_token)
    if listed is not None:
        return listed, model.boolean("LocalAuthListCtrlr", "DisablePostAuthorize")
    if not model.boolean("AuthCacheCtrlr", "Enabled"):
        return None
    state = station.peek_block_state(BLOCK)
    if state is None:
        return None
    cached = state.cache.lookup(
        token_key(id_token),
        station.clock.epoch_s(),
        model.integer("AuthCacheCtrlr", "LifeTime"),
        _lru(station),
    )
    if cached is None:
        return None
    return cached, model.boolean("AuthCacheCtrlr", "DisablePostAuthorize")


def _decide_locally(station: StationCore, id_token: IdToken, online: bool) -> bool | None:
    """What the local list, else the cache, says of `id_token`: True or False, or None when
    neither knows it or the CSMS is to be asked again."""
    found = _known(station, id_token)
    if found is None:
        return None
    info, final = found
    if info.status == "Accepted":
        return not _is_master_pass(station, info.group)
    if online and not final:
        return None
    return False


def _lru(station: StationCore) -> bool:
    return station.device_model.get("AuthCacheCtrlr", "Policy") == "LRU"


def _group_key(info: Mapping[str, Any]) -> str | None:
    group = info.get("groupIdToken")
    return None if group is None else token_key(group)


def _remember(station: StationCore, id_token: IdToken, info: Mapping[str, Any]) -> None:
    """Keep the CSMS's answer about `id_token`: its group for the transaction it may start
    (C09), and the answer in the cache, if the cache is on (C10)."""
    group = _group_key(info)
    if group is not None:
        station.block_state(BLOCK).remember_group(
            token_key(id_token), group, GROUPS_PER_EVSE * len(station.evses)
        )
    model = station.device_model
    if not model.boolean("AuthCacheCtrlr", "Enabled") or id_token.get("type") in _NOT_CACHED:
        return
    if station.local_id_token_info(id_token) is not None:
        return  # the local list speaks for this token
    try:
        kept = token_info(info)
    except ValueError:
        return  # an expiry that is no dateTime: nothing the station could rely on
    station.block_state(BLOCK).cache.store(
        token_key(id_token),
        kept,
        station.clock.epoch_s(),
        model.integer("AuthCacheCtrlr", "LifeTime"),
        CACHE_MAX_BYTES,
    )


# -- ending a transaction with an IdToken (E07, C09, C16) --------------------------------------


def _is_master_pass(station: StationCore, group: str | None) -> bool:
    """Whether a token of `group` (a token key) is a master pass: its groupIdToken is
    AuthCtrlr.MasterPassGroupId (compared as idTokens are, without regard to case)."""
    if group is None:
        return False
    master = station.device_model.get("AuthCtrlr", "MasterPassGroupId")
    return bool(master) and group.split(":", 1)[-1] == master.casefold()


def _group_of(station: StationCore, id_token: IdToken) -> str | None:
    """The group of a transaction's IdToken: from the CSMS's last answer about it, else from
    the local list or the cache."""
    key = token_key(id_token)
    state = station.peek_block_state(BLOCK)
    if state is not None:
        group = state.groups.get(key)
        if group is not None:
            return group
    found = _known(station, id_token)
    return None if found is None else found[0].group


async def _info_for_stop(station: StationCore, id_token: IdToken) -> TokenInfo | None:
    """What the station knows of a token presented to end a transaction: the local list or
    the cache, else -- online, or when they do not call it valid -- the CSMS's answer to an
    Authorize (C09: the station asks to learn the token's group)."""
    found = _known(station, id_token)
    if found is not None:
        known, final = found
        if known.status in _MAY_STOP or final or not station.online:
            return known
    elif not station.online:
        return None
    asked = await _ask(station, id_token)
    if asked is not None:
        return asked
    return None if found is None else found[0]


async def stop_authority(
    station: StationCore, transaction: Transaction, id_token: IdToken
) -> str | None:
    """The stoppedReason with which a driver presenting `id_token` ends `transaction`: Local
    for its own token (E07) or a valid token of its group (C09), MasterPass for a valid token
    of AuthCtrlr.MasterPassGroupId's group (C16); None when the token may not end it."""
    own = transaction.id_token
    if own is not None and token_key(own) == token_key(id_token):
        return "Local"
    if not station.device_model.boolean("AuthCtrlr", "Enabled"):
        return None  # the station judges no token but the one it started with
    info = await _info_for_stop(station, id_token)
    if info is None or info.status not in _MAY_STOP or info.group is None:
        return None
    if _is_master_pass(station, info.group):
        return "MasterPass"
    if own is not None and info.group == _group_of(station, own):
        return "Local"
    return None


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
    state = station.peek_block_state(BLOCK)
    if state is not None:
        state.cache.clear()  # the groups of running transactions' tokens are no cache
    return Answer({"status": "Accepted"})


def cached_id_token_info(station: StationCore, id_token: IdToken, forget: bool) -> TokenInfo | None:
    """What the cache holds about `id_token` (N09), removed with `forget` (N10)."""
    state = station.peek_block_state(BLOCK)
    if state is None:
        return None
    key = token_key(id_token)
    found = state.cache.peek(key)
    if forget:
        state.cache.discard(key)
    return found


def _transaction_answered(
    station: StationCore, event: TransactionEventAnswered
) -> Awaitable[None] | None:
    """The CSMS's idTokenInfo in a TransactionEvent answer: remember it, and deauthorize the
    transaction if it is not Accepted (E05) -- when it is about the transaction's own token,
    not about one that a driver presented to end it."""
    id_token = event.id_token
    info = event.response.get("idTokenInfo")
    if id_token is None or info is None:
        return None  # an answer that only updates the driver's personal message
    _remember(station, id_token, info)
    if info["status"] == "Accepted":
        return None
    evse = event.evse
    transaction = evse.transaction
    if transaction is None or transaction.id != event.transaction_id:
        return None  # it ended meanwhile
    if transaction.id_token is None or token_key(transaction.id_token) != token_key(id_token):
        return None  # the answer is about a token that ended the authorization (StopAuthorized)
    model = station.device_model
    if model.boolean("TxCtrlr", "StopTxOnInvalidId"):
        # TxStopPoint decides whether the transaction ends or goes on without energy (E06).
        return authorization_ended(station, evse, "Deauthorized", "DeAuthorized")
    if transaction.energy_cap_wh is None:
        max_energy_wh = model.integer("TxCtrlr", "MaxEnergyOnInvalidId")
        transaction.energy_cap_wh = transaction.start_register_wh + max_energy_wh
        evse.wake()
    return None


def _transaction_ended(station: StationCore, event: TransactionEnded) -> None:
    """The group of a transaction's token was kept for that transaction; it is over."""
    state = station.peek_block_state(BLOCK)
    id_token = event.transaction.id_token
    if state is not None and state.groups and id_token is not None:
        state.groups.pop(token_key(id_token), None)


def _cache_bytes(station: Any) -> str:
    state = station.peek_block_state(BLOCK)
    return str(0 if state is None else state.cache.bytes_used)


def _variables(config: StationConfig) -> Iterator[VariableSpec]:
    auth = "AuthCtrlr"
    yield VariableSpec(auth, "Enabled", "boolean", "true")
    yield VariableSpec(auth, "OfflineTxForUnknownIdEnabled", "boolean", "true")
    yield VariableSpec(auth, "LocalAuthorizeOffline", "boolean", "false")
    yield VariableSpec(auth, "LocalPreAuthorize", "boolean", "false")
    # Whether a RequestStartTransaction's IdToken is authorized first like a driver's (F01.FR.01,
    # F02.FR.09): the remote control block reads it.
    yield VariableSpec(auth, "AuthorizeRemoteStart", "boolean", "false")
    # The groupIdToken of master passes (C16); empty: the station knows none.
    yield VariableSpec(auth, "MasterPassGroupId", "string", "")

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


BLOCK: Block[AuthState] = Block(
    letter="C",
    name="authorization",
    handlers={"ClearCache": clear_cache},
    variables=_variables,
    reactions={
        TransactionEventAnswered: _transaction_answered,
        TransactionEnded: _transaction_ended,
    },
    new_state=AuthState,
    authorize=authorize,
    stop_authority=stop_authority,
    cached_id_token_info=cached_id_token_info,
)
