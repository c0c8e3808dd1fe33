"""The rule an HTTP Basic password of a station obeys (OCPP 2.0.1 and 2.1, A00.FR.205).

The password a station sends (SecurityCtrlr.BasicAuthPassword, A01, and the basicAuthPassword
of a 2.1 network profile, B09) is a passwordString: letters, digits and the characters
``* - _ = : + | @ .``, at least 16 characters long and at most the maxLimit the station
declares for BasicAuthPassword (40 here, the length every CSMS must accept).  A value that
breaks the rule is refused before it can reach the wire, so a station never locks itself out
with a password the CSMS could not have meant.

The explanation never repeats the value: it is a secret even when it is wrong.
"""

from __future__ import annotations

import re

__all__ = ["PASSWORD_MAX_LENGTH", "PASSWORD_MIN_LENGTH", "password_problem"]

PASSWORD_MIN_LENGTH = 16
#: SecurityCtrlr.BasicAuthPassword's maxLimit: OCPP lets a station declare 40 to 64.
PASSWORD_MAX_LENGTH = 40
_PASSWORD_STRING = re.compile(r"[A-Za-z0-9*\-_=:+|@.]*")
_RULE = (
    f"a passwordString of {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters "
    "(letters, digits and * - _ = : + | @ .)"
)


def password_problem(value: str, what: str = "BasicAuthPassword") -> str | None:
    """Why `value` cannot be a station's HTTP Basic password, naming the rule and never the
    value; None when it can."""
    length = len(value)
    if not PASSWORD_MIN_LENGTH <= length <= PASSWORD_MAX_LENGTH:
        return f"{what} must be {_RULE}; the value has {length}"
    if _PASSWORD_STRING.fullmatch(value) is None:
        return f"{what} must be {_RULE}; the value has other characters"
    return None
