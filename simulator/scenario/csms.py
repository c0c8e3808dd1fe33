"""The `csms` section: where the stations connect, how they authenticate, how patient they are."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from .base import MODEL_CONFIG, Loc, invalid, invalid_fields

__all__ = ["CsmsSecurity", "CsmsSettings"]

#: Where a URL or a file name puts the station id.
STATION_ID = "{station_id}"
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _other_placeholders(text: str) -> list[str]:
    return [found for found in _PLACEHOLDER.findall(text) if found != STATION_ID]


class CsmsSecurity(BaseModel):
    """How the stations prove who they are and check who the CSMS is (OCPP security
    profiles).  The password of profiles 1 and 2 is csms.password or csms.password_env."""

    model_config = MODEL_CONFIG

    profile: Literal[1, 2, 3] | None = Field(
        default=None,
        description=(
            "OCPP security profile: 1 HTTP Basic auth (ws:// or wss://), 2 TLS 1.2+ with the "
            "server's certificate checked plus Basic auth, 3 TLS with a client certificate per "
            "station and no password (a password set is not sent). Default: 3 with a "
            "client_cert, else 2 for a wss:// URL, else 1. With the embedded CSMS, 2 and 3 make "
            "it serve wss:// with certificates made at start."
        ),
    )
    ca_file: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "PEM file of the CA certificates that issued the CSMS's server certificate; "
            "without it the system's CA store is trusted."
        ),
    )
    client_cert: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Profile 3: PEM file of the station's client certificate (its chain may follow); "
            "{station_id} in the name stands for the station id, for one file per station."
        ),
    )
    client_key: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Profile 3: PEM file of the unencrypted private key of client_cert ({station_id} "
            "allowed); leave it out when client_cert holds the key too."
        ),
    )

    def missing_files(self) -> list[str]:
        """A sentence per file that is not there (those with {station_id} are looked for when
        each station connects); checked when a run starts, not when a scenario is read, so
        that a scenario can be validated on another machine."""
        problems = []
        for name in ("ca_file", "client_cert", "client_key"):
            value = getattr(self, name)
            if value is not None and STATION_ID not in value and not Path(value).is_file():
                problems.append(
                    f"csms.security.{name}: there is no file {value}; give the path of a PEM file"
                )
        return problems

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc, str, Any]] = []
        for name in ("ca_file", "client_cert", "client_key"):
            value = getattr(self, name)
            if value is None:
                continue
            others = _other_placeholders(value)
            if others:
                problems.append(
                    (
                        (name,),
                        f"{others[0]} is not a placeholder fleetsim fills in; only {STATION_ID} "
                        "is (the station id)",
                        value,
                    )
                )
            elif STATION_ID in value and name == "ca_file":
                problems.append(
                    ((name,), "the CA file is the fleet's; remove {station_id} from it", value)
                )
        if self.client_key is not None and self.client_cert is None:
            problems.append(
                (
                    ("client_cert",),
                    "client_key needs the certificate it belongs to; give client_cert too",
                    None,
                )
            )
        if self.client_cert is not None and self.profile in (1, 2):
            problems.append(
                (
                    ("client_cert",),
                    f"security profile {self.profile} presents no client certificate; set "
                    "profile: 3, or remove client_cert",
                    self.client_cert,
                )
            )
        if problems:
            raise invalid_fields(problems)
        return self


class CsmsSettings(BaseModel):
    """Where the stations connect, how they authenticate, and how patient they are."""

    model_config = MODEL_CONFIG

    url: str | None = Field(
        default=None,
        description=(
            "WebSocket URL of the CSMS, ws:// or wss://; each station connects to "
            "{url}/{station id}, or, when the URL holds {station_id}, to the URL with the "
            "station id put there (wss://h/ocpp/{station_id}/, wss://h/ocpp?id={station_id}). "
            "Leave it out to run against fleetsim's embedded CSMS on loopback."
        ),
    )
    password: str | None = Field(
        default=None,
        repr=False,
        description=(
            "HTTP Basic password sent by every station (security profiles 1 and 2); the user "
            "name is the station id. Prefer password_env for real secrets."
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
    security: CsmsSecurity = Field(
        default_factory=CsmsSecurity,
        description="Security profile, CA file and client certificate (profile 3).",
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
        others = _other_placeholders(url)
        if others:
            raise invalid(
                f"{url!r}: {others[0]} is not a placeholder fleetsim fills in; write "
                f"{STATION_ID} where the station id goes"
            )
        if STATION_ID in parts.netloc:
            raise invalid(f"{url!r} puts {STATION_ID} in the host; put it in the path or the query")
        if parts.fragment or (parts.query and STATION_ID not in url):
            raise invalid(
                f"{url!r} has a query or fragment; stations append /<station id> to the URL, so "
                "it must end with the path"
            )
        return url

    @property
    def security_profile(self) -> int:
        """The security profile the stations connect with: the one set, else 3 with a client
        certificate, 2 for a wss:// URL and 1 for ws:// (or the embedded CSMS)."""
        if self.security.profile is not None:
            return self.security.profile
        if self.security.client_cert is not None:
            return 3
        return 2 if (self.url or "").startswith("wss://") else 1

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
        problems: list[tuple[Loc, str, Any]] = []
        profile = self.security_profile
        if profile >= 2 and self.url is not None and not self.url.startswith("wss://"):
            problems.append(
                (
                    ("security", "profile"),
                    f"security profile {profile} runs over TLS, but the URL is ws://; use a "
                    "wss:// URL, or profile 1",
                    profile,
                )
            )
        if profile == 3 and self.url is not None and self.security.client_cert is None:
            problems.append(
                (
                    ("security", "client_cert"),
                    "security profile 3 needs each station's client certificate; give "
                    "client_cert (and client_key), e.g. certs/{station_id}.pem",
                    None,
                )
            )
        url = self.url
        if self.security.ca_file is not None and url is not None and url.startswith("ws://"):
            problems.append(
                (
                    ("security", "ca_file"),
                    "a ws:// URL uses no TLS, so no CA file; use wss:// or remove ca_file",
                    self.security.ca_file,
                )
            )
        if problems:
            raise invalid_fields(problems)
        return self
