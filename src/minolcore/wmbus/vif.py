"""VIF/VIFE tables of EN 13757-3 and the value information block (VIB) reader.

Every table is a module-level tuple indexed by the code with its extension bit
cleared, built once at import. A table entry is ``(quantity, unit, exponent, kind)``:
the value of a record is ``raw * 10**exponent`` in ``unit``; ``kind`` says how the
data field is read (a scaled number, an unsigned identifier, a date/time point, ...).
The walker in :mod:`minolcore.wmbus.records` and a future C twin only index these
tables; no per-record dictionaries are built.

Units are plain symbols ("Wh", "m3", "degC", ...); prefixed units of the standard
(MWh, GJ, kvar, t, ...) are folded into the exponent, so a 0xFB 0x01 record in "MWh"
comes out in "Wh" with exponent 6.
"""

from __future__ import annotations

import math
import struct
from typing import Final

from minolcore.errors import RecordError

__all__ = [
    "CODING_BCD",
    "CODING_INT",
    "CODING_LVAR",
    "CODING_NONE",
    "CODING_REAL",
    "CODING_SPECIAL",
    "COMBINABLE",
    "COMBINABLE_FC",
    "DATA_CODING",
    "DATA_LENGTH",
    "FB_TABLE",
    "FD_TABLE",
    "FLAG_INVALID",
    "FLAG_MANUFACTURER_VIFE",
    "FLAG_PROFILE_COMPACT",
    "FLAG_PROFILE_INVERSE",
    "FLAG_PROFILE_MASK",
    "FLAG_PROFILE_REGISTERS",
    "FLAG_UNSIGNED",
    "KIND_ANY",
    "KIND_EXTENSION",
    "KIND_MANUFACTURER",
    "KIND_NUMBER",
    "KIND_PLAIN_TEXT",
    "KIND_RESERVED",
    "KIND_TIMEPOINT",
    "KIND_UNSIGNED",
    "MAX_VIFE",
    "NO_OFFSET",
    "PRIMARY",
    "VibInfo",
    "VifEntry",
    "lvar_length",
    "read_number",
    "read_vib",
    "scale",
]

# How the data field of a record is read.
KIND_NUMBER: Final = 0  # scaled number: signed integer (type B), BCD (type A), real32 (type H)
KIND_UNSIGNED: Final = 1  # identifiers, counters, bit fields: unsigned (type C/D), never scaled
KIND_TIMEPOINT: Final = 2  # date / time: type G (2 bytes), J (3), F (4), I (6)
KIND_PLAIN_TEXT: Final = 3  # 0x7C/0xFC: the unit is an ASCII string carried in the VIB
KIND_MANUFACTURER: Final = 4  # 0x7F/0xFF: VIFEs and data are manufacturer specific
KIND_ANY: Final = 5  # 0x7E/0xFE: "any VIF" (readout selection)
KIND_EXTENSION: Final = 6  # 0xFB/0xFD/0xEF: the next byte selects an entry of another table
KIND_RESERVED: Final = 7  # a code the standard reserves

# Flags collected from combinable VIFEs.
FLAG_UNSIGNED: Final = 0x01  # "data presented with type C/D"
FLAG_INVALID: Final = 0x02  # a record error code (no data, overflow, ...)
FLAG_MANUFACTURER_VIFE: Final = 0x04  # VIFE 0x7F/0xFF: the rest of the block is manufacturer specific
FLAG_PROFILE_INVERSE: Final = 0x10  # VIFE 0x13
FLAG_PROFILE_REGISTERS: Final = 0x20  # VIFE 0x1E
FLAG_PROFILE_COMPACT: Final = 0x40  # VIFE 0x1F
FLAG_PROFILE_MASK: Final = 0x70

MAX_VIFE: Final = 10
NO_OFFSET: Final = -128  # "no additive correction constant"

VifEntry = tuple[str, str, int, int]
"""(quantity, unit, decimal exponent, kind)"""

VibInfo = tuple[int, bytes, str, str, int, int, tuple[str, ...], int, int]
"""(next position, VIB bytes, quantity, unit, exponent, kind, modifiers, flags, additive offset exponent)"""

_TIME4: Final = ("s", "min", "h", "d")
_TIME4_LONG: Final = ("h", "d", "month", "year")


def _reserved(prefix: str) -> list[VifEntry]:
    return [(f"{prefix}{code:02x}", "", 0, KIND_RESERVED) for code in range(128)]


