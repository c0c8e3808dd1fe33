"""Every writable variable, set over OCPP, either changes what the station acts on or is refused.

The walk sets each writable variable of the device model to a valid value other than the one in
effect, through SetVariables, and reads it back the way station code reads it (`integer`,
`boolean`, `members`, `get`): Accepted means the acting code sees the new value at once,
RebootRequired means it sees the old one until the next reboot and the new one after it, and
Rejected must say why.  `test_honest_variables` proves that each of these reads is in station
code.  `CASES` names, for every writable variable, the test that sets it over OCPP and checks
what the station then does (a test that fails if the station ignored the value); a writable
variable without one fails the walk, so a new writable variable comes with its case.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from fleetsim.simulator.ocpp import OcppVersion
from fleetsim.simulator.station import EvseConfig, StationConfig
from fleetsim.simulator.station.device_model import DeviceModel, VariableSpec
from fleetsim.simulator.station.registry import station_spec
from tests.helpers import STATION_ID, station_on_memory_link

#: (component, variable) -> "module::test" that sets it and checks what follows.
CASES: dict[tuple[str, str], str] = {
    ("SmartChargingCtrlr", "NotifyChargingLimitWithSchedules"): "test_external_limits::"
    "test_with_schedules_the_notification_carries_the_limit",
    ("SmartChargingCtrlr", "LimitChangeSignificance"): "test_external_limits::"
    "test_a_change_below_limit_change_significance_sends_no_rate_change",
    ("OCPPCommCtrlr", "MessageAttempts"): "test_writable_variable_effects::"
    "test_message_attempts_and_interval_set_over_ocpp_pace_the_retries",
    ("OCPPCommCtrlr", "MessageAttemptInterval"): "test_writable_variable_effects::"
    "test_message_attempts_and_interval_set_over_ocpp_pace_the_retries",
    ("TxCtrlr", "EVConnectionTimeOut"): "test_writable_variable_effects::"
    "test_ev_connection_timeout_ends_a_remote_start_after_that_many_seconds",
    ("TxCtrlr", "StopTxOnEVSideDisconnect"): "test_tx_points::"
    "test_an_ev_side_disconnect_deauthorizes_or_suspends_the_transaction",
    ("TxCtrlr", "StopTxOnInvalidId"): "test_authorization::"
    "test_without_stop_tx_on_invalid_id_the_energy_stops_instead",
    ("TxCtrlr", "MaxEnergyOnInvalidId"): "test_authorization::"
    "test_max_energy_on_invalid_id_lets_that_much_through_then_suspends",
    ("TxCtrlr", "TxStartPoint"): "test_tx_points::"
    "test_a_transaction_starts_when_its_start_point_becomes_true",
    ("TxCtrlr", "TxStopPoint"): "test_stop_by_token::"
    "test_when_the_ev_leaving_ends_transactions_the_token_only_ends_the_energy",
    ("SampledDataCtrlr", "Enabled"): "test_writable_variable_effects::"
    "test_sampled_data_disabled_sends_transaction_events_without_meter_values",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "test_transactions::"
    "test_a_new_tx_updated_interval_applies_from_the_next_sample_without_a_burst",
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): "test_writable_variable_effects::"
    "test_tx_started_and_updated_measurands_are_what_the_events_carry",
    ("SampledDataCtrlr", "TxStartedMeasurands"): "test_writable_variable_effects::"
    "test_tx_started_and_updated_measurands_are_what_the_events_carry",
    ("SampledDataCtrlr", "TxEndedMeasurands"): "test_aligned_data::"
    "test_the_ended_event_carries_samples_at_the_tx_ended_intervals",
    ("SampledDataCtrlr", "TxEndedInterval"): "test_aligned_data::"
    "test_the_ended_event_carries_samples_at_the_tx_ended_intervals",
    ("AlignedDataCtrlr", "Enabled"): "test_aligned_data::"
    "test_enabled_false_stops_clock_aligned_values_and_true_resumes_them",
    ("AlignedDataCtrlr", "Interval"): "test_aligned_data::"
    "test_clock_aligned_values_land_on_interval_boundaries_of_simulated_time",
    ("AlignedDataCtrlr", "Measurands"): "test_measurands::"
    "test_every_advertised_measurand_has_a_sane_value",
    ("AlignedDataCtrlr", "TxEndedMeasurands"): "test_aligned_data::"
    "test_the_ended_event_carries_samples_at_the_tx_ended_intervals",
    ("AlignedDataCtrlr", "TxEndedInterval"): "test_aligned_data::"
    "test_the_ended_event_carries_samples_at_the_tx_ended_intervals",
    ("AuthCtrlr", "Enabled"): "test_writable_variable_effects::"
    "test_auth_ctrlr_disabled_lets_any_token_charge_without_asking",
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "test_authorization::"
    "test_without_local_authorize_offline_the_cache_is_not_used",
    ("AuthCtrlr", "LocalAuthorizeOffline"): "test_authorization::"
    "test_the_transaction_event_answer_feeds_the_cache",
    ("AuthCtrlr", "LocalPreAuthorize"): "test_authorization::"
    "test_local_pre_authorize_charges_a_cached_token_without_asking",
    ("AuthCtrlr", "AuthorizeRemoteStart"): "test_remote_control::"
    "test_with_authorize_remote_start_a_refused_token_starts_nothing",
    ("AuthCtrlr", "MasterPassGroupId"): "test_stop_by_token::"
    "test_a_master_pass_ends_every_transaction_and_starts_none",
    ("AuthCacheCtrlr", "Enabled"): "test_authorization::"
    "test_the_transaction_event_answer_feeds_the_cache",
    ("AuthCacheCtrlr", "LifeTime"): "test_authorization::"
    "test_a_cache_entry_expires_after_its_lifetime",
    ("AuthCacheCtrlr", "Policy"): "test_authorization::test_a_full_cache_evicts_by_its_policy",
    ("AuthCacheCtrlr", "DisablePostAuthorize"): "test_authorization::"
    "test_local_pre_authorize_charges_a_cached_token_without_asking",
    ("LocalAuthListCtrlr", "Enabled"): "test_local_auth_list::"
    "test_a_disabled_list_is_not_used_nor_sent",
    ("LocalAuthListCtrlr", "DisablePostAuthorize"): "test_local_auth_list::"
    "test_the_list_authorizes_online_without_asking_with_local_pre_authorize",
    ("ReservationCtrlr", "Enabled"): "test_reservation::"
    "test_the_reservation_controller_variables_act",
    ("ReservationCtrlr", "NonEvseSpecific"): "test_reservation::"
    "test_the_reservation_controller_variables_act",
    ("DisplayMessageCtrlr", "Enabled"): "test_display_messages::"
    "test_with_the_display_disabled_set_display_message_is_rejected",
    ("MonitoringCtrlr", "Enabled"): "test_monitoring::test_disabled_monitoring_sends_no_events",
    ("MonitoringCtrlr", "OfflineQueuingSeverity"): "test_monitoring::"
    "test_offline_events_are_queued_by_severity_and_sent_after_reconnecting",
    ("OCPPCommCtrlr", "HeartbeatInterval"): "test_provisioning::"
    "test_new_heartbeat_interval_applies_to_the_next_beat",
    ("OCPPCommCtrlr", "RetryBackOffWaitMinimum"): "test_writable_variable_effects::"
    "test_retry_back_off_wait_minimum_and_random_range_set_the_reconnect_delay",
    ("OCPPCommCtrlr", "RetryBackOffRandomRange"): "test_writable_variable_effects::"
    "test_retry_back_off_wait_minimum_and_random_range_set_the_reconnect_delay",
    ("OCPPCommCtrlr", "RetryBackOffRepeatTimes"): "test_writable_variable_effects::"
    "test_retry_back_off_repeat_times_caps_the_doubling",
    ("OCPPCommCtrlr", "NetworkConfigurationPriority"): "test_reports_and_network::"
    "test_the_station_migrates_to_the_new_csms_after_a_reset",
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts"): "test_reports_and_network::"
    "test_an_unreachable_new_csms_sends_the_station_back_to_the_previous_slot",
    ("TxCtrlr", "ResumptionTimeout"): "test_reset_resume::"
    "test_immediate_and_resume_is_rejected_when_it_cannot_resume",
    ("TxCtrlr", "AllowEnergyTransferResumption"): "test_reset_resume::"
    "test_without_energy_transfer_resumption_the_transaction_resumes_suspended",
    ("TariffCostCtrlr", "Enabled"): "test_tariff::test_the_tariff_cost_controller_variables_act",
    ("TariffCostCtrlr", "Currency"): "test_tariff::test_the_tariff_cost_controller_variables_act",
    ("TariffCostCtrlr", "Interval"): "test_tariff::test_the_tariff_cost_controller_variables_act",
    ("ClockCtrlr", "TimeSource"): "test_reports_and_network::"
    "test_time_source_heartbeat_sets_the_station_clock_from_the_csms",
    ("SecurityCtrlr", "BasicAuthPassword"): "test_security_profiles::"
    "test_a_new_password_is_used_for_the_next_connection",
    ("SecurityCtrlr", "CertSigningWaitMinimum"): "test_certificates::"
    "test_without_an_answer_the_request_is_repeated_with_doubling_waits",
    ("SecurityCtrlr", "CertSigningRepeatTimes"): "test_certificates::"
    "test_without_an_answer_the_request_is_repeated_with_doubling_waits",
}


def case_sets(case: str, component: str, variable: str) -> bool:
    """Whether the test `case` ("module::function") exists and names `component`.`variable`:
    in its own source, or (for a test that sets it through its module's helper or table, such
    as `_set_points`) in both its own source and its module's."""
    module_name, _, function_name = case.partition("::")
    module = importlib.import_module(f"tests.station.{module_name}")
    source = inspect.getsource(getattr(module, function_name))
    names = (f'"{component}"', f'"{variable}"')
    if all(name in source for name in names):
        return True
    module_source = inspect.getsource(module)
    return all(name in module_source for name in names) and any(
        helper in source for helper in _helpers_naming(module_source, names)
    )


