"""The asyncio UDP gateway server against real datagrams on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import cast

import pytest

from minolcore.adapters import semtech
from minolcore.adapters.semtech import PullResp, Txpk
from minolcore.adapters.udp import UdpServer, serve_udp
from minolcore.errors import InputError
from minolcore.reception import Radio, Reception

EUI_BYTES = bytes.fromhex("AA555A0000000000")
TIMEOUT = 2.0  # seconds; loopback answers in well under a millisecond


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data)

    async def reply(self) -> bytes:
        return await asyncio.wait_for(self.replies.get(), TIMEOUT)


def push_data(token: bytes, frames: list[bytes], stat: int = 1) -> bytes:
    rxpk = [
        {
            "time": "2026-01-01T12:00:00.000000Z",
            "tmst": 1000,
            "chan": 0,
            "rfch": 0,
            "freq": 868.1,
            "stat": stat,
            "modu": "LORA",
            "datr": "SF7BW125",
            "codr": "4/5",
            "rssi": -60,
            "lsnr": 7.5,
            "size": len(frame),
            "data": base64.b64encode(frame).decode(),
        }
        for frame in frames
    ]
    return b"\x02" + token + b"\x00" + EUI_BYTES + json.dumps({"rxpk": rxpk}).encode()


Scenario = Callable[[UdpServer, Client, list[list[Reception]]], Awaitable[None]]


def run(scenario: Scenario) -> None:
    async def main() -> None:
        delivered: list[list[Reception]] = []
        server = await serve_udp(on_receptions=delivered.append, clock=lambda: 42.0)
        try:
            loop = asyncio.get_running_loop()
            transport, client = await loop.create_datagram_endpoint(
                Client, remote_addr=("127.0.0.1", server.port)
            )
            try:
                await scenario(server, client, delivered)
            finally:
                transport.close()
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(main(), 10 * TIMEOUT))


def test_push_data_acked_and_delivered() -> None:
    async def scenario(server: UdpServer, client: Client, delivered: list[list[Reception]]) -> None:
        assert server.address[0] == "127.0.0.1"
        assert server.port > 0
        client.send(push_data(b"\x12\x34", [b"\x40\x01\x02", b"\x40\x03"]))
        assert await client.reply() == b"\x02\x12\x34\x01"
        assert len(delivered) == 1
        assert [r.payload for r in delivered[0]] == [b"\x40\x01\x02", b"\x40\x03"]
        assert all(r.radio is Radio.LORAWAN and r.gateway_id == "AA555A0000000000" for r in delivered[0])
        assert delivered[0][0].received_at == 1_767_268_800.0
        stats = server.stats()
        assert (stats.datagrams, stats.push_data, stats.rxpk_ok) == (1, 1, 2)

    run(scenario)


def test_crc_failed_only_push_is_acked_but_not_delivered() -> None:
    async def scenario(server: UdpServer, client: Client, delivered: list[list[Reception]]) -> None:
        client.send(push_data(b"\x00\x01", [b"\xff"], stat=-1))
        assert await client.reply() == b"\x02\x00\x01\x01"
        assert delivered == []
        assert server.stats().crc_failed == 1

    run(scenario)


def test_pull_data_acked_and_downlink_routed() -> None:
    async def scenario(server: UdpServer, client: Client, delivered: list[list[Reception]]) -> None:
        client.send(b"\x02\xab\xcd\x02" + EUI_BYTES)
        assert await client.reply() == b"\x02\xab\xcd\x04"
        assert "AA555A0000000000" in server.gateways()
        txpk = Txpk(imme=True, freq=869.525, data=b"\x60\x01")
        token = server.send_downlink("aa555a0000000000", txpk, token=0x0707)
        assert token == 0x0707
        assert semtech.parse_datagram(await client.reply()) == PullResp(token=0x0707, txpk=txpk)
        client.send(semtech.tx_ack(0x0707, "AA555A0000000000"))
        client.send(b"\x02\x00\x02\x02" + EUI_BYTES)
        assert await client.reply() == b"\x02\x00\x02\x04"
        assert server.stats().tx_ack == 1
        with pytest.raises(InputError):
            server.send_downlink("0000000000000001", txpk)

    run(scenario)


def test_malformed_datagrams_counted_and_server_keeps_answering(caplog: pytest.LogCaptureFixture) -> None:
    malformed = {
        "bad_json": b"\x02\x00\x09\x00" + EUI_BYTES + b"{not json",
        "bad_version": b"\x01\x00\x09\x00" + EUI_BYTES + b"{}",
        "too_short": b"\x02\x00",
        "unknown_identifier": b"\x02\x00\x09\x7f" + EUI_BYTES,
    }

    async def scenario(server: UdpServer, client: Client, delivered: list[list[Reception]]) -> None:
        for datagram in malformed.values():
            client.send(datagram)
        client.send(push_data(b"\x55\x66", [b"\x40"]))
        # Loopback keeps order, so the first reply must be the ack of the valid datagram.
        assert await client.reply() == b"\x02\x55\x66\x01"
        assert client.replies.empty()
        assert len(delivered) == 1
        stats = server.stats()
        assert stats.malformed == dict.fromkeys(malformed, 1)
        assert stats.datagrams == len(malformed) + 1
        client.send(b"\x02\x00\x03\x02" + EUI_BYTES)
        assert await client.reply() == b"\x02\x00\x03\x04"

    with caplog.at_level(logging.DEBUG, logger="minolcore.adapters.udp"):
        run(scenario)
    per_packet = [r for r in caplog.records if "dropped datagram" in r.getMessage()]
    assert len(per_packet) == len(malformed)
    assert all(r.levelno == logging.DEBUG for r in per_packet)


def test_failing_callback_does_not_stop_server() -> None:
    async def main() -> None:
        def explode(receptions: list[Reception]) -> None:
            raise RuntimeError("application bug")

        loop = asyncio.get_running_loop()
        async with await serve_udp(on_receptions=explode) as server:
            transport, client = await loop.create_datagram_endpoint(
                Client, remote_addr=("127.0.0.1", server.port)
            )
            try:
                client.send(push_data(b"\x00\x01", [b"\x40"]))
                assert await client.reply() == b"\x02\x00\x01\x01"
                client.send(push_data(b"\x00\x02", [b"\x40"]))
                assert await client.reply() == b"\x02\x00\x02\x01"
                assert server.callback_errors == 2
            finally:
                transport.close()

    asyncio.run(asyncio.wait_for(main(), 10 * TIMEOUT))


def test_close_releases_port() -> None:
    async def main() -> None:
        server = await serve_udp(on_receptions=lambda receptions: None)
        port = server.port
        await server.close()
        again = await serve_udp(port=port, on_receptions=lambda receptions: None)
        assert again.port == port
        await again.close()

    asyncio.run(asyncio.wait_for(main(), 10 * TIMEOUT))