def _build_primary() -> tuple[VifEntry, ...]:
    t = _reserved("reserved_vif_")
    num, uns, tp = KIND_NUMBER, KIND_UNSIGNED, KIND_TIMEPOINT
    for n in range(8):
        t[0x00 + n] = ("energy", "Wh", n - 3, num)
        t[0x08 + n] = ("energy", "J", n, num)
        t[0x10 + n] = ("volume", "m3", n - 6, num)
        t[0x18 + n] = ("mass", "kg", n - 3, num)
        t[0x28 + n] = ("power", "W", n - 3, num)
        t[0x30 + n] = ("power", "J/h", n, num)
        t[0x38 + n] = ("volume_flow", "m3/h", n - 6, num)
        t[0x40 + n] = ("volume_flow", "m3/min", n - 7, num)
        t[0x48 + n] = ("volume_flow", "m3/s", n - 9, num)
        t[0x50 + n] = ("mass_flow", "kg/h", n - 3, num)
    for n in range(4):
        t[0x20 + n] = ("on_time", _TIME4[n], 0, num)
        t[0x24 + n] = ("operating_time", _TIME4[n], 0, num)
        t[0x58 + n] = ("flow_temperature", "degC", n - 3, num)
        t[0x5C + n] = ("return_temperature", "degC", n - 3, num)
        t[0x60 + n] = ("temperature_difference", "K", n - 3, num)
        t[0x64 + n] = ("external_temperature", "degC", n - 3, num)
        t[0x68 + n] = ("pressure", "bar", n - 3, num)
        t[0x70 + n] = ("averaging_duration", _TIME4[n], 0, num)
        t[0x74 + n] = ("actuality_duration", _TIME4[n], 0, num)
    t[0x6C] = ("date", "", 0, tp)
    t[0x6D] = ("datetime", "", 0, tp)
    t[0x6E] = ("hca_units", "HCA", 0, num)
    # 0xEF points to a table the standard keeps reserved for a future extension.
    t[0x6F] = ("extension_ef", "", 0, KIND_EXTENSION)
    t[0x78] = ("fabrication_number", "", 0, uns)
    t[0x79] = ("enhanced_identification", "", 0, uns)
    t[0x7A] = ("bus_address", "", 0, uns)
    t[0x7B] = ("extension_fb", "", 0, KIND_EXTENSION)
    t[0x7C] = ("plain_text", "", 0, KIND_PLAIN_TEXT)
    t[0x7D] = ("extension_fd", "", 0, KIND_EXTENSION)
    t[0x7E] = ("any", "", 0, KIND_ANY)
    t[0x7F] = ("manufacturer_specific", "", 0, KIND_MANUFACTURER)
    return tuple(t)


