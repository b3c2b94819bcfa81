"""The key store: OMS and LoRaWAN device keys, kept encrypted at rest under a master key.

Device keys are configuration secrets. In memory they live as redacting key objects
(:class:`~minolcore.wmbus.security.OMSKey` for wireless M-Bus, which the OMS decryption takes
as is and which caches its AES contexts; :class:`~minolcore.lorawan.AesKey` for LoRaWAN); both
print as ``<redacted>`` and hand out their bytes only through ``.reveal()``. Nothing in this
module puts key text into a repr, a log line, an exception message or an export.

Plain key file (TOML, for import; indices in error messages count from 0)::

    [[devices]]                 # wireless M-Bus / OMS
    manufacturer = "ZRI"
    meter_id = "12345678"
    version = 1                 # optional: without it the key serves every version
    device_type = 7             # optional, likewise
    key = "000102030405060708090A0B0C0D0E0F"

    [[devices]]                 # LoRaWAN OTAA
    dev_eui = "70B3D57ED00000DC"
    app_key = "..."

    [[devices]]                 # LoRaWAN ABP
    dev_addr = "26011BDA"
    nwk_s_key = "..."
    app_s_key = "..."

Sealed file (written by :meth:`KeyStore.save`), all of it authenticated::

    offset  size  field
    0       4     magic b"MCKS"
    4       1     format version (1)
    5       16    salt (random per file)
    21      12    AES-GCM nonce (random per file)
    33      ...   ciphertext of the device list (JSON), then the 16-byte GCM tag

The file key is HKDF-SHA256(master key, salt) and the header is the GCM associated data, so
a changed bit anywhere, a wrong master key and a downgraded version all fail as
:class:`~minolcore.errors.KeyStoreError` ("tampered or wrong master key"). The master key is
32 bytes (64 hex digits) from ``MINOLCORE_MASTER_KEY`` or a file readable only by its owner.
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn, TypeAlias

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from minolcore._model import Record
from minolcore.errors import KeyStoreError
from minolcore.lorawan.keys import AesKey
from minolcore.wmbus.link import decode_manufacturer
from minolcore.wmbus.security import OMSKey

__all__ = [
    "FORMAT_VERSION",
    "MASTER_KEY_ENV",
    "KeyFileError",
    "KeyStore",
    "MasterKey",
    "OMSKeyAddress",
    "SecretKey",
    "SessionKeys",
    "master_key_from_env",
    "master_key_from_file",
    "rotate",
]

log = logging.getLogger(__name__)

MASTER_KEY_ENV: Final = "MINOLCORE_MASTER_KEY"
MASTER_KEY_SIZE: Final = 32
FORMAT_VERSION: Final = 1
MAGIC: Final = b"MCKS"
SALT_SIZE: Final = 16
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
HEADER_SIZE: Final = len(MAGIC) + 1 + SALT_SIZE + NONCE_SIZE
_AES_HEX_DIGITS: Final = 32
_HKDF_INFO: Final = b"minolcore key store v1"
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_TAMPERED: Final = "tampered or wrong master key"

SecretKey: TypeAlias = OMSKey | AesKey
"""A redacting 128-bit device key: :class:`OMSKey` (wireless M-Bus) or :class:`AesKey` (LoRaWAN)."""


class KeyFileError(KeyStoreError):
    """A key file entry that is invalid; ``where`` names the entry and field, never the key text."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


class MasterKey:
    """The 32-byte key that seals the key store at rest; never shows its bytes."""

    __slots__ = ("_key",)

    _key: bytes

    def __init__(self, key: bytes) -> None:
        """Wrap 32 raw bytes."""
        if not isinstance(key, bytes | bytearray) or len(key) != MASTER_KEY_SIZE:
            size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
            raise KeyStoreError(f"a master key needs {MASTER_KEY_SIZE} bytes, got {size}")
        self._key = bytes(key)

    @classmethod
    def from_hex(cls, text: str, source: str = "master key") -> MasterKey:
        """Parse 64 hex digits (surrounding whitespace allowed); errors never repeat the text."""
        compact = "".join(text.split()) if isinstance(text, str) else ""
        if len(compact) != 2 * MASTER_KEY_SIZE or not set(compact) <= _HEX:
            raise KeyStoreError(
                f"{source} must be {2 * MASTER_KEY_SIZE} hex digits "
                f"(got {len(compact)} characters{'' if set(compact) <= _HEX else ', some not hex'})"
            )
        return cls(bytes.fromhex(compact))

    @classmethod
    def generate(cls) -> MasterKey:
        """A fresh random master key (from the operating system's CSPRNG)."""
        return cls(os.urandom(MASTER_KEY_SIZE))

    def reveal(self) -> bytes:
        """The raw 32 bytes: the one deliberate way out (to store the key in a secret manager)."""
        return self._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterKey):
            return NotImplemented
        return hmac.compare_digest(self._key, other._key)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        # A master key travels through the environment or a file, never inside a pickle.
        raise KeyStoreError("a master key cannot be pickled")


