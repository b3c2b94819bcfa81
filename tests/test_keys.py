"""Key store: plain import and its validation, lookups, the sealed file (round trips, bit flips,
wrong master keys), master keys from env and file, rotation, and that no key ever leaks into a
repr, str, error message, log line or export."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import pickle
import stat

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from minolcore import keys as keys_module
from minolcore.errors import KeyStoreError
from minolcore.keys import (
    MASTER_KEY_ENV,
    KeyFileError,
    KeyStore,
    MasterKey,
    SessionKeys,
    master_key_from_env,
    master_key_from_file,
    rotate,
)
from minolcore.lorawan import AesKey
from minolcore.wmbus.frame import parse_frame
from minolcore.wmbus.security import OMSKey, unseal
from tests.vectors import V1_FRAME, V1_KEY, V1_PLAINTEXT

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "keys.toml"
MASTER = MasterKey(bytes(range(32)))
OTHER_MASTER = MasterKey(bytes(range(1, 33)))

# Keys of the leak tests: random-looking so that they cannot occur by accident in any text.
SECRETS = {
    "oms": "5A1F0C93D27E4B8806A3F1C2B94E7D10",
    "oms_any_version": "C3E7A9104B2D6F8815A0E4C97B3D2F61",
    "app_key": "8B4D2E7F1A9C3065D8E1F4A7B2C09E53",
    "nwk_s_key": "E2A4C6E8F0123456789ABCDEFDB97531",
    "app_s_key": "7F3E9D2C1B0A5948372615F4E3D2C1B0",
}

LEAK_FILE = f"""
[[devices]]
manufacturer = "ZRI"
meter_id = "40000001"
version = 1
device_type = 22
key = "{SECRETS["oms"]}"

[[devices]]
manufacturer = "ZRI"
meter_id = "40000001"
key = "{SECRETS["oms_any_version"].lower()}"