def _build_fd() -> tuple[VifEntry, ...]:
    """Main VIFE-code extension table (VIF 0xFD)."""
    t = _reserved("reserved_fd_")
    num, uns, tp = KIND_NUMBER, KIND_UNSIGNED, KIND_TIMEPOINT
    for n in range(4):
        t[0x00 + n] = ("credit", "currency", n - 3, num)
        t[0x04 + n] = ("debit", "currency", n - 3, num)
    names = (
        "access_number",  # 0x08 unique message identification
        "device_type",
        "manufacturer",
        "parameter_set_identification",
        "model_version",
        "hardware_version",
        "firmware_version",  # 0x0E metrology (firmware) version
        "software_version",  # 0x0F other software version
        "customer_location",
        "customer",
        "access_code_user",
        "access_code_operator",
        "access_code_system_operator",
        "access_code_developer",
        "password",
        "error_flags",  # 0x17
        "error_mask",
        "security_key",
        "digital_output",
        "digital_input",  # 0x1B
    )
    for i, name in enumerate(names):
        t[0x08 + i] = (name, "", 0, uns)
    t[0x1C] = ("baud_rate", "Bd", 0, uns)
    t[0x1D] = ("response_delay_time", "bit_times", 0, uns)
    t[0x1E] = ("retry", "", 0, uns)
    t[0x1F] = ("remote_control", "", 0, uns)
    t[0x20] = ("first_storage_number", "", 0, uns)
    t[0x21] = ("last_storage_number", "", 0, uns)
    t[0x22] = ("storage_block_size", "", 0, uns)
    t[0x23] = ("tariff_subunit_descriptor", "", 0, uns)
    for n in range(4):
        t[0x24 + n] = ("storage_interval", _TIME4[n], 0, num)
        t[0x2C + n] = ("duration_since_last_readout", _TIME4[n], 0, num)
        t[0x34 + n] = ("tariff_period", _TIME4[n], 0, num)
        t[0x3C + n] = ("transmission_period", _TIME4[n], 0, num)
        t[0x68 + n] = ("duration_since_last_cumulation", _TIME4_LONG[n], 0, num)
        t[0x6C + n] = ("battery_operating_time", _TIME4_LONG[n], 0, num)
    t[0x28] = ("storage_interval", "month", 0, num)
    t[0x29] = ("storage_interval", "year", 0, num)
    t[0x2A] = ("operator_specific_data", "", 0, uns)
    t[0x2B] = ("time_point_second", "s", 0, num)
    t[0x30] = ("tariff_start", "", 0, tp)
    for n in range(1, 4):
        t[0x30 + n] = ("tariff_duration", _TIME4[n], 0, num)
    t[0x38] = ("tariff_period", "month", 0, num)
    t[0x39] = ("tariff_period", "year", 0, num)
    t[0x3A] = ("dimensionless", "", 0, num)
    t[0x3B] = ("wmbus_data_container", "", 0, uns)
    for n in range(16):
        t[0x40 + n] = ("voltage", "V", n - 9, num)
        t[0x50 + n] = ("current", "A", n - 12, num)
    for code, name in (
        (0x60, "reset_counter"),
        (0x61, "cumulation_counter"),
        (0x62, "control_signal"),
        (0x63, "day_of_week"),
        (0x64, "week_number"),
        (0x65, "day_change_time_point"),
        (0x66, "parameter_activation_state"),
        (0x67, "special_supplier_information"),
        (0x72, "daylight_saving"),
        (0x73, "listening_window"),
        (0x75, "meter_stop_count"),
        (0x76, "manufacturer_data_container"),
    ):
        t[code] = (name, "", 0, uns)
    t[0x70] = ("battery_change_datetime", "", 0, tp)
    t[0x71] = ("rf_level", "dBm", 0, num)
    t[0x74] = ("remaining_battery_lifetime", "d", 0, num)
    return tuple(t)


def _build_fb() -> tuple[VifEntry, ...]:
    """Alternate extended VIF-code table (VIF 0xFB); prefixes folded into the exponent."""
    t = _reserved("reserved_fb_")
    num = KIND_NUMBER
    for n in range(2):
        t[0x00 + n] = ("energy", "Wh", n + 5, num)  # 10^(n-1) MWh
        t[0x02 + n] = ("reactive_energy", "varh", n + 3, num)  # 10^n kvarh
        t[0x04 + n] = ("apparent_energy", "VAh", n + 3, num)  # 10^n kVAh
        t[0x08 + n] = ("energy", "J", n + 8, num)  # 10^(n-1) GJ
        t[0x10 + n] = ("volume", "m3", n + 2, num)
        t[0x18 + n] = ("mass", "kg", n + 5, num)  # 10^(n+2) t
        t[0x1A + n] = ("relative_humidity", "%RH", n - 1, num)
        t[0x28 + n] = ("power", "W", n + 5, num)  # 10^(n-1) MW
        t[0x30 + n] = ("power", "J/h", n + 8, num)  # 10^(n-1) GJ/h
    for n in range(4):
        t[0x0C + n] = ("energy", "cal", n + 5, num)  # 10^(nn-1) Mcal
        t[0x14 + n] = ("reactive_power", "var", n, num)  # 10^(nn-3) kvar
        t[0x2C + n] = ("frequency", "Hz", n - 3, num)
        t[0x34 + n] = ("apparent_power", "VA", n, num)  # 10^(nn-3) kVA
        t[0x58 + n] = ("flow_temperature", "degF", n - 3, num)
        t[0x5C + n] = ("return_temperature", "degF", n - 3, num)
        t[0x60 + n] = ("temperature_difference", "degF", n - 3, num)
        t[0x64 + n] = ("external_temperature", "degF", n - 3, num)
        t[0x70 + n] = ("temperature_limit", "degF", n - 3, num)
        t[0x74 + n] = ("temperature_limit", "degC", n - 3, num)
    t[0x20] = ("volume", "ft3", 0, num)
    t[0x21] = ("volume", "ft3", -1, num)
    t[0x22] = ("volume", "gal", -1, num)  # US gallon
    t[0x23] = ("volume", "gal", 0, num)
    t[0x24] = ("volume_flow", "gal/min", -3, num)
    t[0x25] = ("volume_flow", "gal/min", 0, num)
    t[0x26] = ("volume_flow", "gal/h", 0, num)
    t[0x2A] = ("phase_voltage_voltage", "deg", -1, num)
    t[0x2B] = ("phase_voltage_current", "deg", -1, num)
    for code, name in (
        (0x68, "resulting_rating_factor"),
        (0x69, "thermal_output_rating_factor"),
        (0x6A, "thermal_coupling_rating_factor_overall"),
        (0x6B, "thermal_coupling_rating_factor_room"),
        (0x6C, "thermal_coupling_rating_factor_heater"),
        (0x6D, "low_temperature_rating_factor"),
        (0x6E, "display_output_scaling_factor"),
    ):
        t[code] = (name, "", 0, num)
    for n in range(8):
        t[0x78 + n] = ("cumulative_max_power", "W", n - 3, num)
    return tuple(t)


