"""LoRaWAN over-the-air activation in the network stage and the pipeline: a JoinRequest heard
by several gateways is answered once, its device's session admits its uplinks, a rejoin ends
the session before it, and the sessions survive a snapshot without any key in it."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minolcore.adapters.semtech import JOIN_ACCEPT_DELAY1_US, join_accept_txpk
from minolcore.errors import ConfigError, InputError
from minolcore.keys import KeyStore
from minolcore.lorawan import (
    JoinServer,
    Session,
    build_data_frame,
    build_join_request,
    decrypt_join_accept,
    session_from_join_accept,
)
from minolcore.network import (
    JoinAcceptance,
    NetworkServer,
    Outcome,
    RejectReason,
    decode_state,
    encode_state,
)
from minolcore.pipeline import Pipeline
from minolcore.reception import Radio, Reception
from minolcore.site import LoRaWANAddress, SiteRegistry
from minolcore.store import SQLiteStore
from tests.record_encoder import encode_bcd

APP_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
OTHER_KEY = bytes(range(16))
DEV_EUI = "70B3D57ED00000DC"
JOIN_EUI = "70B3D57ED0000000"
ABP_ADDR = "26011BDA"
NET_ID = 0x000013
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC).timestamp()
GATEWAYS = ("GW-1", "GW-2", "GW-3")


def join_request(dev_nonce: int, *, app_key: bytes = APP_KEY, dev_eui: str = DEV_EUI) -> bytes:
    return build_join_request(join_eui=JOIN_EUI, dev_eui=dev_eui, dev_nonce=dev_nonce, app_key=app_key)


def heard(phy: bytes, at: float, gateways: tuple[str, ...] = GATEWAYS) -> list[Reception]:
    """``phy`` as each gateway hands it over, the last one hearing it best."""
    return [
        Reception(
            gateway_id=gateway,
            received_at=at + 0.01 * n,
            payload=phy,
            radio=Radio.LORAWAN,
            rssi=-110.0 + 10 * n,
            snr=5.0,
            frequency=868.1,
            mode="SF9BW125",
            tmst=1_000_000 * (n + 1),
        )
        for n, gateway in enumerate(gateways)
    ]


def device_session(acceptance: JoinAcceptance, dev_nonce: int) -> Session:
    """The session the device derives from the JoinAccept it received."""
    accept = decrypt_join_accept(acceptance.join_accept, APP_KEY)
    return session_from_join_accept(accept, app_key=APP_KEY, dev_nonce=dev_nonce)


def uplink(session: Session, fcnt: int, payload: bytes = b"\x01\x02", fport: int = 2) -> bytes:
    return build_data_frame(
        dev_addr=session.dev_addr,
        fcnt=fcnt,
        nwk_s_key=session.nwk_s_key,
        app_s_key=session.app_s_key,
        fport=fport,
        payload=payload,
    )


def server(**overrides: object) -> NetworkServer:
    return NetworkServer(**_config(**overrides))  # type: ignore[arg-type]


def joined(network: NetworkServer, dev_nonce: int, at: float = T0) -> tuple[JoinAcceptance, Session]:
    batch = network.feed(heard(join_request(dev_nonce), at))
    (acceptance,) = batch.joins
    return acceptance, device_session(acceptance, dev_nonce)


# -- the network stage ------------------------------------------------------------------------


def test_a_join_heard_by_three_gateways_is_answered_once_through_the_best() -> None:
    network = server()
    batch = network.feed(heard(join_request(0x1234), T0))
    assert batch.uplinks == () and batch.rejected == ()
    (acceptance,) = batch.joins
    assert acceptance.dev_eui == DEV_EUI
    assert (acceptance.gateway_id, acceptance.rssi, acceptance.tmst) == ("GW-3", -90.0, 3_000_000)
    # The device opens the JoinAccept with its AppKey and finds the DevAddr the server gave it.
    accept = decrypt_join_accept(acceptance.join_accept, APP_KEY)
    assert (accept.dev_addr, accept.net_id) == (acceptance.dev_addr, NET_ID)
    assert network.dev_eui_of(acceptance.dev_addr) == DEV_EUI
    stats = network.stats()
    assert (stats.joins, stats.join_copies, stats.uplinks, stats.received) == (1, 2, 0, 3)
    assert stats.gateways["GW-1"].joins == 1 and stats.gateways["GW-3"].join_copies == 1


def test_the_joined_session_admits_the_devices_uplinks() -> None:
    network = server()
    acceptance, session = joined(network, 7)
    batch = network.feed(heard(uplink(session, 1, b"\xaa\xbb"), T0 + 60))
    (up,) = batch.uplinks
    assert up.device == acceptance.dev_addr and up.lorawan is not None
    assert (up.lorawan.fcnt, up.lorawan.payload, up.lorawan.mic_valid) == (1, b"\xaa\xbb", True)
    assert len(up.receptions) == 3


def test_late_copies_of_a_join_are_its_copies_not_a_replay() -> None:
    network = server()
    request = join_request(9)
    first = network.feed(heard(request, T0, ("GW-1",)))
    assert len(first.joins) == 1
    late = network.feed(heard(request, T0 + 0.5, ("GW-2", "GW-3")))
    assert late.joins == () and late.rejected == () and late.uplinks == ()
    assert network.stats().join_copies == 2


def test_refused_joins_are_rejected_for_their_reason() -> None:
    network = server()
    batch = network.feed(
        [
            *heard(join_request(1, app_key=OTHER_KEY), T0, ("GW-1", "GW-2")),  # forged: bad MIC
            *heard(join_request(2, dev_eui="0102030405060708"), T0, ("GW-1",)),  # not registered
        ]
    )
    assert batch.joins == ()
    assert [r.reason for r in batch.rejected] == [
        RejectReason.BAD_MIC,
        RejectReason.BAD_MIC,
        RejectReason.UNKNOWN_DEVICE,
    ]
    # The forged request burnt no nonce: the genuine one with it joins.
    assert len(network.feed(heard(join_request(1), T0 + 10)).joins) == 1
    # A DevNonce used before, sent again after the dedupe window, is a replay.
    again = network.feed(heard(join_request(1), T0 + 3600, ("GW-2",)))
    assert again.joins == () and [r.reason for r in again.rejected] == [RejectReason.REPLAY]


def test_without_a_join_server_a_join_request_is_an_unknown_device() -> None:
    network = server(join_server=None)
    batch = network.feed(heard(join_request(1), T0, ("GW-1",)))
    assert batch.joins == () and [r.reason for r in batch.rejected] == [RejectReason.UNKNOWN_DEVICE]


def test_a_rejoin_ends_the_session_before_it() -> None:
    network = server()
    first, old = joined(network, 1)
    network.feed(heard(uplink(old, 1), T0 + 10))
    second, new = joined(network, 2, T0 + 100)
    assert second.dev_addr != first.dev_addr
    refused = network.feed(heard(uplink(old, 2), T0 + 200, ("GW-1",)))
    assert [r.reason for r in refused.rejected] == [RejectReason.UNKNOWN_DEVICE]
    # The new session counts frames from scratch, and both addresses still name the device.
    assert len(network.feed(heard(uplink(new, 0), T0 + 210)).uplinks) == 1
    assert network.dev_eui_of(first.dev_addr) == network.dev_eui_of(second.dev_addr) == DEV_EUI


def test_a_snapshot_keeps_the_sessions_and_no_key() -> None:
    network = server()
    acceptance, session = joined(network, 5)
    network.feed(heard(uplink(session, 3), T0 + 10))
    data = encode_state(network.snapshot())
    for key in (APP_KEY, session.nwk_s_key.reveal(), session.app_s_key.reveal()):
        assert key.hex().encode() not in data.lower() and key not in data
    restored = NetworkServer.restore(
        decode_state(data),
        gateways=GATEWAYS,
        join_server=JoinServer(net_id=NET_ID, app_keys={DEV_EUI: APP_KEY}),
        fingerprint_key=bytes(16),
    )
    assert restored.dev_eui_of(acceptance.dev_addr) == DEV_EUI
    assert len(restored.feed(heard(uplink(session, 4), T0 + 20)).uplinks) == 1
    replayed = restored.feed(heard(uplink(session, 3), T0 + 3600, ("GW-1",)))
    assert [r.reason for r in replayed.rejected] == [RejectReason.REPLAY]
    nonce_again = restored.feed(heard(join_request(5), T0 + 7200, ("GW-1",)))
    assert [r.reason for r in nonce_again.rejected] == [RejectReason.REPLAY]
    assert restored.stats().joins == 1


def test_a_snapshot_with_joins_restores_without_sessions_it_cannot_rebuild(
    caplog: pytest.LogCaptureFixture,
) -> None:
    network = server()
    joined(network, 5)
    state = network.snapshot()
    with caplog.at_level(logging.WARNING):
        bare = NetworkServer.restore(state, gateways=GATEWAYS, fingerprint_key=bytes(16))
    assert "their sessions end" in caplog.text
    assert bare.dev_eui_of(state.joined[0].dev_addr) is None
    # A device whose AppKey is gone loses its session, and says so.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        restored = NetworkServer.restore(
            state,
            gateways=GATEWAYS,
            join_server=JoinServer(net_id=NET_ID, app_keys={"0102030405060708": APP_KEY}),
            fingerprint_key=bytes(16),
        )
    assert "has no AppKey now" in caplog.text
    assert restored.dev_eui_of(state.joined[0].dev_addr) is None


def test_a_rejoin_in_the_batch_of_old_session_uplinks_takes_them_in_time_order() -> None:
    network = server()
    _, old = joined(network, 1)
    request = join_request(2)
    batch = network.feed(
        [
            *heard(request, T0 + 100, ("GW-1",)),
            *heard(uplink(old, 1), T0 + 90, ("GW-2",)),  # before the rejoin: its session's
            *heard(uplink(old, 2), T0 + 110, ("GW-3",)),  # after it: that session has ended
        ]
    )
    assert len(batch.joins) == 1 and len(batch.uplinks) == 1 and batch.uplinks[0].counter == 1
    assert [(r.index, r.reason) for r in batch.rejected] == [(2, RejectReason.UNKNOWN_DEVICE)]


def test_a_join_and_the_uplinks_after_it_in_one_batch() -> None:
    """A log holds a device's JoinRequest and its first uplinks side by side."""
    network = server()
    first = server()  # the same exchange, answered alone, gives the device its session
    (acceptance,) = first.feed(heard(join_request(3), T0, ("GW-1",))).joins
    session = device_session(acceptance, 3)
    uplinks = [
        *heard(uplink(session, 2), T0 + 120, ("GW-1",)),
        *heard(uplink(session, 1), T0 + 60, ("GW-2",)),
    ]
    batch = network.feed([*uplinks, *heard(join_request(3), T0, ("GW-1",))])
    assert batch.rejected == () and len(batch.joins) == 1
    assert sorted(u.counter for u in batch.uplinks) == [1, 2]