def master_key_from_env(name: str = MASTER_KEY_ENV) -> MasterKey:
    """The master key from environment variable ``name`` (64 hex digits)."""
    value = os.environ.get(name)
    if value is None:
        raise KeyStoreError(f"environment variable {name} is not set")
    return MasterKey.from_hex(value, source=f"environment variable {name}")


def master_key_from_file(path: str | Path) -> MasterKey:
    """The master key from a file holding 64 hex digits; warns if others may read the file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="ascii")
        mode = file.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise KeyStoreError(f"cannot read master key file {str(file)!r}: {reason}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("master key file %s is accessible to group or others; chmod 600 it", file)
    return MasterKey.from_hex(text, source=f"master key file {str(file)!r}")


class OMSKeyAddress(Record):
    """The wireless M-Bus address a key belongs to; None in ``version``/``device_type`` = any."""

    manufacturer: str
    id: str
    version: int | None = None
    device_type: int | None = None

    def specificity(self) -> int:
        """How many of the optional fields are given (0..2): the more, the better a match."""
        return (self.version is not None) + (self.device_type is not None)

    def matches(self, version: int | None, device_type: int | None) -> bool:
        """Whether a telegram with ``version``/``device_type`` (None = unknown) may use this key."""
        return (self.version is None or version is None or self.version == version) and (
            self.device_type is None or device_type is None or self.device_type == device_type
        )


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The ABP session keys of one LoRaWAN DevAddr (both redacting :class:`AesKey` objects)."""

    nwk_s_key: AesKey
    app_s_key: AesKey


# --- field checks (messages describe shapes, never values: a key pasted into the wrong field
# must not come back out in an error) --------------------------------------------------------------


