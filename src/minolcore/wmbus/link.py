"""Link-layer vocabulary of EN 13757-4: C-field, manufacturer code, address, device types."""

from __future__ import annotations

import functools

from minolcore.errors import InputError

__all__ = [
    "C_FIELD_NAMES",
    "DEVICE_TYPE_NAMES",
    "c_field_name",
    "decode_id",
    "decode_manufacturer",
    "device_type_name",
    "encode_id",
    "encode_manufacturer",
]

C_FIELD_NAMES: dict[int, str] = {
    0x00: "ACK",
    0x06: "CNF_IR",
    0x08: "RSP_UD",
    0x18: "RSP_UD",  # FCB variants of the response seen from some converters
    0x40: "SND_NKE",
    0x44: "SND_NR",
    0x46: "SND_IR",
    0x47: "ACC_NR",
    0x48: "ACC_DMD",
    0x53: "SND_UD",
    0x73: "SND_UD",
    0x5B: "REQ_UD2",
    0x7B: "REQ_UD2",
    0x5A: "REQ_UD1",
    0x7A: "REQ_UD1",
}

DEVICE_TYPE_NAMES: dict[int, str] = {
    0x00: "other",
    0x01: "oil",
    0x02: "electricity",
    0x03: "gas",
    0x04: "heat",
    0x05: "steam",
    0x06: "warm_water",
    0x07: "water",
    0x08: "heat_cost_allocator",
    0x09: "compressed_air",
    0x0A: "cooling_outlet",
    0x0B: "cooling_inlet",
    0x0C: "heat_inlet",
    0x0D: "heat_cooling",
    0x0E: "bus_system_component",
    0x0F: "unknown",
    0x10: "irrigation_water",
    0x11: "water_data_logger",
    0x12: "gas_data_logger",
    0x13: "gas_converter",
    0x14: "calorific_value",
    0x15: "hot_water",
    0x16: "cold_water",
    0x17: "dual_register_water",
    0x18: "pressure",
    0x19: "ad_converter",
    0x1A: "smoke_detector",
    0x1B: "room_sensor",
    0x1C: "gas_detector",
    0x1D: "reserved_sensor",
    0x20: "breaker_electricity",
    0x21: "valve",
    0x25: "customer_unit",
    0x28: "waste_water",
    0x29: "garbage",
    0x2A: "carbon_dioxide",
    0x31: "communication_controller",
    0x32: "unidirectional_repeater",
    0x33: "bidirectional_repeater",
    0x36: "radio_converter_system",
    0x37: "radio_converter_meter",
    0x38: "wired_adapter",
}


def c_field_name(c_field: int) -> str:
    """Name of a link-layer C-field, or ``"C_xx"`` for an unnamed value."""
    return C_FIELD_NAMES.get(c_field, f"C_{c_field:02X}")


def device_type_name(device_type: int) -> str:
    """Name of an EN 13757-3 device type (medium) byte, or ``"type_xx"``."""
    return DEVICE_TYPE_NAMES.get(device_type, f"type_{device_type:02X}")


@functools.lru_cache(maxsize=4096)
def decode_manufacturer(code: int) -> str:
    """The three-letter manufacturer code of a 16-bit M-field value (e.g. 0x1593 -> "ELS").

    Letters outside A-Z (possible in corrupt or private codes) come out as their ASCII
    neighbours of '@', so the result is always three printable characters.
    """
    return "".join(chr(((code >> shift) & 0x1F) + 64) for shift in (10, 5, 0))


def encode_manufacturer(letters: str) -> int:
    """The 16-bit M-field value of a three-letter code (e.g. "ELS" -> 0x1593)."""
    if len(letters) != 3 or not all("@" <= ch <= "_" for ch in letters.upper()):
        raise InputError(f"manufacturer code must be three letters A-Z, got {letters!r}")
    c1, c2, c3 = (ord(ch) - 64 for ch in letters.upper())
    return (c1 << 10) | (c2 << 5) | c3


def decode_id(id_le: int) -> str:
    """The 8-character meter ID of a 32-bit A-field ID read little-endian (BCD shows as digits)."""
    return f"{id_le:08X}"


def encode_id(meter_id: str | int) -> int:
    """The 32-bit little-endian ID value of an 8-digit meter ID string (or that value itself)."""
    if isinstance(meter_id, int):
        if not 0 <= meter_id <= 0xFFFFFFFF:
            raise InputError(f"meter ID {meter_id} does not fit 32 bits")
        return meter_id
    try:
        if len(meter_id) != 8:
            raise ValueError
        return int(meter_id, 16)
    except ValueError:
        raise InputError(f"meter ID must be 8 hex digits, got {meter_id!r}") from None
