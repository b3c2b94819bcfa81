"""Extended link layer (ELL), authentication and fragmentation layer (AFL) and transport
layer (TPL) headers of EN 13757-4/-7 and OMS Vol. 2, parsed into frozen records.

The layer sequence after the link header is: optional ELL (CI 0x8C-0x8F), optional AFL
(CI 0x90), then the CI of the transport layer. An ELL with AES-CTR encryption hides
everything from its payload CRC on; those layers are parsed again after decryption.
"""

from __future__ import annotations

import enum
import struct

from minolcore._model import Record
from minolcore.errors import HeaderTruncatedError
from minolcore.wmbus.link import decode_id, decode_manufacturer, device_type_name

__all__ = [
    "AFL_KI_PRESENT",
    "AFL_MAC_PRESENT",
    "AFL_MCL_PRESENT",
    "AFL_MCR_PRESENT",
    "AFL_ML_PRESENT",
    "CI_AFL",
    "CI_ELL_LENGTHS",
    "CI_TPL_KIND",
    "AFLHeader",
    "Address",
    "ELLHeader",
    "Layers",
    "TPLHeader",
    "TPLKind",
    "parse_layers",
    "tpl_kind",
]


class TPLKind(enum.IntEnum):
    """What follows a CI byte. The numbers are shared with the C core."""

    UNKNOWN = 0
    NONE = 1  # no TPL header (CI 0x78 and the like)
    SHORT = 2  # ACC STS CF
    LONG = 3  # ID M VER TYPE ACC STS CF
    MANUFACTURER = 4  # CI 0xA0-0xB7: manufacturer-specific, passed through


# CI -> header kind. Compact frames (0x79, 0x7B, 0x73) carry the same headers as their
# full counterparts; what differs is the application layer behind them.
CI_TPL_KIND: dict[int, TPLKind] = {
    **dict.fromkeys((0x51, 0x78, 0x79), TPLKind.NONE),
    **dict.fromkeys((0x5A, 0x61, 0x65, 0x6E, 0x74, 0x7A, 0x7B, 0x7D, 0x7F, 0x8A), TPLKind.SHORT),
    **dict.fromkeys((0x53, 0x5B, 0x60, 0x64, 0x6F, 0x72, 0x73, 0x75, 0x7C, 0x7E, 0x80, 0x8B), TPLKind.LONG),
    **dict.fromkeys(range(0xA0, 0xB8), TPLKind.MANUFACTURER),
}

COMPACT_CIS = frozenset((0x79, 0x7B, 0x73))

# Bytes of each ELL variant including its CI. ELL II and IV end with SN and the payload CRC.
CI_ELL_LENGTHS: dict[int, int] = {0x8C: 3, 0x8D: 9, 0x8E: 11, 0x8F: 17}
CI_AFL = 0x90

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_ADDRESS = struct.Struct("<HIBB")  # M, ID, version, type: the order inside ELL III/IV
_LONG_TPL_ADDRESS = struct.Struct("<IHBB")  # ID, M, version, type: the order inside a long TPL

# Bits of the AFL fragmentation control field (FCL): which optional fields follow it.
_AFL_MORE_FRAGMENTS = 0x4000
AFL_MCL_PRESENT = 0x2000
AFL_ML_PRESENT = 0x1000
AFL_MCR_PRESENT = 0x0800
AFL_MAC_PRESENT = 0x0400
AFL_KI_PRESENT = 0x0200

# MCL authentication type (bits 3-0) -> MAC length in bytes.
AFL_MAC_LENGTHS: dict[int, int] = {3: 2, 4: 4, 5: 8, 6: 12, 7: 16}


def tpl_kind(ci: int) -> TPLKind:
    """The header kind that a CI byte announces."""
    return CI_TPL_KIND.get(ci, TPLKind.UNKNOWN)


class Address(Record):
    """A wireless M-Bus address: manufacturer, 8-character ID, version, device type."""

    manufacturer_code: int
    id_value: int
    version: int
    device_type: int

    @property
    def manufacturer(self) -> str:
        """Three-letter manufacturer code, e.g. "ELS"."""
        return decode_manufacturer(self.manufacturer_code)

    @property
    def id(self) -> str:
        """The 8-character ID as printed on the meter, e.g. "12345678"."""
        return decode_id(self.id_value)

    @property
    def device_type_name(self) -> str:
        """Name of the device type (medium)."""
        return device_type_name(self.device_type)


