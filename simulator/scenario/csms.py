"""The `csms` section: where the stations connect, how they authenticate, how patient they are."""

from __future__ import annotations

import urllib.parse
from typing import Self

from pydantic import BaseModel, Field, field_validator, model_validator

from .base import MODEL_CONFIG, invalid, invalid_fields

__all__ = ["CsmsSettings"]


class CsmsSettings(BaseModel):
    """Where the stations connect, how they authenticate, and how patient they are."""

    model_config = MODEL_CONFIG

    url: str | None = Field(
        default=None,
        description=(
            "WebSocket URL of the CSMS, ws:// or wss://; each station connects to "
            "{url}/{station id}. Leave it out to run against fleetsim's embedded CSMS on "
            "loopback."
        ),
    )
    password: str | None = Field(
        default=None,
        repr=False,
        description=(
            "HTTP Basic password sent by every station (security profile 1 over ws://, 2 over "
            "wss://); the user name is the station id. Prefer password_env for real secrets."
        ),
    )
    password_env: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Name of an environment variable that holds the HTTP Basic password. It is read when "
            "the run starts, so the secret stays out of the scenario file. Give either this or "
            "password, not both."
        ),
    )
    connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Wall seconds a station waits for the TCP, TLS and WebSocket handshakes.",
    )
    call_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Wall seconds a station waits for the answer to a request it sent.",
    )
    validate_outgoing: bool = Field(
        default=True,
        description=(
            "Check every message the stations send against the OCPP JSON schema before sending "
            "it. Catches simulator bugs; switch it off in very large load runs to save CPU."
        ),
    )
    retry_backoff_wait_minimum_s: float = Field(
        default=3.0,
        ge=0,
        description=(
            "OCPP RetryBackOffWaitMinimum: simulated seconds to wait before the first reconnect "
            "attempt."
        ),
    )
    retry_backoff_random_range_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "OCPP RetryBackOffRandomRange: up to this many simulated seconds of random extra "
            "wait, so that a fleet does not reconnect in one burst."
        ),
    )
    retry_backoff_repeat_times: int = Field(
        default=3,
        ge=0,
        description=(
            "OCPP RetryBackOffRepeatTimes: how many times the wait doubles before it stays the "
            "same."
        ),
    )

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            better = {"http": "ws", "https": "wss"}.get(parts.scheme.lower())
            hint = (
                f"; did you mean {better}://{url.split('://', 1)[1]}?"
                if better and "://" in url
                else ""
            )
            raise invalid(
                f"{url!r} must start with ws:// or wss://, because OCPP-J runs over WebSocket"
                + hint
            )
        if not parts.hostname:
            raise invalid(f"{url!r} has no host; write it as {parts.scheme}://host:port/path")
        if parts.query or parts.fragment:
            raise invalid(
                f"{url!r} has a query or fragment; stations append /<station id> to the URL, so "
                "it must end with the path"
            )
        return url

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        if self.password is not None and self.password_env is not None:
            raise invalid_fields(
                [
                    (
                        ("password_env",),
                        "give either password or password_env, not both",
                        self.password_env,
                    )
                ]
            )
        return self