def test_an_older_join_request_heard_late_keeps_the_newer_session() -> None:
    network = server()
    batch = network.feed(
        [*heard(join_request(6), T0 + 10, ("GW-1",)), *heard(join_request(5), T0, ("GW-2",))]
    )
    # In time order: nonce 5 joins, then nonce 6 joins again and holds the session.
    first, second = batch.joins
    assert decrypt_join_accept(first.join_accept, APP_KEY).app_nonce == 1
    session = device_session(second, 6)
    late = network.feed(heard(join_request(4), T0 + 5, ("GW-3",)))  # older than the session
    assert late.joins == () and [r.reason for r in late.rejected] == [RejectReason.REPLAY]
    assert len(network.feed(heard(uplink(session, 1), T0 + 60)).uplinks) == 1


def test_a_join_never_takes_an_abp_devices_address() -> None:
    abp = Session(ABP_ADDR, OTHER_KEY, OTHER_KEY)
    taken = JoinServer(net_id=0, app_keys={DEV_EUI: APP_KEY}, dev_addr_allocator=lambda eui: ABP_ADDR)
    network = server(lorawan_devices=[abp], join_server=taken)
    refused = network.feed(heard(join_request(1), T0, ("GW-1",)))
    assert refused.joins == () and [r.reason for r in refused.rejected] == [RejectReason.UNKNOWN_DEVICE]
    assert len(network.feed(heard(uplink(abp, 1), T0 + 10)).uplinks) == 1
    # The counter of the join server passes over the ABP address.
    counted = JoinServer(net_id=0x13, app_keys={DEV_EUI: APP_KEY})
    first_address = counted.handle_join_request(join_request(1)).dev_addr
    again = JoinServer(net_id=0x13, app_keys={DEV_EUI: APP_KEY})
    network = server(lorawan_devices=[Session(first_address, OTHER_KEY, OTHER_KEY)], join_server=again)
    (acceptance,) = network.feed(heard(join_request(1), T0)).joins
    assert acceptance.dev_addr != first_address


