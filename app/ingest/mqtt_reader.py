"""A lean asyncio MQTT subscriber: one connection at a time, reconnecting, messages handed over in bulk.

Each `data_received` parses every complete packet in the chunk and gives the PUBLISHes to `on_messages` in one
call, together with the `Link` they arrived on. The owner acknowledges them later through that link (after its
batch commits); acknowledgements for a link that has since closed are dropped, and the broker delivers those
messages again on the next connection of the persistent session. `Link.pause()` stops reading the socket
(backpressure: the broker holds the rest), `Link.resume()` reads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import cast

from app.ingest.mqtt_wire import (
    CONNACK,
    DISCONNECT,
    DISCONNECT_PACKET,
    PINGREQ_PACKET,
    PINGRESP,
    SUBACK,
    ConnectOptions,
    PacketReader,
    ProtocolError,
    Publish,
    connect_packet,
    parse_connack,
    parse_suback,
    puback_packets,
    subscribe_packet,
)

log = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT_S = 10.0


class Refused(Exception):
    """The broker refused the connection or the subscription (bad credentials, not authorised)."""


class Link(asyncio.Protocol):
    """One TCP connection to the broker."""

    def __init__(self, *, mqtt5: bool, on_messages: Callable[[list[Publish], Link], None]) -> None:
        self._packets = PacketReader(mqtt5=mqtt5)
        self._on_messages = on_messages
        self._transport: asyncio.Transport | None = None
        self._control: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.last_received = 0.0
        self.paused = False
        self.acked = 0

    @property
    def open(self) -> bool:
        return self._transport is not None and not self.closed.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport
        sock = transport.get_extra_info('socket')
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.last_received = asyncio.get_running_loop().time()
        try:
            publishes, others = self._packets.feed(data)
        except ProtocolError as error:
            self.close(error)
            return
        for packet in others:
            if packet[0] == DISCONNECT:
                self.close(ConnectionResetError('the broker sent DISCONNECT'))
                return
            self._control.put_nowait(packet)
        if publishes:
            self._on_messages(publishes, self)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    def write(self, data: bytes) -> None:
        if self.open and self._transport is not None:
            self._transport.write(data)

    def ack(self, packet_ids: list[bytes]) -> None:
        """PUBACK these messages; a no-op once this link has closed (the broker will deliver them again)."""
        if packet_ids and self.open:
            self.write(puback_packets(packet_ids))
            self.acked += len(packet_ids)

    def pause(self) -> None:
        if not self.paused and self.open and self._transport is not None:
            self.paused = True
            self._transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.open and self._transport is not None:
            self.paused = False
            self._transport.resume_reading()

    def close(self, reason: Exception | None = None) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
        if self._transport is not None:
            self._transport.close()

    async def expect(self, kind: int) -> bytes:
        """The next control packet, which must be of `kind` (PINGRESPs are skipped)."""
        while True:
            got, body = await self._control.get()
            if got == kind:
                return body
            if got != PINGRESP:
                raise ProtocolError(f'expected packet type {kind}, got {got}')


class MqttReader:
    """Keeps one subscribed connection to the broker for as long as `run` runs."""

    def __init__(
        self, host: str, port: int, options: ConnectOptions, filters: list[str], *,
        on_messages: Callable[[list[Publish], Link], None], on_link: Callable[[bool, str], None],
        retry_s: float = 2.0,
    ) -> None:
        self.host, self.port = host, port
        self.options = options
        self._filters = filters
        self._on_messages = on_messages
        self._on_link = on_link
        self._retry_s = retry_s
        self.link: Link | None = None

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                if self.link is not None and self.link.open:
                    self.link.write(DISCONNECT_PACKET)
                    self.link.close()
                raise
            except (OSError, TimeoutError, ProtocolError, Refused) as error:
                current = asyncio.current_task()
                if current is not None and current.cancelling():  # a cancel swallowed inside: honour it
                    raise asyncio.CancelledError from error
                self._on_link(False, f'{type(error).__name__}: {error}')
                log.warning('broker unreachable', extra={
                    'host': self.host, 'port': self.port, 'error': str(error) or type(error).__name__,
                    'retry_s': self._retry_s})
            await asyncio.sleep(self._retry_s)

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        mqtt5 = self.options.mqtt5
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            _, link = await loop.create_connection(
                lambda: Link(mqtt5=mqtt5, on_messages=self._on_messages), self.host, self.port)
        self.link = link
        try:
            link.write(connect_packet(self.options))
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                connack = parse_connack(await link.expect(CONNACK))
            if connack.reason != 0:
                raise Refused(f'CONNACK reason {connack.reason:#04x}')
            link.write(subscribe_packet(1, self._filters, qos=1, mqtt5=mqtt5))
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                suback = parse_suback(await link.expect(SUBACK), mqtt5=mqtt5)
            refused = [code for code in suback.reasons if code >= 0x80]
            if refused:
                raise Refused(f'subscription refused (reason {refused[0]:#04x})')
            self._on_link(True, '')
            log.info('mqtt consumer connected', extra={
                'host': self.host, 'port': self.port, 'mqtt5': mqtt5, 'session_present': connack.session_present})
            reason = await self._keep_alive(link)
            raise ConnectionResetError(str(reason) if reason else 'connection closed by the broker')
        finally:
            link.close()

    async def _keep_alive(self, link: Link) -> Exception | None:
        """PINGREQ every half keep-alive; a broker silent for 1.5 keep-alives is taken for gone."""
        loop = asyncio.get_running_loop()
        every = max(1.0, self.options.keepalive_s / 2)
        while not link.closed.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):  # not `wait_for`: in Python 3.11 it can drop a cancellation
                    return await asyncio.shield(link.closed)
            if not link.paused and loop.time() - link.last_received > 1.5 * self.options.keepalive_s:
                link.close(TimeoutError('no packet from the broker within 1.5 keep-alive periods'))
                break
            link.write(PINGREQ_PACKET)
        return link.closed.result()