[[devices]]
dev_eui = "70B3D57ED00000DC"
app_key = "{SECRETS["app_key"]}"
dev_addr = "26011BDA"
nwk_s_key = "{SECRETS["nwk_s_key"]}"
app_s_key = "{SECRETS["app_s_key"]}"
"""


def _forms(hex_key: str) -> list[str]:
    raw = bytes.fromhex(hex_key)
    return [hex_key.upper(), hex_key.lower(), raw.decode("latin-1")]


def assert_no_key_in(text: str) -> None:
    for hex_key in SECRETS.values():
        for form in _forms(hex_key):
            assert form not in text


def assert_no_key_in_bytes(blob: bytes) -> None:
    for hex_key in SECRETS.values():
        raw = bytes.fromhex(hex_key)
        assert raw not in blob
        assert hex_key.upper().encode() not in blob
        assert hex_key.lower().encode() not in blob


# --- import and lookups ------------------------------------------------------------------------


def test_example_file_imports() -> None:
    store = KeyStore.import_plain(EXAMPLE)
    assert repr(store) == "KeyStore(2 OMS keys, 1 LoRaWAN AppKeys, 1 LoRaWAN ABP sessions)"
    assert len(store) == 4
    key = store.oms_key("ZRI", "40000001", 1, 22)
    assert isinstance(key, OMSKey) and key.reveal() == bytes(range(16))
    app_key = store.app_key("70B3D57ED00000DC")
    assert (
        isinstance(app_key, AesKey) and app_key.reveal().hex().upper() == "2B7E151628AED2A6ABF7158809CF4F3C"
    )
    session = store.lorawan_session_keys("26011bda")
    assert isinstance(session, SessionKeys)
    assert session.nwk_s_key.reveal() == b"\x22" * 16 and session.app_s_key.reveal() == b"\x33" * 16


def test_oms_lookup_rules() -> None:
    store = KeyStore()
    store.add_oms_key("ABC", "11111111", "00" * 16)
    store.add_oms_key("ABC", "11111111", "01" * 16, version=2)
    store.add_oms_key("ABC", "11111111", "02" * 16, version=2, device_type=7)

    def reveal(*args: str | int | None) -> int | None:
        key = store.oms_key(*args)  # type: ignore[arg-type]
        return None if key is None else key.reveal()[0]

    assert reveal("ABC", "11111111", 2, 7) == 2  # most specific
    assert reveal("ABC", "11111111", 2, 4) == 1  # version matches, type does not
    assert reveal("ABC", "11111111", 3, 7) == 0  # only the catch-all fits
    assert reveal("abc", "11111111", 9, 9) == 0  # letters in any case
    assert reveal("ABC", "11111112", 2, 7) is None
    assert reveal("XYZ", "11111111", 2, 7) is None
    # The M-field value and the A-field ID value, as a decoded frame carries them.
    assert reveal(0x0443, 0x11111111, 2, 7) == 2
    assert store.add_oms_key(0x0443, 0x22222222, bytes(16)).manufacturer == "ABC"
    assert store.oms_key("ABC", "22222222") is not None


def test_ambiguous_oms_lookup_raises() -> None:
    store = KeyStore()
    store.add_oms_key("ABC", "11111111", "01" * 16, version=2)
    store.add_oms_key("ABC", "11111111", "02" * 16, device_type=7)
    with pytest.raises(KeyStoreError, match="several keys fit ABC-11111111"):
        store.oms_key("ABC", "11111111", 2, 7)
    assert store.oms_key("ABC", "11111111", 2, 4) is not None


def test_store_key_decrypts_an_oms_telegram() -> None:
    store = KeyStore()
    store.add_oms_key("ELS", "12345678", V1_KEY, version=51, device_type=3)
    frame = parse_frame(V1_FRAME)
    key = store.oms_key(frame.manufacturer_code, frame.id_value, frame.version, frame.device_type)
    assert key is not None
    assert unseal(frame, key).apl.hex().upper().startswith(V1_PLAINTEXT)


BAD_ENTRIES = [
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nkey = "{k}"', "devices[0].key",
                 "32 hex digits, got 31", lambda k: k[:-1], id="short-key"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nkey = "{k}"', "devices[0].key",
                 "not hex digits", lambda k: k[:-1] + "G", id="non-hex-key"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nkey = "{k}"', "devices[0].key",
                 "32 hex digits, got 34", lambda k: k + "00", id="long-key"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nkey = 5', "devices[0].key",
                 "must be a string", lambda k: k, id="int-key"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "{k}"\nkey = "{k}"', "devices[0].meter_id",
                 "8 hex digits", lambda k: k, id="key-in-meter-id"),
    pytest.param('manufacturer = "{k}"\nmeter_id = "40000001"\nkey = "{k}"', "devices[0].manufacturer",
                 "three-letter", lambda k: k, id="key-in-manufacturer"),
    pytest.param('manufacturer = "Z1I"\nmeter_id = "40000001"\nkey = "{k}"', "devices[0].manufacturer",
                 "three-letter", lambda k: k, id="bad-manufacturer"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nversion = 256\nkey = "{k}"',
                 "devices[0].version", "0..255", lambda k: k, id="bad-version"),
    pytest.param('manufacturer = "ZRI"\nkey = "{k}"', "devices[0].meter_id", "is missing", lambda k: k,
                 id="missing-id"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nkey = "{k}"\n"{k}" = 1', "devices[0]",
                 "unknown field a field", lambda k: k, id="key-as-field-name"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nkye = "{k}"', "devices[0]",
                 "unknown field 'kye'", lambda k: k, id="typo"),
    pytest.param('dev_eui = "{k}"\napp_key = "{k}"', "devices[0].dev_eui", "16 hex digits", lambda k: k,
                 id="key-in-dev-eui"),
    pytest.param('dev_eui = "70B3D57ED00000DC"', "devices[0]", "come together", lambda k: k,
                 id="eui-without-key"),
    pytest.param('dev_addr = "26011BDA"\nnwk_s_key = "{k}"', "devices[0]", "come together", lambda k: k,
                 id="abp-half"),
    pytest.param('dev_addr = "{k}"\nnwk_s_key = "{k}"\napp_s_key = "{k}"', "devices[0].dev_addr",
                 "8 hex digits", lambda k: k, id="key-in-dev-addr"),
    pytest.param('dev_eui = "70B3D57ED00000DC"\napp_key = "{k}"\nversion = 1', "devices[0].version",
                 "wireless M-Bus devices only", lambda k: k, id="lorawan-with-version"),
    pytest.param('manufacturer = "ZRI"\nmeter_id = "40000001"\nkey = "{k}"\ndev_eui = "70B3D57ED00000DC"',
                 "devices[0]", "a device has", lambda k: k, id="both-kinds"),
    pytest.param("", "devices[0]", "a device has", lambda k: k, id="empty-entry"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "where", "message", "mangle"), BAD_ENTRIES)
def test_bad_key_files_name_the_entry_but_never_the_key(
    body: str, where: str, message: str, mangle: object
) -> None:
    assert callable(mangle)
    for secret in SECRETS.values():
        text = "[[devices]]\n" + body.replace("{k}", mangle(secret))
        with pytest.raises(KeyFileError) as caught:
            KeyStore.from_plain_text(text)
        assert caught.value.where == where
        assert message in str(caught.value)
        assert_no_key_in(str(caught.value))
        assert_no_key_in(repr(caught.value))


def test_duplicates_and_structure_errors() -> None:
    entry = f'[[devices]]\nmanufacturer = "ZRI"\nmeter_id = "40000001"\nkey = "{SECRETS["oms"]}"\n'
    with pytest.raises(KeyFileError, match="already in the store") as caught:
        KeyStore.from_plain_text(entry + entry)
    assert caught.value.where == "devices[1]"
    eui = f'[[devices]]\ndev_eui = "70B3D57ED00000DC"\napp_key = "{SECRETS["app_key"]}"\n'
    with pytest.raises(KeyFileError, match="AppKey for DevEUI 70B3D57ED00000DC"):
        KeyStore.from_plain_text(eui + eui)
    with pytest.raises(KeyFileError, match="array of tables"):
        KeyStore.from_plain_text("devices = 3")
    with pytest.raises(KeyFileError, match="must be a table"):
        KeyStore.from_plain_text("devices = [1]")
    with pytest.raises(KeyFileError, match="unknown top-level field 'oms'"):
        KeyStore.from_plain_text("[[oms]]\nkey = 1")
    with pytest.raises(KeyStoreError, match=r"not valid TOML \(at line 1"):
        KeyStore.from_plain_text(f"key = {SECRETS['oms']}")
    with pytest.raises(KeyStoreError, match="cannot read key file"):
        KeyStore.import_plain("/nonexistent/keys.toml")
    store = KeyStore()
    with pytest.raises(KeyFileError, match="16 bytes, 32 hex digits"):
        store.add_app_key("70B3D57ED00000DC", b"short")
    with pytest.raises(KeyFileError, match="32 hex digits, got 30"):
        store.add_session_keys("26011BDA", "00" * 15, "00" * 16)
    assert len(store) == 0


# --- no leaks ----------------------------------------------------------------------------------


def test_keys_never_leak(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    plain = tmp_path / "keys.toml"
    plain.write_text(LEAK_FILE)
    store = KeyStore.import_plain(plain)
    assert len(store) == 4
    texts: list[str] = [repr(store), str(store), f"{store}", json.dumps(store.export_public())]
    found = [
        store.oms_key("ZRI", "40000001", 1, 22),
        store.oms_key("ZRI", "40000001", 2, 22),
        store.app_key("70B3D57ED00000DC"),
        store.lorawan_session_keys("26011BDA"),
    ]
    assert all(item is not None for item in found)
    # The store holds exactly the keys of the file (so the checks below test the real ones).
    revealed = {k.reveal().hex().upper() for k in found[:3] if isinstance(k, OMSKey | AesKey)}
    session = found[3]
    assert isinstance(session, SessionKeys)
    revealed |= {session.nwk_s_key.reveal().hex().upper(), session.app_s_key.reveal().hex().upper()}
    assert revealed == set(SECRETS.values())
    for item in found:
        texts += [repr(item), str(item), f"{item}", f"{item!r:>20}"]
    texts += [repr(MASTER), str(MASTER), f"{MASTER}"]

    sealed = tmp_path / "keys.sealed"
    store.save(sealed, MASTER)
    assert_no_key_in_bytes(sealed.read_bytes())
    loaded = KeyStore.load(sealed, MASTER)
    texts += [repr(loaded), json.dumps(loaded.export_public())]
    rotate(sealed, MASTER, OTHER_MASTER)
    assert_no_key_in_bytes(sealed.read_bytes())

    errors: list[BaseException] = []
    for attempt in (
        lambda: KeyStore.load(sealed, MASTER),
        lambda: KeyStore.unseal(sealed.read_bytes()[:-1], OTHER_MASTER),
        lambda: MasterKey.from_hex(SECRETS["oms"] + SECRETS["oms"][:-1]),
        lambda: MasterKey.from_hex(SECRETS["oms"] * 2 + "zz"),
        lambda: MasterKey(bytes.fromhex(SECRETS["oms"])),
        lambda: pickle.dumps(MASTER),
        lambda: store.add_oms_key("ZRI", "40000001", SECRETS["oms"], version=1, device_type=22),
        lambda: store.add_oms_key("ZRI", SECRETS["oms"], SECRETS["oms"]),
        lambda: KeyStore.from_plain_text(LEAK_FILE + LEAK_FILE),
        lambda: KeyStore.from_plain_text(LEAK_FILE.replace('"26011BDA"', SECRETS["oms"])),
    ):
        with pytest.raises(KeyStoreError) as caught:
            attempt()
        errors.append(caught.value)
    monkeypatch.setenv(MASTER_KEY_ENV, SECRETS["app_key"])
    with pytest.raises(KeyStoreError) as caught:
        master_key_from_env()
    errors.append(caught.value)
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [record.getMessage() for record in caplog.records]
    assert any("KeyStore(" in record.getMessage() for record in caplog.records)
    for text in texts:
        assert_no_key_in(text)


def test_export_public_lists_devices_without_keys() -> None:
    store = KeyStore.from_plain_text(LEAK_FILE)
    exported = store.export_public()
    assert [e["kind"] for e in exported] == ["oms", "oms", "lorawan_otaa", "lorawan_abp"]
    assert exported[0] == {
        "kind": "oms",
        "manufacturer": "ZRI",
        "meter_id": "40000001",
        "version": 1,
        "device_type": 22,
        "fingerprint": OMSKey.from_hex(SECRETS["oms"]).fingerprint,
    }
    assert exported[3]["dev_addr"] == "26011BDA"
    assert not any("key" in field for entry in exported for field in entry)


# --- master keys -------------------------------------------------------------------------------


def test_master_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, " " + MASTER.reveal().hex() + "\n")
    assert master_key_from_env() == MASTER
    monkeypatch.setenv("OTHER_VAR", OTHER_MASTER.reveal().hex().upper())
    assert master_key_from_env("OTHER_VAR") == OTHER_MASTER
    monkeypatch.setenv(MASTER_KEY_ENV, "ab" * 31)
    with pytest.raises(KeyStoreError, match="64 hex digits \\(got 62 characters\\)"):
        master_key_from_env()
    monkeypatch.setenv(MASTER_KEY_ENV, "xy" * 32)
    with pytest.raises(KeyStoreError, match="some not hex"):
        master_key_from_env()
    monkeypatch.delenv(MASTER_KEY_ENV)
    with pytest.raises(KeyStoreError, match="MINOLCORE_MASTER_KEY is not set"):
        master_key_from_env()


def test_master_key_from_file(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "master.key"
    path.write_text(MASTER.reveal().hex() + "\n")
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="minolcore.keys"):
        assert master_key_from_file(path) == MASTER
    assert not caplog.records
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="minolcore.keys"):
        assert master_key_from_file(path) == MASTER
    assert "chmod 600" in caplog.text
    with pytest.raises(KeyStoreError, match="cannot read master key file"):
        master_key_from_file(tmp_path / "missing.key")


def test_master_key_object() -> None:
    generated = MasterKey.generate()
    assert generated != MasterKey.generate()
    assert len(generated.reveal()) == 32
    assert repr(generated) == "MasterKey(<redacted>)"
    with pytest.raises(KeyStoreError, match="needs 32 bytes, got 16"):
        MasterKey(bytes(16))
    with pytest.raises(KeyStoreError, match="cannot be pickled"):
        pickle.dumps(generated)
    with pytest.raises(KeyStoreError, match="must be a MasterKey"):
        KeyStore().seal(b"\x00" * 32)  # type: ignore[arg-type]


# --- the sealed file ---------------------------------------------------------------------------


def _same(a: KeyStore, b: KeyStore) -> bool:
    return a.export_public() == b.export_public() and list(a._entries()) == list(b._entries())


def test_save_load_rotate(tmp_path: pathlib.Path) -> None:
    store = KeyStore.import_plain(EXAMPLE)
    path = tmp_path / "keys.sealed"
    store.save(path, MASTER)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _same(KeyStore.load(path, MASTER), store)
    with pytest.raises(KeyStoreError, match="tampered or wrong master key"):
        KeyStore.load(path, OTHER_MASTER)

    rotated = rotate(path, MASTER, OTHER_MASTER)
    assert _same(rotated, store)
    assert _same(KeyStore.load(path, OTHER_MASTER), store)
    with pytest.raises(KeyStoreError, match="tampered or wrong master key"):
        KeyStore.load(path, MASTER)
    # Readers that have not switched yet try the new key first and the old one after.
    assert _same(KeyStore.load(path, MASTER, previous=[OTHER_MASTER]), store)
    # The in-memory store of a running reader is unaffected.
    assert store.oms_key("ZRI", "40000001", 1, 22) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.sealed"]

    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="tampered or wrong master key"):
        rotate(path, MASTER, OTHER_MASTER)  # wrong old key: nothing changes
    assert path.read_bytes() == before
    with pytest.raises(KeyStoreError, match="cannot read key store"):
        KeyStore.load(tmp_path / "missing", MASTER)
    with pytest.raises(KeyStoreError, match="cannot write key store"):
        store.save(tmp_path / "no-such-dir" / "keys.sealed", MASTER)


def test_sealed_file_structure_errors() -> None:
    blob = KeyStore.import_plain(EXAMPLE).seal(MASTER)
    assert blob[:4] == b"MCKS" and blob[4] == 1
    with pytest.raises(KeyStoreError, match="bad magic or too short"):
        KeyStore.unseal(blob[:40], MASTER)
    with pytest.raises(KeyStoreError, match="bad magic"):
        KeyStore.unseal(b"PK\x03\x04" + blob[4:], MASTER)
    with pytest.raises(KeyStoreError, match="unsupported key store format version 2"):
        KeyStore.unseal(blob[:4] + b"\x02" + blob[5:], MASTER)
    # Two seals of one store differ (fresh salt and nonce) yet both open.
    again = KeyStore.import_plain(EXAMPLE).seal(MASTER)
    assert again != blob
    assert _same(KeyStore.unseal(again, MASTER), KeyStore.unseal(blob, MASTER))


@pytest.mark.parametrize("plain", [b'{"devices": ["\xff"]}', b"[" * 100_000, b"\x00\x01"])
def test_authenticated_content_not_from_this_library_is_refused(plain: bytes) -> None:
    # Sealed under the right key (so it authenticates) by something else: only its content is wrong.
    salt, nonce = bytes(range(keys_module.SALT_SIZE)), bytes(keys_module.NONCE_SIZE)
    header = keys_module.MAGIC + bytes((keys_module.FORMAT_VERSION,)) + salt + nonce
    blob = header + AESGCM(keys_module._file_key(MASTER, salt)).encrypt(nonce, plain, header)
    with pytest.raises(KeyStoreError, match="not valid JSON"):
        KeyStore.unseal(blob, MASTER)


_hex16 = st.binary(min_size=16, max_size=16)


@st.composite
def stores(draw: st.DrawFn) -> KeyStore:
    store = KeyStore()
    for meter in draw(st.lists(st.integers(0, 0xFFFFFFFF), unique=True, max_size=5)):
        store.add_oms_key(
            draw(st.sampled_from(["ZRI", "ELS", "QDS", "KAM"])),
            meter,
            draw(_hex16),
            version=draw(st.none() | st.integers(0, 255)),
            device_type=draw(st.none() | st.integers(0, 255)),
        )
    for eui in draw(st.lists(st.integers(0, 2**64 - 1), unique=True, max_size=3)):
        store.add_app_key(eui, draw(_hex16))
    for addr in draw(st.lists(st.integers(0, 2**32 - 1), unique=True, max_size=3)):
        store.add_session_keys(addr, draw(_hex16), draw(_hex16))
    return store


@given(stores())
def test_seal_unseal_round_trip(store: KeyStore) -> None:
    again = KeyStore.unseal(store.seal(MASTER), MASTER)
    assert _same(again, store)
    assert repr(again) == repr(store)


@given(stores(), st.data())
def test_any_single_bit_flip_is_detected(store: KeyStore, data: st.DataObject) -> None:
    blob = bytearray(store.seal(MASTER))
    bit = data.draw(st.integers(0, 8 * len(blob) - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(KeyStoreError):
        KeyStore.unseal(bytes(blob), MASTER)


@given(stores(), st.binary(min_size=32, max_size=32))
def test_a_wrong_master_key_is_rejected(store: KeyStore, other: bytes) -> None:
    wrong = MasterKey(other)
    blob = store.seal(MASTER)
    if wrong == MASTER:
        assert _same(KeyStore.unseal(blob, wrong), store)
    else:
        with pytest.raises(KeyStoreError, match="tampered or wrong master key"):
            KeyStore.unseal(blob, wrong)


@given(stores(), st.integers(0, 200))
def test_truncated_files_are_rejected(store: KeyStore, cut: int) -> None:
    blob = store.seal(MASTER)
    with pytest.raises(KeyStoreError):
        KeyStore.unseal(blob[: max(0, len(blob) - 1 - cut)], MASTER)


def test_the_leak_check_catches_every_form() -> None:
    # Guards the leak tests above against passing vacuously.
    for hex_key in SECRETS.values():
        for form in _forms(hex_key):
            with pytest.raises(AssertionError):
                assert_no_key_in(f"prefix {form} suffix")
        with pytest.raises(AssertionError):
            assert_no_key_in_bytes(b"x" + bytes.fromhex(hex_key) + b"y")