@pytest.mark.parametrize(
    "change",
    [
        {"join_server": {"next_nwk_addr": -5}},
        {"join_server": {"next_nwk_addr": 2**40}},
        {"join_server": {"last_app_nonce": -1}},
        {"join_server": {"used_dev_nonces": {"not an eui": [1]}}},
        {"join_server": {"used_dev_nonces": {DEV_EUI: [70_000]}}},
        {"joined_uplinks": {2: 5}},
        {"version": 1},
        {
            "joined": [
                {"dev_eui": DEV_EUI, "dev_addr": "zz", "dev_nonce": 1, "app_nonce": 1, "joined_at_ms": 0}
            ]
        },
        {
            "joined": [
                {
                    "dev_eui": DEV_EUI,
                    "dev_addr": "26000001",
                    "dev_nonce": 1,
                    "app_nonce": 2**30,
                    "joined_at_ms": 0,
                }
            ]
        },
    ],
)
def test_a_crafted_state_is_a_config_error(change: dict[str, object]) -> None:
    network = server()
    joined(network, 5)
    state = msgspec.to_builtins(network.snapshot())
    for field, value in change.items():
        if isinstance(value, dict) and isinstance(state[field], dict):
            state[field].update(value)
        else:
            state[field] = value
    with pytest.raises(ConfigError):
        NetworkServer.restore(decode_state(msgspec.json.encode(state)), **_config())