def _helpers_naming(module_source: str, names: tuple[str, str]) -> list[str]:
    """Module-level names (functions, tables) whose definition mentions both `names`."""
    helpers = []
    for block in module_source.split("\n\n\n"):
        first = block.lstrip().split("\n", 1)[0]
        if not all(name in block for name in names):
            continue
        for keyword in ("async def ", "def "):
            if first.startswith(keyword):
                helpers.append(first[len(keyword) :].split("(", 1)[0])
                break
        else:
            helpers.append(first.split(" ", 1)[0].split(":", 1)[0])
    return helpers


def writable_variables() -> list[VariableSpec]:
    """The device model's writable variables, once each (an EVSE's copy counts as its own)."""
    config = StationConfig(evses=(EvseConfig(), EvseConfig()))
    return [
        spec
        for spec in station_spec(config).device_model.variables
        if spec.mutability != "ReadOnly" and spec.reader is None
    ]


def test_every_writable_variable_has_a_case_that_sets_it() -> None:
    """A writable variable without a test of what it does fails here: add one to CASES."""
    missing = sorted({(s.component, s.variable) for s in writable_variables()} - set(CASES))
    assert not missing, f"writable variables without a case in CASES: {missing}"
    for (component, variable), case in CASES.items():
        assert case_sets(case, component, variable), f"{case} does not set {component}.{variable}"


