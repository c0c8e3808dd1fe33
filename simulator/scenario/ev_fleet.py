"""The `ev_fleet` section: which EV models come, how drivers identify, what they ask for."""

from __future__ import annotations

import difflib
from typing import Any, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from .base import MODEL_CONFIG, invalid_fields
from .patterns import check_index_pattern, first_duplicate

__all__ = [
    "EvFleetSettings",
    "ID_TOKEN_MAX_CHARS",
    "IdTokenPool",
    "OCPP_201_ID_TOKEN_TYPES",
]

#: IdTokenEnumType of OCPP 2.0.1, a closed enum; OCPP 2.1 accepts any string of up to 20 chars.
OCPP_201_ID_TOKEN_TYPES = frozenset(
    {
        "Central",
        "eMAID",
        "ISO14443",
        "ISO15693",
        "KeyCode",
        "Local",
        "MacAddress",
        "NoAuthorization",
    }
)
#: IdTokenType.idToken maxLength in each version's schemas.
ID_TOKEN_MAX_CHARS: dict[str, int] = {"2.1": 255, "2.0.1": 36}


class IdTokenPool(BaseModel):
    """The IdTokens drivers present; each session draws one of them."""

    model_config = MODEL_CONFIG

    pattern: str = Field(
        default="TOKEN{index:05d}",
        description="Python format string for the idToken value; must contain {index}.",
    )
    count: int = Field(
        default=1000, ge=1, description="Number of distinct tokens, numbered from 1."
    )
    type: str = Field(
        default="ISO14443",
        min_length=1,
        max_length=20,
        description=(
            "IdToken type (ISO14443, ISO15693, eMAID, KeyCode, Local, Central, MacAddress, ...); "
            "OCPP 2.0.1 accepts only its enum values."
        ),
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_formats(cls, pattern: str) -> str:
        return check_index_pattern(pattern, "TOKEN{index:05d}", "tokens")

    @model_validator(mode="after")
    def _tokens_differ(self) -> Self:
        duplicate = first_duplicate(self.pattern, self.indices)
        if duplicate is not None:
            first, second, token = duplicate
            raise invalid_fields(
                [
                    (
                        ("pattern",),
                        f"tokens {first} and {second} would both be {token!r}; write the "
                        "index so that every number shows, e.g. {index:05d}",
                        self.pattern,
                    )
                ]
            )
        return self

    @property
    def indices(self) -> range:
        """The index of every token: 1 to `count`."""
        return range(1, self.count + 1)

    def id_token(self, index: int) -> str:
        """The idToken value with this index (one of `indices`)."""
        if index not in self.indices:
            raise ValueError(f"token index {index} is outside 1..{self.count}")
        return self.pattern.format(index=index)


class DriverPaymentSettings(BaseModel):
    """How drivers pay at stations with a payment terminal (`stations.payment_terminal`)."""

    model_config = MODEL_CONFIG

    card_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of drivers (0..1) who pay by card at the terminal instead of presenting "
            "their IdToken: the transaction runs for a DirectPayment IdToken and is settled "
            "with NotifySettlement (C18, C21)."
        ),
    )
    prepaid_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of card payers (0..1) whose card is a prepaid card (C17).",
    )
    prepaid_balance: float = Field(
        default=20.0,
        gt=0,
        description="What a prepaid card holds: the energy stops when the cost reaches it.",
    )
    vat_number_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of card payers (0..1) who want a company receipt: the station validates "
            "their VAT number (VatNumberValidation) and the settlement carries it."
        ),
    )