def test_two_sessions_on_one_address_in_a_state_are_a_config_error() -> None:
    network = server()
    joined(network, 5)
    state = network.snapshot()
    other = msgspec.structs.replace(state.joined[0], dev_eui="0102030405060708")
    crafted = msgspec.structs.replace(state, joined=(*state.joined, other))
    keys = {DEV_EUI: APP_KEY, "0102030405060708": APP_KEY}
    with pytest.raises(ConfigError, match="DevAddr"):
        NetworkServer.restore(crafted, **_config(join_server=JoinServer(net_id=NET_ID, app_keys=keys)))


def test_a_devaddr_that_is_none_is_an_input_error() -> None:
    with pytest.raises(InputError):
        server().dev_eui_of("zz")


def _config(**overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "gateways": GATEWAYS,
        "join_server": JoinServer(net_id=NET_ID, app_keys={DEV_EUI: APP_KEY}),
        "fingerprint_key": bytes(16),
    }
    config.update(overrides)
    return config


def test_the_join_server_skips_reserved_addresses() -> None:
    join_server = JoinServer(net_id=0, app_keys={DEV_EUI: APP_KEY}, reserved_dev_addrs=["00000001", 2])
    result = join_server.handle_join_request(join_request(1))
    assert result.dev_addr == "00000003"


def test_a_join_accept_is_timed_for_rx1() -> None:
    network = server()
    acceptance, _ = joined(network, 3)
    txpk = join_accept_txpk(acceptance)
    assert txpk.tmst == 3_000_000 + JOIN_ACCEPT_DELAY1_US and txpk.freq == 868.1
    assert (txpk.datr, txpk.ipol, txpk.data) == ("SF9BW125", True, acceptance.join_accept)
    wrapped = msgspec.structs.replace(acceptance, tmst=2**32 - 1)
    assert join_accept_txpk(wrapped).tmst == JOIN_ACCEPT_DELAY1_US - 1
    for unanswerable in ({"tmst": None}, {"frequency": None}, {"mode": "SFfoo"}, {"mode": "FSK٥٠"}):
        with pytest.raises(InputError):
            join_accept_txpk(msgspec.structs.replace(acceptance, **unanswerable))
    fsk = join_accept_txpk(msgspec.structs.replace(acceptance, mode="FSK50000"))
    assert (fsk.modu, fsk.datr, fsk.fdev, fsk.ipol) == ("FSK", 50_000, 25_000, None)