PRIMARY: Final[tuple[VifEntry, ...]] = _build_primary()
FD_TABLE: Final[tuple[VifEntry, ...]] = _build_fd()
FB_TABLE: Final[tuple[VifEntry, ...]] = _build_fb()
EF_TABLE: Final[tuple[VifEntry, ...]] = tuple(_reserved("reserved_ef_"))

# Combinable (orthogonal) VIFE actions.
ACT_FLAG: Final = 0  # add the modifier name
ACT_UNIT: Final = 1  # add the modifier and append text to the unit ("/h")
ACT_SCALE: Final = 2  # exponent += arg (no modifier: it is folded into the value)
ACT_OFFSET: Final = 3  # additive correction constant 10^arg in the unit of the record
ACT_TIMEPOINT: Final = 4  # the value becomes a date/time ("date of ...")
ACT_DURATION: Final = 5  # the value becomes a duration in the unit text
ACT_COUNT: Final = 6  # the value becomes a plain count
ACT_INVALID: Final = 7  # record error code: the value is not usable
ACT_PROFILE: Final = 8  # compact profile; arg is the flag
ACT_EXT_FC: Final = 9  # the next VIFE comes from the combinable extension table
ACT_MANUFACTURER: Final = 10  # the next VIFEs and the data are manufacturer specific
ACT_UNSIGNED: Final = 11  # data presented with type C / D

CombinableEntry = tuple[str, int, int, str]
"""(modifier name, action, integer argument, text argument)"""