def other_value(spec: VariableSpec, current: str) -> str:
    """A valid value of `spec` that is not `current`."""
    if spec.data_type == "boolean":
        return "false" if current == "true" else "true"
    if spec.data_type in ("integer", "decimal"):
        number = int(float(current or "0")) + 1
        if spec.max_limit is not None and number > spec.max_limit:
            number = int(spec.min_limit or 0)
        return str(number)
    if spec.data_type == "OptionList":
        return next(value for value in spec.values_list if value != current)
    if spec.data_type in ("MemberList", "SequenceList"):
        first = spec.values_list[-1] if current != spec.values_list[-1] else spec.values_list[0]
        return first
    if spec.check is not None and spec.variable == "BasicAuthPassword":
        return "changed-password-0001"  # a passwordString of 16 to 40 characters
    return f"{current}-changed"


def as_read(model: DeviceModel, spec: VariableSpec) -> Any:
    """The value as station code reads it."""
    instance = spec.variable_instance
    if spec.data_type == "integer":
        return model.integer(spec.component, spec.variable, instance)
    if spec.data_type == "boolean":
        return model.boolean(spec.component, spec.variable, instance)
    if spec.data_type in ("MemberList", "SequenceList"):
        return model.members(spec.component, spec.variable)
    return model.get(spec.component, spec.variable, variable_instance=instance)


