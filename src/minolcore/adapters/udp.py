"""An asyncio UDP server speaking the Semtech packet-forwarder protocol to gateways.

All protocol rules live in :class:`minolcore.adapters.semtech.GatewayIngest`; this module only
moves datagrams between the socket and that object, remembers where each gateway's downlink
route is (the address of its last PULL_DATA), and hands receptions to a callback.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import cast

from minolcore.adapters.semtech import GatewayIngest, IngestStats, PullData, Txpk, pull_resp
from minolcore.errors import InputError
from minolcore.reception import Reception

__all__ = ["UdpServer", "serve_udp"]

log = logging.getLogger(__name__)

Address = tuple[str, int]


class _GatewayProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: UdpServer) -> None:
        self._server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Selector transports in 3.11 do not subclass DatagramTransport, though they implement it.
        self._server._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._server._handle(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (e.g. a gateway that went away) arrive here; they must not stop the server.
        self._server.socket_errors += 1
        log.debug("socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._server._closed.done():
            self._server._closed.set_result(None)


class UdpServer:
    """A running gateway server; create it with :func:`serve_udp` and stop it with :meth:`close`."""

    def __init__(
        self,
        on_receptions: Callable[[list[Reception]], None],
        clock: Callable[[], float],
    ) -> None:
        self.ingest = GatewayIngest()
        self.callback_errors = 0
        self.socket_errors = 0
        self._on_receptions = on_receptions
        self._clock = clock
        self._routes: dict[str, Address] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __repr__(self) -> str:
        return f"UdpServer(address={self.address!r}, datagrams={self.ingest.datagrams})"

    @property
    def address(self) -> Address:
        """The bound (host, port)."""
        if self._transport is None:
            raise RuntimeError("server is not bound")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        """The bound UDP port (useful when serving on port 0)."""
        return self.address[1]

    def stats(self) -> IngestStats:
        """Protocol counters (datagrams, packets, malformed per reason)."""
        return self.ingest.stats()

    def gateways(self) -> dict[str, Address]:
        """Gateway EUI -> address of its last PULL_DATA, i.e. where downlinks for it go."""
        return dict(self._routes)

    def send_downlink(self, gateway_eui: str, txpk: Txpk, *, token: int | None = None) -> int:
        """Send a PULL_RESP to a gateway that has sent PULL_DATA; returns the 16-bit token used.

        The gateway answers with a TX_ACK carrying the same token (counted in :meth:`stats`).
        """
        route = self._routes.get(gateway_eui.upper())
        if route is None:
            raise InputError(f"gateway {gateway_eui} has no downlink route (no PULL_DATA seen)")
        if self._transport is None or self._transport.is_closing():
            raise RuntimeError("server is closed")
        if token is None:
            token = secrets.randbits(16)
        self._transport.sendto(pull_resp(token, txpk), route)
        return token

    def _handle(self, data: bytes, addr: Address) -> None:
        outcome = self.ingest.receive(data, received_at=self._clock())
        if outcome.reply and self._transport is not None:
            self._transport.sendto(outcome.reply, addr)
        if outcome.rejected is not None:
            log.debug("dropped datagram from %s: %s (%s)", addr, outcome.rejected, outcome.detail)
            return
        if isinstance(outcome.event, PullData):
            self._routes[outcome.event.gateway_eui] = addr
        if outcome.receptions:
            try:
                self._on_receptions(list(outcome.receptions))
            except Exception:
                # The callback is the application's; its failure must not take the gateway link down.
                self.callback_errors += 1
                log.exception("on_receptions callback failed")

    async def close(self, timeout: float = 5.0) -> None:
        """Stop receiving and release the socket; waits at most ``timeout`` seconds."""
        if self._transport is not None:
            self._transport.close()
        await asyncio.wait_for(asyncio.shield(self._closed), timeout)

    async def __aenter__(self) -> UdpServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_udp(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_receptions: Callable[[list[Reception]], None],
    clock: Callable[[], float] = time.time,
) -> UdpServer:
    """Bind a UDP socket and serve gateways until :meth:`UdpServer.close`.

    PUSH_DATA is answered with PUSH_ACK and its receptions passed to ``on_receptions`` (called
    on the event loop; keep it short). PULL_DATA is answered with PULL_ACK. Malformed datagrams
    are counted and dropped. ``port`` 0 picks a free port; ``clock`` returns Unix seconds and
    stamps receptions whose gateway sent no time.
    """
    loop = asyncio.get_running_loop()
    server = UdpServer(on_receptions, clock)
    await loop.create_datagram_endpoint(lambda: _GatewayProtocol(server), local_addr=(host, port))
    log.info("serving Semtech UDP on %s:%d", *server.address)
    return server