def _build_combinable() -> tuple[CombinableEntry, ...]:
    t: list[CombinableEntry] = [(f"vife_{code:02x}", ACT_FLAG, 0, "") for code in range(128)]
    t[0x12] = ("average", ACT_FLAG, 0, "")
    t[0x13] = ("inverse_compact_profile", ACT_PROFILE, FLAG_PROFILE_INVERSE, "")
    t[0x14] = ("relative_deviation", ACT_FLAG, 0, "")
    for code, name in (
        (0x15, "no_data_available"),
        (0x16, "data_overflow"),
        (0x17, "data_underflow"),
        (0x18, "data_error"),
        (0x19, "record_error_19"),
        (0x1A, "record_error_1a"),
        (0x1B, "record_error_1b"),
        (0x1C, "premature_end_of_record"),
    ):
        t[code] = (name, ACT_INVALID, 0, "")
    t[0x1D] = ("standard_conform_data_content", ACT_FLAG, 0, "")
    t[0x1E] = ("compact_profile_with_registers", ACT_PROFILE, FLAG_PROFILE_REGISTERS, "")
    t[0x1F] = ("compact_profile", ACT_PROFILE, FLAG_PROFILE_COMPACT, "")
    for i, (name, suffix) in enumerate(
        (
            ("per_second", "/s"),
            ("per_minute", "/min"),
            ("per_hour", "/h"),
            ("per_day", "/d"),
            ("per_week", "/week"),
            ("per_month", "/month"),
            ("per_year", "/year"),
            ("per_revolution", "/rev"),
            ("increment_per_input_pulse_0", "/pulse"),
            ("increment_per_input_pulse_1", "/pulse"),
            ("increment_per_output_pulse_0", "/pulse"),
            ("increment_per_output_pulse_1", "/pulse"),
            ("per_litre", "/l"),
            ("per_m3", "/m3"),
            ("per_kg", "/kg"),
            ("per_kelvin", "/K"),
            ("per_kwh", "/kWh"),
            ("per_gj", "/GJ"),
            ("per_kw", "/kW"),
            ("per_kelvin_litre", "/(K*l)"),
            ("per_volt", "/V"),
            ("per_ampere", "/A"),
            ("times_second", "*s"),
            ("times_second_volt", "*s*V"),
            ("times_second_ampere", "*s*A"),
        )
    ):
        t[0x20 + i] = (name, ACT_UNIT, 0, suffix)
    t[0x39] = ("start_datetime_of", ACT_TIMEPOINT, 0, "")
    t[0x3A] = ("uncorrected", ACT_FLAG, 0, "")
    # Accumulation only of positive contributions / of the absolute value of negative
    # ones: what flow meters use for forward and backward (reverse) flow.
    t[0x3B] = ("forward_flow", ACT_FLAG, 0, "")
    t[0x3C] = ("backward_flow", ACT_FLAG, 0, "")
    t[0x3D] = ("non_metric_units", ACT_FLAG, 0, "")
    t[0x3E] = ("value_at_base_conditions", ACT_FLAG, 0, "")
    t[0x3F] = ("obis_declaration", ACT_FLAG, 0, "")
    for base, limit in ((0x40, "lower"), (0x48, "upper")):
        t[base] = (f"{limit}_limit", ACT_FLAG, 0, "")
        t[base + 1] = (f"{limit}_limit_exceed_count", ACT_COUNT, 0, "")
        t[base + 2] = (f"{limit}_limit_first_exceed_begin", ACT_TIMEPOINT, 0, "")
        t[base + 3] = (f"{limit}_limit_first_exceed_end", ACT_TIMEPOINT, 0, "")
        t[base + 6] = (f"{limit}_limit_last_exceed_begin", ACT_TIMEPOINT, 0, "")
        t[base + 7] = (f"{limit}_limit_last_exceed_end", ACT_TIMEPOINT, 0, "")
    for base, name in (
        (0x50, "lower_limit_first_exceed_duration"),
        (0x54, "lower_limit_last_exceed_duration"),
        (0x58, "upper_limit_first_exceed_duration"),
        (0x5C, "upper_limit_last_exceed_duration"),
        (0x60, "first_duration"),
        (0x64, "last_duration"),
    ):
        for n in range(4):
            t[base + n] = (name, ACT_DURATION, 0, _TIME4[n])
    t[0x68] = ("value_during_lower_limit_exceed", ACT_FLAG, 0, "")
    t[0x69] = ("leakage_values", ACT_FLAG, 0, "")
    t[0x6A] = ("first_begin", ACT_TIMEPOINT, 0, "")
    t[0x6B] = ("first_end", ACT_TIMEPOINT, 0, "")
    t[0x6C] = ("value_during_upper_limit_exceed", ACT_FLAG, 0, "")
    t[0x6D] = ("overflow_values", ACT_FLAG, 0, "")
    t[0x6E] = ("last_begin", ACT_TIMEPOINT, 0, "")
    t[0x6F] = ("last_end", ACT_TIMEPOINT, 0, "")
    for n in range(8):
        t[0x70 + n] = ("", ACT_SCALE, n - 6, "")
    for n in range(4):
        t[0x78 + n] = ("additive_correction", ACT_OFFSET, n - 3, "")
    t[0x7C] = ("", ACT_EXT_FC, 0, "")
    t[0x7D] = ("", ACT_SCALE, 3, "")
    t[0x7E] = ("future_value", ACT_FLAG, 0, "")
    t[0x7F] = ("manufacturer_specific_vife", ACT_MANUFACTURER, 0, "")
    return tuple(t)