def parsed(spec: VariableSpec, value: str) -> Any:
    if spec.data_type == "integer":
        return int(value)
    if spec.data_type == "boolean":
        return value == "true"
    if spec.data_type in ("MemberList", "SequenceList"):
        return tuple(member for member in value.split(",") if member)
    return value


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
async def test_every_writable_variable_changes_what_the_station_acts_on_or_is_refused(
    autojump_clock: MockClock, version: OcppVersion
) -> None:
    config = StationConfig(ocpp_version=version, evses=(EvseConfig(), EvseConfig()))
    async with station_on_memory_link(config, ocpp_version=version) as (station, csms):
        model = station.device_model
        writable = [
            spec
            for spec in model.spec.variables
            if spec.mutability != "ReadOnly" and spec.reader is None
        ]
        assert len(writable) > 20
        # A profile in slot 2, so that a priority naming it can be set (and wait for a reboot).
        profile = await csms.call(
            STATION_ID,
            "SetNetworkProfile",
            {
                "configurationSlot": 2,
                "connectionData": {
                    "ocppVersion": "OCPP20" if version == "2.0.1" else "OCPP21",
                    "ocppTransport": "JSON",
                    "ocppInterface": "Wired0",
                    "ocppCsmsUrl": "ws://127.0.0.1:9000/ocpp",
                    "messageTimeout": round(config.message_timeout_s),
                    "securityProfile": station.security_profile,
                },
            },
        )
        assert profile["status"] == "Accepted"
        waiting: list[tuple[VariableSpec, str]] = []
        for spec in writable:
            before = model.value(spec)
            value = other_value(spec, before)
            assert spec.check_value(value) is None, (spec.key, value)
            item: dict[str, Any] = {
                "component": spec.component_json(),
                "variable": spec.variable_json(),
                "attributeValue": value,
            }
            answer = await csms.call(STATION_ID, "SetVariables", {"setVariableData": [item]})
            result = answer["setVariableResult"][0]
            status = result["attributeStatus"]
            name = f"{spec.component}.{spec.variable}"
            if status == "Accepted":
                assert as_read(model, spec) == parsed(spec, value), name
                if name == "SecurityCtrlr.BasicAuthPassword":
                    # A01: the station reconnects with the new password at once.
                    with trio.fail_after(600):
                        await csms.wait_disconnected(STATION_ID)
                        await csms.wait_connected(STATION_ID)
            elif status == "RebootRequired":
                assert spec.reboot_required, name
                assert as_read(model, spec) == parsed(spec, before), name
                waiting.append((spec, value))
            else:
                assert status == "Rejected", (name, status)
                assert result["attributeStatusInfo"]["additionalInfo"], name
                assert as_read(model, spec) == parsed(spec, before), name
        assert [spec.variable for spec, _ in waiting] == ["NetworkConfigurationPriority"]
        if waiting:
            seen = csms.station(STATION_ID).messages_received
            assert (await csms.call(STATION_ID, "Reset", {"type": "Immediate"}))[
                "status"
            ] == "Accepted"
            with trio.fail_after(600):
                await csms.wait_for_message(STATION_ID, "BootNotification", since=seen)
            for spec, value in waiting:
                assert as_read(model, spec) == parsed(spec, value), spec.key