class ELLHeader(Record):
    """Extended link layer (CI 0x8C-0x8F)."""

    ci: int
    cc: int
    acc: int
    address: Address | None = None  # ELL III / IV: the second (meter) address
    sn: int | None = None  # ELL II / IV: session number
    payload_crc: int | None = None  # ELL II / IV, only when not encrypted (else it is ciphertext)

    @property
    def encryption(self) -> int:
        """SN bits 31-29: 0 none, 1 AES-128-CTR, other values reserved."""
        return 0 if self.sn is None else (self.sn >> 29) & 0x7

    @property
    def session(self) -> int:
        """SN bits 3-0."""
        return 0 if self.sn is None else self.sn & 0xF

    @property
    def sn_time(self) -> int:
        """SN bits 28-4: the sender's minute counter."""
        return 0 if self.sn is None else (self.sn >> 4) & 0x1FFFFFF

    @property
    def bidirectional(self) -> bool:
        return bool(self.cc & 0x80)

    @property
    def synchronous(self) -> bool:
        return bool(self.cc & 0x20)

    @property
    def hop(self) -> bool:
        """H bit: the frame was relayed by a repeater."""
        return bool(self.cc & 0x10)

    @property
    def accessibility(self) -> bool:
        return bool(self.cc & 0x04)

    @property
    def repeated(self) -> bool:
        """R bit: repeated access."""
        return bool(self.cc & 0x02)


class AFLHeader(Record):
    """Authentication and fragmentation layer (CI 0x90); optional fields as FCL says."""

    afll: int
    fcl: int
    mcl: int | None = None
    ki: int | None = None
    mcr: int | None = None
    mac: bytes | None = None
    ml: int | None = None

    @property
    def more_fragments(self) -> bool:
        return bool(self.fcl & _AFL_MORE_FRAGMENTS)

    @property
    def fragment_id(self) -> int:
        return self.fcl & 0xFF

    @property
    def auth_type(self) -> int:
        """MCL bits 3-0: 0 none, 5 AES-CMAC truncated to 8 bytes, ..."""
        return 0 if self.mcl is None else self.mcl & 0x0F

    @property
    def message_counter(self) -> int | None:
        """The MCR message counter (must increase per meter), or None."""
        return self.mcr


class TPLHeader(Record):
    """Transport layer header: short (ACC STS CF) or long (with the real meter's address)."""

    ci: int
    kind: TPLKind
    acc: int = 0
    sts: int = 0
    cf: int = 0
    cf_ext: int | None = None
    address: Address | None = None  # long header only

    @property
    def security_mode(self) -> int:
        """Configuration field bits 12-8: 0 none, 5 AES-CBC, 7 AES-CBC with AFL MAC, ..."""
        return (self.cf >> 8) & 0x1F

    @property
    def encrypted_blocks(self) -> int:
        """Number of encrypted 16-byte blocks (CF bits 7-4)."""
        return (self.cf >> 4) & 0x0F

    @property
    def bidirectional(self) -> bool:
        return self.security_mode != 7 and bool(self.cf & 0x8000)

    @property
    def accessibility(self) -> bool:
        return self.security_mode != 7 and bool(self.cf & 0x4000)

    @property
    def synchronous(self) -> bool:
        return self.security_mode != 7 and bool(self.cf & 0x2000)

    @property
    def content(self) -> int:
        """Content of the message: CF bits 3-2 (bits 15-14 in mode 7)."""
        return (self.cf >> 14) & 0x3 if self.security_mode == 7 else (self.cf >> 2) & 0x3

    @property
    def hop_count(self) -> int:
        """CF bits 1-0: hop count / repeated access (modes 0-5)."""
        return 0 if self.security_mode == 7 else self.cf & 0x3

    @property
    def kdf_selection(self) -> int | None:
        """Mode 7 CF-extension bits 5-4 (1 = the OMS key derivation)."""
        return None if self.cf_ext is None else (self.cf_ext >> 4) & 0x3

    @property
    def key_id(self) -> int | None:
        """Mode 7 CF-extension bits 3-0."""
        return None if self.cf_ext is None else self.cf_ext & 0x0F

    @property
    def status_flags(self) -> dict[str, bool]:
        """The application-independent status bits of STS."""
        sts = self.sts
        return {
            "application_busy": (sts & 0x03) == 0x01,
            "application_error": (sts & 0x03) == 0x02,
            "abnormal_condition": (sts & 0x03) == 0x03,
            "power_low": bool(sts & 0x04),
            "permanent_error": bool(sts & 0x08),
            "temporary_error": bool(sts & 0x10),
        }


class Layers(Record):
    """The headers found from a CI on, and where the remaining payload starts.

    Offsets index the buffer that was parsed. ``hidden`` is true when an ELL with
    AES-CTR hides the layers behind it: ``payload_offset`` then points at the first
    ciphertext byte (the ELL payload CRC).
    """

    ell: ELLHeader | None
    afl: AFLHeader | None
    tpl: TPLHeader | None
    tpl_ci: int | None
    tpl_offset: int
    payload_offset: int
    hidden: bool


def _need(layer: str, data: bytes, offset: int, count: int) -> None:
    available = len(data) - offset
    if available < count:
        raise HeaderTruncatedError(layer, count, max(available, 0))