def _hex_key(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise KeyFileError(f"must be a string of {_AES_HEX_DIGITS} hex digits", where)
    compact = "".join(value.split())
    if not set(compact) <= _HEX:
        raise KeyFileError("holds characters that are not hex digits", where)
    if len(compact) != _AES_HEX_DIGITS:
        raise KeyFileError(f"must be {_AES_HEX_DIGITS} hex digits, got {len(compact)}", where)
    return compact.upper()


def _hex_id(value: object, digits: int, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << (4 * digits):
        return f"{value:0{digits}X}"
    if not isinstance(value, str):
        raise KeyFileError(f"must be a string of {digits} hex digits", where)
    compact = value.strip().replace("-", "").replace(":", "")
    if len(compact) != digits or not set(compact) <= _HEX:
        raise KeyFileError(f"must be {digits} hex digits (got {len(compact)} characters)", where)
    return compact.upper()


def _manufacturer(value: object, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0x7FFF:
        value = decode_manufacturer(value)
    if isinstance(value, str):
        letters = value.strip().upper()
        if len(letters) == 3 and all("A" <= ch <= "Z" for ch in letters):
            return letters
    raise KeyFileError("must be a three-letter manufacturer code A-Z (or its M-field value)", where)


def _byte(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise KeyFileError("must be an integer 0..255", where)
    return value


def _field_name(name: object) -> str:
    # Only short identifiers are echoed: anything else might be key text in the wrong place.
    if isinstance(name, str) and name.isidentifier() and len(name) <= 24:
        return repr(name)
    return "a field"


_DEVICE_FIELDS: Final = frozenset(
    (
        "manufacturer", "meter_id", "version", "device_type", "key",
        "dev_eui", "app_key", "dev_addr", "nwk_s_key", "app_s_key",
    )
)  # fmt: skip


# --- the store ---------------------------------------------------------------------------------


class KeyStore:
    """Device keys by address: OMS keys per wireless M-Bus address, LoRaWAN AppKeys per DevEUI
    and ABP session keys per DevAddr. Lookups are safe from several threads."""

    def __init__(self) -> None:
        """An empty store; fill it with the ``add_*`` methods, :meth:`import_plain` or :meth:`load`."""
        self._oms: dict[tuple[str, str], list[tuple[OMSKeyAddress, OMSKey]]] = {}
        self._oms_exact: dict[tuple[str, str, int | None, int | None], OMSKey] = {}
        self._app_keys: dict[str, AesKey] = {}
        self._sessions: dict[str, SessionKeys] = {}

    # --- filling -------------------------------------------------------------------------------

    def add_oms_key(
        self,
        manufacturer: str | int,
        meter_id: str | int,
        key: OMSKey | bytes | str,
        *,
        version: int | None = None,
        device_type: int | None = None,
    ) -> OMSKeyAddress:
        """Add the AES-128 key (16 bytes or 32 hex digits) of a wireless M-Bus device.

        ``meter_id`` is the 8-digit ID as printed, or the 32-bit A-field value.
        """
        where = "add_oms_key"
        address = OMSKeyAddress(
            manufacturer=_manufacturer(manufacturer, f"{where}.manufacturer"),
            id=_hex_id(meter_id, 8, f"{where}.meter_id"),
            version=_byte(version, f"{where}.version"),
            device_type=_byte(device_type, f"{where}.device_type"),
        )
        self._put_oms(address, _oms_key(key, f"{where}.key"), where)
        return address

    def add_app_key(self, dev_eui: str | int, app_key: AesKey | bytes | str) -> str:
        """Add the LoRaWAN AppKey (16 bytes or 32 hex digits) of an OTAA device; returns the DevEUI."""
        eui = _hex_id(dev_eui, 16, "add_app_key.dev_eui")
        self._put_app_key(eui, _aes_key(app_key, "add_app_key.app_key"), "add_app_key")
        return eui

    def add_session_keys(
        self, dev_addr: str | int, nwk_s_key: AesKey | bytes | str, app_s_key: AesKey | bytes | str
    ) -> str:
        """Add the ABP session keys (16 bytes or 32 hex digits each) of a DevAddr; returns the DevAddr."""
        addr = _hex_id(dev_addr, 8, "add_session_keys.dev_addr")
        keys = SessionKeys(
            nwk_s_key=_aes_key(nwk_s_key, "add_session_keys.nwk_s_key"),
            app_s_key=_aes_key(app_s_key, "add_session_keys.app_s_key"),
        )
        self._put_sessions(addr, keys, "add_session_keys")
        return addr

    def _put_oms(self, address: OMSKeyAddress, key: OMSKey, where: str) -> None:
        exact = (address.manufacturer, address.id, address.version, address.device_type)
        if exact in self._oms_exact:
            raise KeyFileError(f"a key for {_describe(address)} is already in the store", where)
        self._oms.setdefault((address.manufacturer, address.id), []).append((address, key))
        self._oms_exact[exact] = key

    def _put_app_key(self, eui: str, key: AesKey, where: str) -> None:
        if eui in self._app_keys:
            raise KeyFileError(f"an AppKey for DevEUI {eui} is already in the store", where)
        self._app_keys[eui] = key

    def _put_sessions(self, addr: str, keys: SessionKeys, where: str) -> None:
        if addr in self._sessions:
            raise KeyFileError(f"session keys for DevAddr {addr} are already in the store", where)
        self._sessions[addr] = keys

    def _add_entry(self, item: object, where: str) -> None:
        if not isinstance(item, Mapping):
            raise KeyFileError("must be a table", where)
        for name in item:
            if name not in _DEVICE_FIELDS:
                raise KeyFileError(f"unknown field {_field_name(name)}", where)
        oms = any(item.get(k) is not None for k in ("manufacturer", "meter_id", "key"))
        lora = any(
            item.get(k) is not None for k in ("dev_eui", "app_key", "dev_addr", "nwk_s_key", "app_s_key")
        )
        if oms == lora:
            raise KeyFileError(
                "a device has manufacturer, meter_id and key (wireless M-Bus), "
                "or dev_eui/app_key and/or dev_addr/nwk_s_key/app_s_key (LoRaWAN)",
                where,
            )
        if oms:
            for name in ("manufacturer", "meter_id", "key"):
                if item.get(name) is None:
                    raise KeyFileError("is missing", f"{where}.{name}")
            address = OMSKeyAddress(
                manufacturer=_manufacturer(item["manufacturer"], f"{where}.manufacturer"),
                id=_hex_id(item["meter_id"], 8, f"{where}.meter_id"),
                version=_byte(item.get("version"), f"{where}.version"),
                device_type=_byte(item.get("device_type"), f"{where}.device_type"),
            )
            self._put_oms(address, OMSKey(bytes.fromhex(_hex_key(item["key"], f"{where}.key"))), where)
            return
        for name in ("version", "device_type"):
            if item.get(name) is not None:
                raise KeyFileError("belongs to wireless M-Bus devices only", f"{where}.{name}")
        if (item.get("dev_eui") is None) != (item.get("app_key") is None):
            raise KeyFileError("dev_eui and app_key come together", where)
        abp = [item.get(k) is None for k in ("dev_addr", "nwk_s_key", "app_s_key")]
        if any(abp) and not all(abp):
            raise KeyFileError("dev_addr, nwk_s_key and app_s_key come together", where)
        # Validate every field before storing anything, so a bad entry leaves no half of itself.
        eui = app_key = addr = None
        session = None
        if item.get("dev_eui") is not None:
            eui = _hex_id(item["dev_eui"], 16, f"{where}.dev_eui")
            app_key = AesKey(bytes.fromhex(_hex_key(item["app_key"], f"{where}.app_key")))
            if eui in self._app_keys:
                raise KeyFileError(f"an AppKey for DevEUI {eui} is already in the store", where)
        if item.get("dev_addr") is not None:
            addr = _hex_id(item["dev_addr"], 8, f"{where}.dev_addr")
            session = SessionKeys(
                nwk_s_key=AesKey(bytes.fromhex(_hex_key(item["nwk_s_key"], f"{where}.nwk_s_key"))),
                app_s_key=AesKey(bytes.fromhex(_hex_key(item["app_s_key"], f"{where}.app_s_key"))),
            )
        if addr is not None and session is not None:
            self._put_sessions(addr, session, where)
        if eui is not None and app_key is not None:
            self._put_app_key(eui, app_key, where)

    # --- lookups -------------------------------------------------------------------------------

    def oms_key(
        self,
        manufacturer: str | int,
        meter_id: str | int,
        version: int | None = None,
        device_type: int | None = None,
    ) -> OMSKey | None:
        """The key of a wireless M-Bus device, or None.

        ``manufacturer`` as letters or M-field value, ``meter_id`` as the 8-digit ID or the
        32-bit A-field value. The most specific stored entry that fits wins (an entry without
        version/device type serves all); two different keys fitting equally raise KeyStoreError.
        """
        if isinstance(manufacturer, int):
            manufacturer = decode_manufacturer(manufacturer)
        else:
            manufacturer = manufacturer.upper()
        meter = f"{meter_id:08X}" if isinstance(meter_id, int) else meter_id.upper()
        exact = self._oms_exact.get((manufacturer, meter, version, device_type))
        if exact is not None and version is not None and device_type is not None:
            return exact
        candidates = self._oms.get((manufacturer, meter))
        if not candidates:
            return None
        best: OMSKey | None = None
        best_rank = -1
        tie = False
        for address, key in candidates:
            if not address.matches(version, device_type):
                continue
            rank = address.specificity()
            if rank > best_rank:
                best, best_rank, tie = key, rank, False
            elif rank == best_rank and key != best:
                tie = True
        if tie:
            raise KeyStoreError(
                f"several keys fit {manufacturer}-{meter}; give the version and device type of the telegram"
            )
        return best

    def app_key(self, dev_eui: str | int) -> AesKey | None:
        """The AppKey of the OTAA device ``dev_eui`` (16 hex digits or the 64-bit value), or None."""
        eui = f"{dev_eui:016X}" if isinstance(dev_eui, int) else dev_eui.replace("-", "").upper()
        return self._app_keys.get(eui)

    def lorawan_session_keys(self, dev_addr: str | int) -> SessionKeys | None:
        """The ABP session keys of ``dev_addr`` (8 hex digits or the 32-bit value), or None."""
        addr = f"{dev_addr:08X}" if isinstance(dev_addr, int) else dev_addr.upper()
        return self._sessions.get(addr)

    def __len__(self) -> int:
        return sum(len(v) for v in self._oms.values()) + len(self._app_keys) + len(self._sessions)

    def __repr__(self) -> str:
        oms = sum(len(v) for v in self._oms.values())
        return (
            f"KeyStore({oms} OMS keys, {len(self._app_keys)} LoRaWAN AppKeys, "
            f"{len(self._sessions)} LoRaWAN ABP sessions)"
        )

    __str__ = __repr__

    def export_public(self) -> list[dict[str, str | int | None]]:
        """Every device in the store without key material: kind, address and an 8-hex-digit
        key fingerprint (a hash prefix that tells keys apart, e.g. before and after a change)."""
        result: list[dict[str, str | int | None]] = []
        for entries in self._oms.values():
            for address, key in entries:
                result.append(
                    {
                        "kind": "oms",
                        "manufacturer": address.manufacturer,
                        "meter_id": address.id,
                        "version": address.version,
                        "device_type": address.device_type,
                        "fingerprint": key.fingerprint,
                    }
                )
        for eui, app_key in self._app_keys.items():
            result.append({"kind": "lorawan_otaa", "dev_eui": eui, "fingerprint": app_key.fingerprint})
        for addr, keys in self._sessions.items():
            result.append(
                {
                    "kind": "lorawan_abp",
                    "dev_addr": addr,
                    "fingerprint": f"{keys.nwk_s_key.fingerprint}/{keys.app_s_key.fingerprint}",
                }
            )
        return result

    # --- files ---------------------------------------------------------------------------------

    @classmethod
    def import_plain(cls, path: str | Path) -> KeyStore:
        """Read a plaintext TOML key file (format in the module docstring)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise KeyStoreError(f"cannot read key file {str(path)!r}: {reason}") from None
        store = cls.from_plain_text(text, source=str(path))
        log.info("imported %r from %s", store, path)
        return store

    @classmethod
    def from_plain_text(cls, text: str, source: str = "<keys>") -> KeyStore:
        """Parse plaintext key-file TOML given as text; ``source`` names it in syntax errors."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib reports positions, not content; still, keep only the position part.
            message = str(exc)
            position = message.rpartition("(")[2].rstrip(")") if "(" in message else "position unknown"
            raise KeyStoreError(f"{source}: not valid TOML ({position})") from None
        store = cls()
        for name in data:
            if name != "devices":
                raise KeyFileError(
                    f"unknown top-level field {_field_name(name)} (expected [[devices]])", source
                )
        devices = data.get("devices", [])
        if not isinstance(devices, list):
            raise KeyFileError("must be an array of tables ([[devices]])", "devices")
        for index, item in enumerate(devices):
            store._add_entry(item, f"devices[{index}]")
        return store

    def _entries(self) -> Iterator[dict[str, str | int | None]]:
        for entries in self._oms.values():
            for address, key in entries:
                yield {
                    "manufacturer": address.manufacturer,
                    "meter_id": address.id,
                    "version": address.version,
                    "device_type": address.device_type,
                    "key": key.reveal().hex(),
                }
        for eui, app_key in self._app_keys.items():
            yield {"dev_eui": eui, "app_key": app_key.reveal().hex()}
        for addr, keys in self._sessions.items():
            yield {
                "dev_addr": addr,
                "nwk_s_key": keys.nwk_s_key.reveal().hex(),
                "app_s_key": keys.app_s_key.reveal().hex(),
            }

    def seal(self, master_key: MasterKey) -> bytes:
        """The store as sealed bytes (the file format in the module docstring)."""
        _check_master(master_key)
        salt = os.urandom(SALT_SIZE)
        nonce = os.urandom(NONCE_SIZE)
        header = MAGIC + bytes((FORMAT_VERSION,)) + salt + nonce
        plain = msgspec.json.encode({"devices": list(self._entries())})
        return header + AESGCM(_file_key(master_key, salt)).encrypt(nonce, plain, header)

    @classmethod
    def unseal(cls, blob: bytes, master_key: MasterKey, *, previous: Sequence[MasterKey] = ()) -> KeyStore:
        """A store from sealed bytes; ``previous`` master keys are tried after ``master_key``
        (so readers keep loading while a rotation is being rolled out)."""
        for candidate in (master_key, *previous):
            _check_master(candidate)
        if len(blob) < HEADER_SIZE + TAG_SIZE or blob[: len(MAGIC)] != MAGIC:
            raise KeyStoreError("not a minolcore key store (bad magic or too short)")
        if blob[len(MAGIC)] != FORMAT_VERSION:
            raise KeyStoreError(f"unsupported key store format version {blob[len(MAGIC)]}; {_TAMPERED}")
        header = blob[:HEADER_SIZE]
        salt = header[len(MAGIC) + 1 : len(MAGIC) + 1 + SALT_SIZE]
        nonce = header[-NONCE_SIZE:]
        for candidate in (master_key, *previous):
            try:
                plain = AESGCM(_file_key(candidate, salt)).decrypt(nonce, blob[HEADER_SIZE:], header)
                break
            except InvalidTag:
                continue
        else:
            raise KeyStoreError(_TAMPERED)
        try:
            data = msgspec.json.decode(plain)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            # Authenticated but unreadable: written by something that is not this library.
            raise KeyStoreError("sealed key store content is not valid JSON") from None
        store = cls()
        devices = data.get("devices") if isinstance(data, dict) else None
        if not isinstance(devices, list):
            raise KeyStoreError("sealed key store content has no device list")
        for index, item in enumerate(devices):
            store._add_entry(
                {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item,
                f"sealed devices[{index}]",
            )
        return store

    def save(self, path: str | Path, master_key: MasterKey) -> None:
        """Write the store sealed under ``master_key``, atomically (temp file + rename), mode 0600."""
        _write_atomic(Path(path), self.seal(master_key))
        log.info("saved %r to %s", self, path)

    @classmethod
    def load(cls, path: str | Path, master_key: MasterKey, *, previous: Sequence[MasterKey] = ()) -> KeyStore:
        """Read a store written by :meth:`save`; see :meth:`unseal` for ``previous``."""
        try:
            blob = Path(path).read_bytes()
        except OSError as exc:
            raise KeyStoreError(f"cannot read key store {str(path)!r}: {exc.strerror}") from None
        store = cls.unseal(blob, master_key, previous=previous)
        log.info("loaded %r from %s", store, path)
        return store


def rotate(path: str | Path, old_master: MasterKey, new_master: MasterKey) -> KeyStore:
    """Re-seal the key store at ``path`` under ``new_master``; returns the store.

    The new file is written next to the old one, read back and checked with ``new_master``,
    and only then renamed over it, so the path always holds a complete store under one of the
    two keys. Running processes keep their in-memory stores; during the roll-out they can load
    with ``previous=[old_master]``.
    """
    target = Path(path)
    store = KeyStore.load(target, old_master)
    blob = store.seal(new_master)
    if len(KeyStore.unseal(blob, new_master)) != len(store):
        raise KeyStoreError("re-sealed key store does not read back complete; the old file is kept")
    _write_atomic(target, blob)
    log.info("rotated the master key of %s (%r)", target, store)
    return store


def _describe(address: OMSKeyAddress) -> str:
    text = f"{address.manufacturer}-{address.id}"
    if address.version is not None:
        text += f" version {address.version}"
    if address.device_type is not None:
        text += f" type {address.device_type}"
    return text


def _oms_key(key: object, where: str) -> OMSKey:
    if isinstance(key, OMSKey):
        return key
    if isinstance(key, str):
        return OMSKey(bytes.fromhex(_hex_key(key, where)))
    if isinstance(key, bytes | bytearray) and len(key) == _AES_HEX_DIGITS // 2:
        return OMSKey(bytes(key))
    raise KeyFileError("must be 16 bytes, 32 hex digits or an OMSKey", where)


def _aes_key(key: object, where: str) -> AesKey:
    if isinstance(key, AesKey):
        return key
    if isinstance(key, str):
        return AesKey(bytes.fromhex(_hex_key(key, where)))
    if isinstance(key, bytes | bytearray) and len(key) == _AES_HEX_DIGITS // 2:
        return AesKey(bytes(key))
    raise KeyFileError("must be 16 bytes, 32 hex digits or an AesKey", where)


def _check_master(master_key: object) -> None:
    if not isinstance(master_key, MasterKey):
        raise KeyStoreError(f"a master key must be a MasterKey, not {type(master_key).__name__}")


def _file_key(master_key: MasterKey, salt: bytes) -> bytes:
    # A per-file key: the master key itself never touches data, and the random salt keeps
    # (key, nonce) pairs unique across every file ever sealed under the same master key.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(master_key.reveal())


def _write_atomic(target: Path, blob: bytes) -> None:
    directory = target.parent if str(target.parent) else Path(".")
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise KeyStoreError(f"cannot write key store in {str(directory)!r}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(blob)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, target)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        raise KeyStoreError(f"cannot write key store {str(target)!r}: {exc.strerror}") from None
    if os.name == "posix":
        # The rename is durable only once the directory entry is on disk.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