class EvFleetSettings(BaseModel):
    """The EVs that come: which models, how drivers identify, what they ask for."""

    model_config = MODEL_CONFIG

    models: dict[str, float] | None = Field(
        default=None,
        description=(
            "EV models from the catalogue (fleetsim ev-models lists them) and their shares of "
            "arrivals; shares are relative weights. null: every car of the catalogue, equally."
        ),
    )
    extra_models: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Models to add to the catalogue, or fields to change on one of its models, by name: "
            "usable_battery_wh, max_ac_w, ac_phases, max_dc_w, dc_curve, iso15118_20, "
            "bidirectional, max_discharge_w, ..."
        ),
    )
    id_token_first_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description=(
            "Share of sessions (0..1) in which the driver presents the IdToken before plugging "
            "in (use case E03); in the others the EV is plugged in first (E02)."
        ),
    )
    id_tokens: IdTokenPool = Field(
        default=IdTokenPool(), description="The IdTokens drivers present."
    )
    payment: DriverPaymentSettings = Field(
        default=DriverPaymentSettings(),
        description="How drivers pay where stations have a payment terminal.",
    )
    id_token_types: dict[str, float] | None = Field(
        default=None,
        description=(
            "Shares (relative weights) of the IdToken types drivers carry: ISO14443, "
            "ISO15693, eMAID, KeyCode, Local, MacAddress, NoAuthorization (nothing to "
            "present: the station charges without asking) and, in OCPP 2.1, EVCCID and VIN. "
            "Each driver's token is numbered from id_tokens.count and written in its type's "
            "format (a 7-byte UID, an eMAID, a MAC address, ...). null: every driver carries an "
            "id_tokens token (its pattern and type)."
        ),
    )
    stop_with_id_token_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of sessions (0..1) in which the driver ends the transaction by presenting "
            "their IdToken before unplugging (use case E07: StopAuthorized, stoppedReason "
            "Local); in the others unplugging ends it (E09). Drivers with NoAuthorization or "
            "Central tokens have nothing to present and always unplug."
        ),
    )
    priority_button_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of sessions (0..1) in which the driver presses the station's priority "
            "charging button two minutes into the transaction (OCPP 2.1 use case K22): where "
            "the EVSE has a PriorityCharging profile (embedded_csms.priority_charging_limit_w "
            "pushes one) the station charges by it and sends NotifyPriorityCharging."
        ),
    )
    iso15118_share: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description=(
            "Share of ISO 15118-20 capable EVs that use it (send their charging needs); the "
            "others charge as IEC 61851 basic EVs."
        ),
    )
    plug_and_charge_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description=(
            "Share of the EVs that use ISO 15118 which identify themselves with a contract "
            "certificate (Plug & Charge, C07): the station gets it for them "
            "(Get15118EVCertificate), checks it (GetCertificateStatus) and authorizes its eMAID "
            "with its hash data."
        ),
    )
    min_soc: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="State of charge (0..1) below which a bidirectional EV never discharges.",
    )
    remote_start_plugin_delay_s: float | None = Field(
        default=30.0,
        ge=0,
        description=(
            "After the CSMS starts a transaction remotely on an empty EVSE, an EV plugs in after "
            "this many simulated seconds. null: no EV comes, so the station's "
            "EVConnectionTimeOut ends the attempt."
        ),
    )

    @model_validator(mode="after")
    def _types_carried(self) -> Self:
        """Every IdToken type is one drivers can carry, with a positive share."""
        from fleetsim.ev_models import CARRIED_TYPES, NOT_CARRIED

        shares = self.id_token_types
        if shares is None:
            return self
        carried = ", ".join(sorted(CARRIED_TYPES))
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        if not shares:
            problems.append(
                (("id_token_types",), "name at least one type, or leave id_token_types out", None)
            )
        for token_type, share in shares.items():
            where = ("id_token_types", token_type)
            if token_type in NOT_CARRIED:
                problems.append(
                    (where, f"{NOT_CARRIED[token_type]}; drivers carry {carried}", token_type)
                )
            elif token_type not in CARRIED_TYPES:
                close = difflib.get_close_matches(token_type, CARRIED_TYPES, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                problems.append(
                    (
                        where,
                        f"no IdToken type {token_type!r}; {hint}drivers carry {carried}",
                        token_type,
                    )
                )
            elif not share > 0:
                problems.append((where, f"the share must be a positive number, got {share}", share))
        if problems:
            raise invalid_fields(problems)
        return self

    @model_validator(mode="after")
    def _models_exist(self) -> Self:
        """Every model named is in the catalogue (with `extra_models` applied), and the
        additions and changes are valid EV models."""
        from fleetsim.ev_models import CatalogueError, load_catalogue

        try:
            catalogue = load_catalogue(self.extra_models or None)
        except CatalogueError as exc:
            raise invalid_fields([(("extra_models",), str(exc), None)]) from None
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        for name, share in (self.models or {}).items():
            if name not in catalogue:
                close = difflib.get_close_matches(name, catalogue, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                problems.append(
                    (
                        ("models", name),
                        f"no EV model {name!r} in the catalogue{hint} (fleetsim ev-models "
                        "lists them; add one under extra_models)",
                        name,
                    )
                )
            elif not share > 0:
                problems.append(
                    (("models", name), f"the share must be a positive number, got {share}", share)
                )
        if self.models is not None and not self.models:
            problems.append((("models",), "name at least one model, or leave models out", None))
        if problems:
            raise invalid_fields(problems)
        return self