def _parse_ell(data: bytes, offset: int) -> tuple[ELLHeader, int, bool]:
    ci = data[offset]
    length = CI_ELL_LENGTHS[ci]
    _need("ELL", data, offset, length)
    cc, acc = data[offset + 1], data[offset + 2]
    cursor = offset + 3
    address = None
    if ci in (0x8E, 0x8F):
        m2, id2, ver2, type2 = _ADDRESS.unpack_from(data, cursor)
        address = Address(manufacturer_code=m2, id_value=id2, version=ver2, device_type=type2)
        cursor += 8
    sn = None
    payload_crc = None
    hidden = False
    if ci in (0x8D, 0x8F):
        (sn,) = _U32.unpack_from(data, cursor)
        cursor += 4
        if (sn >> 29) & 0x7:
            hidden = True  # the payload CRC and all that follows is ciphertext
            return ELLHeader(ci=ci, cc=cc, acc=acc, address=address, sn=sn), cursor, hidden
        (payload_crc,) = _U16.unpack_from(data, cursor)
        cursor += 2
    header = ELLHeader(ci=ci, cc=cc, acc=acc, address=address, sn=sn, payload_crc=payload_crc)
    return header, cursor, hidden


def _parse_afl(data: bytes, offset: int) -> tuple[AFLHeader, int]:
    _need("AFL", data, offset, 4)
    afll = data[offset + 1]
    end = offset + 2 + afll
    _need("AFL", data, offset, 2 + afll)
    if afll < 2:
        raise HeaderTruncatedError("AFL", 2, afll)
    (fcl,) = _U16.unpack_from(data, offset + 2)
    cursor = offset + 4
    mcl = ki = mcr = ml = None
    mac = None

    def take(count: int) -> int:
        nonlocal cursor
        if count < 0 or cursor + count > end:
            raise HeaderTruncatedError("AFL", cursor + count - offset, end - offset)
        start = cursor
        cursor += count
        return start

    if fcl & AFL_MCL_PRESENT:
        mcl = data[take(1)]
    if fcl & AFL_KI_PRESENT:
        (ki,) = _U16.unpack_from(data, take(2))
    if fcl & AFL_MCR_PRESENT:
        (mcr,) = _U32.unpack_from(data, take(4))
    if fcl & AFL_MAC_PRESENT:
        # AFLL is authoritative for the MAC length; the AT code must agree when it names one.
        ml_size = 2 if fcl & AFL_ML_PRESENT else 0
        mac_length = AFL_MAC_LENGTHS.get((mcl or 0) & 0x0F, end - cursor - ml_size)
        mac = bytes(data[take(mac_length) : cursor])
    if fcl & AFL_ML_PRESENT:
        (ml,) = _U16.unpack_from(data, take(2))
    header = AFLHeader(afll=afll, fcl=fcl, mcl=mcl, ki=ki, mcr=mcr, mac=mac, ml=ml)
    return header, end


def _parse_tpl(data: bytes, offset: int, kind: TPLKind) -> tuple[TPLHeader, int]:
    ci = data[offset]
    cursor = offset + 1
    address = None
    if kind is TPLKind.LONG:
        _need("TPL", data, offset, 13)
        id_value, m, ver, dev = _LONG_TPL_ADDRESS.unpack_from(data, cursor)
        address = Address(manufacturer_code=m, id_value=id_value, version=ver, device_type=dev)
        cursor += 8
    else:
        _need("TPL", data, offset, 5)
    acc, sts = data[cursor], data[cursor + 1]
    (cf,) = _U16.unpack_from(data, cursor + 2)
    cursor += 4
    cf_ext = None
    if (cf >> 8) & 0x1F == 7:
        _need("TPL", data, offset, cursor - offset + 1)
        cf_ext = data[cursor]
        cursor += 1
    header = TPLHeader(ci=ci, kind=kind, acc=acc, sts=sts, cf=cf, cf_ext=cf_ext, address=address)
    return header, cursor


def parse_layers(data: bytes, offset: int) -> Layers:
    """Parse the ELL, AFL and TPL headers starting at the CI byte ``data[offset]``.

    Raises :class:`HeaderTruncatedError` when a header runs past the end of ``data``.
    Unknown and manufacturer-specific CIs end the walk: their bytes are payload.
    """
    ell = afl = tpl = None
    cursor = offset
    _need("CI", data, cursor, 1)
    if data[cursor] in CI_ELL_LENGTHS:
        ell, cursor, hidden = _parse_ell(data, cursor)
        if hidden:
            return Layers(
                ell=ell,
                afl=None,
                tpl=None,
                tpl_ci=None,
                tpl_offset=cursor,
                payload_offset=cursor,
                hidden=True,
            )
        _need("CI", data, cursor, 1)
    if data[cursor] == CI_AFL:
        afl, cursor = _parse_afl(data, cursor)
        _need("CI", data, cursor, 1)
    tpl_offset = cursor
    ci = data[cursor]
    kind = tpl_kind(ci)
    if kind in (TPLKind.SHORT, TPLKind.LONG):
        tpl, cursor = _parse_tpl(data, cursor, kind)
    else:
        cursor += 1
    return Layers(
        ell=ell, afl=afl, tpl=tpl, tpl_ci=ci, tpl_offset=tpl_offset, payload_offset=cursor, hidden=False
    )
