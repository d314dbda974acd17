"""MQTT 3.1.1 / 5.0 packets for Gito's ingest reader: what a subscriber that acknowledges after commit needs.

Only the client side of CONNECT, SUBSCRIBE, PUBLISH (QoS 0 and 1), PUBACK, PINGREQ and DISCONNECT: Gito's
consumer never publishes and subscribes at QoS 1 at most, so the broker never sends QoS 2. Parsing works on a
buffer holding many packets at once and returns them in bulk; that is where the reader gains over general
clients (see docs/ARCHITECTURE.md, "Why a reader of our own").
"""

from __future__ import annotations

from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14
PINGREQ_PACKET = b'\xc0\x00'
DISCONNECT_PACKET = b'\xe0\x00'
PUBACK_HEADER = b'\x40\x02'
SESSION_EXPIRY_INTERVAL, RECEIVE_MAXIMUM = 0x11, 0x21


class ProtocolError(Exception):
    """The broker sent something this reader cannot accept; the connection is dropped and made again."""


@dataclass(frozen=True)
class ConnectOptions:
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    mqtt5: bool = True
    clean_start: bool = False
    session_expiry_s: int = 86_400  # MQTT 5 only: how long the broker keeps the session (and its queue)
    receive_maximum: int = 20_000  # MQTT 5 only: unacknowledged QoS 1 messages the broker may have in flight


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data: bytes | bytearray, cursor: int, end: int) -> tuple[int, int]:
    """A variable byte integer at `cursor`: (value, the position after it)."""
    value, shift = 0, 0
    while cursor < end:
        byte = data[cursor]
        cursor += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, cursor
        shift += 7
    raise ProtocolError('truncated variable byte integer')


def utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, 'big') + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + varint(len(body)) + body


def connect_packet(options: ConnectOptions) -> bytes:
    flags = 0x02 if options.clean_start else 0x00
    payload = utf8(options.client_id)
    if options.username is not None:
        flags |= 0x80
        payload += utf8(options.username)
        if options.password is not None:
            flags |= 0x40
            payload += utf8(options.password)
    header = utf8('MQTT') + bytes([5 if options.mqtt5 else 4, flags]) + options.keepalive_s.to_bytes(2, 'big')
    if options.mqtt5:
        properties = (bytes([SESSION_EXPIRY_INTERVAL]) + options.session_expiry_s.to_bytes(4, 'big')
                      + bytes([RECEIVE_MAXIMUM]) + min(65_535, max(1, options.receive_maximum)).to_bytes(2, 'big'))
        header += varint(len(properties)) + properties
    return _packet(CONNECT << 4, header + payload)


def subscribe_packet(packet_id: int, filters: list[str], *, qos: int, mqtt5: bool) -> bytes:
    body = packet_id.to_bytes(2, 'big') + (b'\x00' if mqtt5 else b'')
    for topic_filter in filters:
        body += utf8(topic_filter) + bytes([qos])
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def puback_packets(packet_ids: list[bytes]) -> bytes:
    """PUBACKs for many messages in one write; ids are the two raw bytes each PUBLISH carried."""
    return PUBACK_HEADER + PUBACK_HEADER.join(packet_ids) if packet_ids else b''


@dataclass(frozen=True)
class Connack:
    session_present: bool
    reason: int


@dataclass(frozen=True)
class Suback:
    packet_id: int
    reasons: bytes


Publish = tuple[bytes, bytes, bytes | None]  # topic, payload, packet id (None for QoS 0)


class PacketReader:
    """Incremental parser: feed bytes as they arrive, get whole PUBLISH packets in bulk and the rest one by one."""

    def __init__(self, *, mqtt5: bool, max_packet_bytes: int = 16 * 1024 * 1024) -> None:
        self._mqtt5 = mqtt5
        self._max = max_packet_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> tuple[list[Publish], list[tuple[int, bytes]]]:
        """Parse every complete packet; returns (publishes, other packets as (type, body))."""
        buffer = self._buffer
        buffer += data
        publishes: list[Publish] = []
        others: list[tuple[int, bytes]] = []
        view = memoryview(buffer)
        try:
            position = self._parse(buffer, view, publishes, others)
        finally:
            view.release()
        if position:
            del buffer[:position]
        return publishes, others

    def _parse(self, buffer: bytearray, view: memoryview, publishes: list[Publish],
               others: list[tuple[int, bytes]]) -> int:
        """Parse from the start of `buffer`; returns where the first incomplete packet begins."""
        mqtt5 = self._mqtt5
        end = len(buffer)
        position = 0
        while end - position >= 2:
            first = buffer[position]
            length, multiplier, index, complete = 0, 1, position + 1, False
            while index < end:
                byte = buffer[index]
                index += 1
                length += (byte & 0x7F) * multiplier
                if byte < 0x80:
                    complete = True
                    break
                multiplier *= 128
                if multiplier > 128**3:
                    raise ProtocolError('malformed remaining length')
            if not complete:
                break
            if length > self._max:
                raise ProtocolError(f'packet of {length} bytes exceeds the {self._max}-byte limit')
            if index + length > end:
                break  # wait for the rest of the packet
            body_end = index + length
            kind = first >> 4
            if kind == PUBLISH:
                topic_length = (buffer[index] << 8) | buffer[index + 1]
                cursor = index + 2 + topic_length
                topic = bytes(view[index + 2:cursor])
                packet_id = None
                if first & 0x06:
                    packet_id = bytes(view[cursor:cursor + 2])
                    cursor += 2
                if mqtt5:
                    properties, cursor = read_varint(buffer, cursor, body_end)
                    cursor += properties
                if cursor > body_end:
                    raise ProtocolError('malformed PUBLISH')
                publishes.append((topic, bytes(view[cursor:body_end]), packet_id))
            else:
                others.append((kind, bytes(view[index:body_end])))
            position = body_end
        return position


def parse_connack(body: bytes) -> Connack:
    if len(body) < 2:
        raise ProtocolError('short CONNACK')
    return Connack(session_present=bool(body[0] & 0x01), reason=body[1])


def parse_suback(body: bytes, *, mqtt5: bool) -> Suback:
    if len(body) < 3:
        raise ProtocolError('short SUBACK')
    cursor = 2
    if mqtt5:
        length, cursor = read_varint(body, cursor, len(body))
        cursor += length
    return Suback(packet_id=int.from_bytes(body[:2], 'big'), reasons=body[cursor:])