@given(st.lists(st.binary(min_size=0, max_size=40), max_size=8), st.integers(0, 0xFFFF))
def test_any_bytes_get_an_outcome_never_an_error(payloads: list[bytes], nonce: int) -> None:
    network = server()
    receptions = [
        Reception(gateway_id="GW-1", received_at=T0 + i, payload=b"\x00" + p[:22], radio=Radio.LORAWAN)
        for i, p in enumerate(payloads)
    ]
    receptions.append(heard(join_request(nonce), T0 + 100, ("GW-2",))[0])
    grouped = network.feed_grouped(receptions)
    assert len(grouped.joins) == 1
    stats = network.stats()
    assert stats.received == len(receptions) == stats.joins + stats.join_copies + sum(stats.rejected.values())


def test_outcome_codes_of_joins_follow_the_reject_codes() -> None:
    assert Outcome.JOINED > Outcome.BAD_TIME and Outcome.JOIN_COPY == Outcome.JOINED + 1


# -- the pipeline -------------------------------------------------------------------------------


def otaa_site() -> tuple[SiteRegistry, KeyStore]:
    site = SiteRegistry(timezone="UTC")
    for gateway in GATEWAYS:
        site.add_gateway(gateway)
    site.add_building("B1", "Test street 1")
    site.add_unit("B1-01", "B1", "left", 60.0)
    site.install(LoRaWANAddress.of(dev_eui=DEV_EUI), dt.date(2026, 1, 1), kind="water_meter", unit="B1-01")
    keys = KeyStore()
    keys.add_app_key(DEV_EUI, APP_KEY)
    return site, keys


def water_payload(litres: int) -> bytes:
    """EN 13757-3 records: the volume in litres (8-digit BCD)."""
    return b"\x0c\x13" + encode_bcd(litres, 8)


@pytest.mark.parametrize("models", [True, False], ids=["objects", "columns"])
def test_the_pipeline_joins_a_device_and_stores_its_readings(tmp_path: object, models: bool) -> None:
    site, keys = otaa_site()
    answered: list[JoinAcceptance] = []
    db = f"{tmp_path}/otaa.sqlite"
    with SQLiteStore(db) as store:
        pipeline = Pipeline(
            site=site,
            keys=keys,
            store=store,
            gateways=GATEWAYS,
            on_join=answered.append,
            lorawan_net_id=NET_ID,
        )
        result = pipeline.feed(heard(join_request(11), T0), models=models)
        assert result.joins == tuple(answered) and len(answered) == 1
        session = device_session(answered[0], 11)
        pipeline.feed(heard(uplink(session, 1, water_payload(12_345)), T0 + 3600), models=models)
        stats = pipeline.stats()
        assert (stats.joins, stats.uplinks, stats.decoded, stats.unassigned) == (1, 1, 1, 0)
    rows = sqlite3.connect(db).execute("SELECT device_uid, quantity, value, unit_id FROM readings").fetchall()
    assert rows == [(f"lorawan:{DEV_EUI}", "volume", 12.345, "B1-01")]


def test_a_restarted_pipeline_keeps_the_joined_session(tmp_path: object) -> None:
    site, keys = otaa_site()
    first = Pipeline(site=site, keys=keys, store=None, gateways=GATEWAYS, fingerprint_key=bytes(16))
    (acceptance,) = first.feed(heard(join_request(21), T0)).joins
    session = device_session(acceptance, 21)
    state = decode_state(encode_state(first.snapshot()))
    second = Pipeline(
        site=site, keys=keys, store=None, gateways=GATEWAYS, fingerprint_key=bytes(16), state=state
    )
    (stored,) = second.feed(heard(uplink(session, 1, water_payload(500)), T0 + 60)).uplinks
    assert stored.device_uid == f"lorawan:{DEV_EUI}"
    assert stored.assignment is not None and stored.assignment.unit is not None
    assert stored.assignment.unit.id == "B1-01"


def test_a_late_copy_of_an_old_session_uplink_is_late_after_a_rejoin() -> None:
    network = server()
    _, old = joined(network, 1)
    frame = uplink(old, 1)
    network.feed(heard(frame, T0 + 10, ("GW-1",)))
    joined(network, 2, T0 + 20)
    late = network.feed(heard(frame, T0 + 10.5, ("GW-2",)))
    assert late.rejected == () and late.uplinks == () and len(late.late_receptions) == 1
    new_frame = network.feed(heard(uplink(old, 2), T0 + 30, ("GW-1",)))
    assert [r.reason for r in new_frame.rejected] == [RejectReason.UNKNOWN_DEVICE]