def _build_combinable_fc() -> tuple[CombinableEntry, ...]:
    """Extension of the combinable VIFE table, reached through VIFE 0x7C/0xFC."""
    t: list[CombinableEntry] = [(f"vife_fc_{code:02x}", ACT_FLAG, 0, "") for code in range(128)]
    for code, name in (
        (0x01, "at_phase_l1"),
        (0x02, "at_phase_l2"),
        (0x03, "at_phase_l3"),
        (0x04, "at_neutral"),
        (0x05, "between_phase_l1_l2"),
        (0x06, "between_phase_l2_l3"),
        (0x07, "between_phase_l3_l1"),
        (0x08, "at_quadrant_q1"),
        (0x09, "at_quadrant_q2"),
        (0x0A, "at_quadrant_q3"),
        (0x0B, "at_quadrant_q4"),
        (0x0C, "delta_import_export"),
        (0x10, "accumulation_absolute"),
        (0x13, "direction_to_meter"),
        (0x14, "direction_from_meter"),
    ):
        t[code] = (name, ACT_FLAG, 0, "")
    t[0x11] = ("data_type_c", ACT_UNSIGNED, 0, "")
    t[0x12] = ("data_type_d", ACT_UNSIGNED, 0, "")
    return tuple(t)


COMBINABLE: Final[tuple[CombinableEntry, ...]] = _build_combinable()
COMBINABLE_FC: Final[tuple[CombinableEntry, ...]] = _build_combinable_fc()

_EXT_TABLES: Final = {0xFB: FB_TABLE, 0xFD: FD_TABLE, 0xEF: EF_TABLE}


def read_vib(buf: bytes, pos: int, end: int, record_offset: int) -> VibInfo:
    """Read the value information block starting at ``buf[pos]`` (the VIF).

    Returns ``(next position, VIB bytes, quantity, unit, exponent, kind, modifiers,
    flags, additive offset exponent)``. The VIB bytes include the length byte and the
    characters of a plain-text VIF. Raises :class:`RecordError` at ``record_offset``
    when the block runs past ``end`` or has more than :data:`MAX_VIFE` extensions.
    """
    if pos >= end:
        raise RecordError(record_offset, "VIF missing")
    start = pos
    vif = buf[pos]
    pos += 1
    quantity, unit, exponent, kind = PRIMARY[vif & 0x7F]
    modifiers: list[str] = []
    flags = 0
    offset_exp = NO_OFFSET
    more = vif & 0x80
    count = 0

    if kind == KIND_EXTENSION:
        if not more:
            # 0x6F/0x7B/0x7D without the extension bit point nowhere.
            quantity, kind = f"reserved_vif_{vif & 0x7F:02x}", KIND_RESERVED
        else:
            if pos >= end:
                raise RecordError(record_offset, "VIFE missing after extension VIF")
            code = buf[pos]
            pos += 1
            count = 1
            quantity, unit, exponent, kind = _EXT_TABLES[vif][code & 0x7F]
            more = code & 0x80
    elif kind == KIND_MANUFACTURER:
        # Every VIFE after a manufacturer-specific VIF is the manufacturer's own.
        while more:
            if pos >= end:
                raise RecordError(record_offset, "VIFE missing")
            count += 1
            if count > MAX_VIFE:
                raise RecordError(record_offset, f"more than {MAX_VIFE} VIFEs")
            more = buf[pos] & 0x80
            pos += 1
        return (pos, bytes(buf[start:pos]), quantity, unit, exponent, kind, (), flags, offset_exp)

    in_fc = False
    manufacturer_tail = False
    while more:
        if pos >= end:
            raise RecordError(record_offset, "VIFE missing")
        count += 1
        if count > MAX_VIFE:
            raise RecordError(record_offset, f"more than {MAX_VIFE} VIFEs")
        code = buf[pos]
        pos += 1
        more = code & 0x80
        if manufacturer_tail:
            continue
        name, action, arg, text = (COMBINABLE_FC if in_fc else COMBINABLE)[code & 0x7F]
        in_fc = False
        if action == ACT_FLAG:
            modifiers.append(name)
        elif action == ACT_UNIT:
            modifiers.append(name)
            unit = unit + text
        elif action == ACT_SCALE:
            exponent += arg
        elif action == ACT_OFFSET:
            modifiers.append(name)
            offset_exp = arg
        elif action == ACT_TIMEPOINT:
            modifiers.append(name)
            kind = KIND_TIMEPOINT
            unit = ""
        elif action == ACT_DURATION:
            modifiers.append(name)
            unit = text
            exponent = 0
            if kind != KIND_TIMEPOINT:
                kind = KIND_NUMBER
        elif action == ACT_COUNT:
            modifiers.append(name)
            unit = ""
            exponent = 0
            kind = KIND_UNSIGNED
        elif action == ACT_INVALID:
            modifiers.append(name)
            flags |= FLAG_INVALID
        elif action == ACT_PROFILE:
            modifiers.append(name)
            flags |= arg
        elif action == ACT_EXT_FC:
            in_fc = True
        elif action == ACT_MANUFACTURER:
            modifiers.append(name)
            flags |= FLAG_MANUFACTURER_VIFE
            manufacturer_tail = True
        else:  # ACT_UNSIGNED
            modifiers.append(name)
            flags |= FLAG_UNSIGNED

    if kind == KIND_PLAIN_TEXT:
        # The unit follows the VIFEs as a length byte and characters, last character first.
        if pos >= end:
            raise RecordError(record_offset, "plain-text VIF length missing")
        length = buf[pos]
        if pos + 1 + length > end:
            raise RecordError(record_offset, "plain-text VIF runs past the end")
        # Suffixes from VIFEs ("/h") were collected on the empty unit of the table entry.
        unit = bytes(buf[pos + 1 : pos + 1 + length])[::-1].decode("latin-1") + unit
        pos += 1 + length
    return (pos, bytes(buf[start:pos]), quantity, unit, exponent, kind, tuple(modifiers), flags, offset_exp)


