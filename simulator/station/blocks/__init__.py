"""The functional blocks of a station, one module each; `BLOCKS` is the list the registry merges.

Adding a block is one new module that exports `BLOCK` and one line here.  The order is the
order in which blocks react to a station event: availability first (a transaction's end is
reported before anything else happens), firmware after it (an update installed by a reboot is
reported Installed after the connectors' status, as after any boot), provisioning last (an
OnIdle reset reboots the station only after every other block has done what the event asked of
it).
"""

from . import (
    authorization,
    availability,
    battery_swap,
    certificates,
    charging_priority,
    data_transfer,
    der_control,
    diagnostics,
    display_messages,
    firmware,
    local_auth_list,
    monitoring,
    payment,
    provisioning,
    remote_control,
    reservation,
    security,
    smart_charging,
    tariff,
    transactions,
    v2x,
)

BLOCKS = (
    availability.BLOCK,  # G
    smart_charging.BLOCK,  # K
    charging_priority.BLOCK,  # K (chargingPriority)
    v2x.BLOCK,  # Q
    transactions.BLOCK,  # E, J
    tariff.BLOCK,  # I
    authorization.BLOCK,  # C
    payment.BLOCK,  # C17-C25
    local_auth_list.BLOCK,  # D
    remote_control.BLOCK,  # F
    reservation.BLOCK,  # H
    data_transfer.BLOCK,  # P
    der_control.BLOCK,  # R
    battery_swap.BLOCK,  # S
    display_messages.BLOCK,  # O
    monitoring.BLOCK,  # N
    security.BLOCK,  # A
    certificates.BLOCK,  # M, A02/A03
    firmware.BLOCK,  # L
    diagnostics.BLOCK,  # N
    provisioning.BLOCK,  # B
)

__all__ = ["BLOCKS"]