# --- data field (DIF bits 3-0) ---------------------------------------------------------------

CODING_NONE: Final = 0  # no data (0x0) or "selection for readout" (0x8)
CODING_INT: Final = 1  # integer, little-endian
CODING_REAL: Final = 2  # IEEE 754 single precision, little-endian
CODING_BCD: Final = 3  # BCD, little-endian; 0xF in the top nibble is a minus sign
CODING_LVAR: Final = 4  # variable length, the first data byte (LVAR) says how long
CODING_SPECIAL: Final = 5  # 0xF: special functions

DATA_CODING: Final[tuple[int, ...]] = (
    CODING_NONE,
    CODING_INT,
    CODING_INT,
    CODING_INT,
    CODING_INT,
    CODING_REAL,
    CODING_INT,
    CODING_INT,
    CODING_NONE,
    CODING_BCD,
    CODING_BCD,
    CODING_BCD,
    CODING_BCD,
    CODING_LVAR,
    CODING_BCD,
    CODING_SPECIAL,
)
"""Data coding of each DIF data-field nibble."""

DATA_LENGTH: Final[tuple[int, ...]] = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, 0, 6, 0)
"""Bytes of data of each DIF data-field nibble (LVAR and special: 0, decided elsewhere)."""

_REAL32: Final = struct.Struct("<f")
_ALL_ONES: Final = {n: b"\xff" * n for n in range(9)}


def lvar_length(lvar: int) -> int:
    """Data bytes after an LVAR byte, or -1 for the reserved values 0xF5-0xFF."""
    if lvar < 0xC0:
        return lvar  # text
    if lvar < 0xE0:
        return lvar & 0x0F if (lvar & 0x0F) <= 9 else -1  # positive / negative BCD
    if lvar < 0xF0:
        return lvar - 0xE0  # binary number
    if lvar <= 0xF4:
        return 4 * (lvar - 0xEC)  # large binary number
    return -1


def read_number(coding: int, data: bytes, signed: bool) -> int | float | None:
    """The unscaled number of a fixed-length data field, or ``None`` if it is marked invalid.

    Integers are two's complement when ``signed`` (type B), otherwise unsigned (type C);
    all bits set means "not set" in both cases. BCD with 0xF in the top nibble is negative;
    all-0xF or any other non-decimal nibble means "not set". A NaN or infinite real means "not set".
    """
    if coding == CODING_INT:
        if data == _ALL_ONES[len(data)]:
            return None
        return int.from_bytes(data, "little", signed=signed)
    if coding == CODING_BCD:
        digits = data[::-1].hex()
        if digits.isdigit():
            return int(digits)
        if digits[0] == "f" and digits[1:].isdigit():
            return -int(digits[1:])
        return None
    if coding == CODING_REAL:
        value: float = _REAL32.unpack(data)[0]
        # NaN and the infinities are no reading (a meter's error value, not a quantity).
        return value if math.isfinite(value) else None
    return None


def scale(raw: int | float, exponent: int) -> int | float:
    """``raw * 10**exponent``: an int for exponents >= 0 and int input, else a float.

    Division by a power of ten (not multiplication by 0.01) gives the float nearest to the
    decimal value, so 2850427 with exponent -2 is exactly 28504.27.
    """
    if exponent >= 0:
        factor: int = 10**exponent
        return raw * factor
    divisor: int = 10**-exponent
    return raw / divisor
