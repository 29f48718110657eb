"""The ingest's MQTT 5 subscriber, on a plain socket: what `cim monitor run` needs and nothing else.

paho-mqtt reads a packet's header a byte at a time (a system call each) and builds a message object and
a callback per message, on one thread: that capped one ingest process at about 3,000 one-reading
messages a second, with the main thread idle. Here the reader takes whatever the socket holds (up to
256 KiB), cuts the PUBLISH packets out of it and hands them on as one list; acknowledgements of a
committed batch go out in one write. Packet layouts: MQTT 5.0, OASIS standard, 2019, sections 3.1
CONNECT, 3.2 CONNACK, 3.3 PUBLISH, 3.4 PUBACK, 3.8 SUBSCRIBE, 3.9 SUBACK, 3.12 PINGREQ, 3.14 DISCONNECT.

QoS 1 only: the ingest subscribes with QoS 1, so the broker sends QoS 0 or 1 (no PUBREC/PUBREL).
"""
from __future__ import annotations

import logging
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

log = logging.getLogger("cim.monitor")
READ = 256 * 1024
# A received message: (connection generation, packet id, qos, topic, payload, subscription identifier or 0).
Message = tuple[int, int, int, str, bytes, int]
# The properties a PUBLISH may carry (MQTT 5.0, 3.3.2.3), by identifier: their value's size in bytes,
# -1 a variable byte integer, -2 one length-prefixed string or binary, -3 two (a user property).
_PUBLISH_PROPERTIES = {0x01: 1, 0x02: 4, 0x23: 2, 0x08: -2, 0x09: -2, 0x03: -2, 0x26: -3, 0x0B: -1}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


def packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def connect_packet(client_id: str, keepalive: int, session_expiry: int, receive_maximum: int,
                   username: str | None = None, password: str | None = None, version: int = 5) -> bytes:
    flags = (0x80 if username else 0) | (0x40 if password else 0)  # clean start 0: keep the session
    props = b""
    if version == 5:
        props = b"\x11" + struct.pack("!I", session_expiry) + b"\x21" + struct.pack("!H", receive_maximum)
        props = varint(len(props)) + props
    body = string(b"MQTT") + bytes((version, flags)) + struct.pack("!H", keepalive) + props + string(client_id.encode())
    if username:
        body += string(username.encode())
    if password:
        body += string(password.encode())
    return packet(0x10, body)


def _read_varint(buf: bytes | bytearray, i: int) -> tuple[int, int] | None:
    """(value, index after it), or None when the buffer ends inside it."""
    value, shift = 0, 0
    while i < len(buf):
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 21:
            raise ConnectionError("malformed remaining length")
    return None


def split(buf: bytearray) -> tuple[list[tuple[int, bytes]], int]:
    """Whole packets (first byte, body) at the front of buf, and how many bytes they took."""
    out, i = [], 0
    while i + 1 < len(buf):
        got = _read_varint(buf, i + 1)
        if got is None:
            break
        length, start = got
        if start + length > len(buf):
            break
        out.append((buf[i], bytes(buf[start:start + length])))
        i = start + length
    return out, i


def subscription_id(props: bytes) -> int:
    """The subscription identifier among a PUBLISH's properties (MQTT 5.0, 3.3.2.3.8), 0 when none."""
    i, found = 0, 0
    while i < len(props):
        size = _PUBLISH_PROPERTIES.get(props[i])
        if size is None:
            raise ConnectionError(f"malformed PUBLISH: property 0x{props[i]:02x}")
        i += 1
        if size == -1:
            found, i = _read_varint(props, i)
        elif size > 0:
            i += size
        else:
            for _ in range(-size - 1):
                i += 2 + ((props[i] << 8) | props[i + 1])
    return found


def publish_fields(first: int, body: bytes) -> tuple[int, int, str, bytes, int]:
    """(packet id, qos, topic, payload, subscription identifier or 0) of an MQTT 5 PUBLISH body."""
    qos = (first >> 1) & 3
    n = (body[0] << 8) | body[1]
    i = 2 + n
    try:
        topic = body[2:i].decode()
    except UnicodeDecodeError:
        topic = "<not UTF-8>"
    pid = 0
    if qos:
        pid = (body[i] << 8) | body[i + 1]
        i += 2
    plen, i = _read_varint(body, i)
    return pid, qos, topic, body[i + plen:], subscription_id(body[i:i + plen]) if plen else 0


class Subscriber:
    """A persistent MQTT 5 session subscribed with QoS 1: a reader thread (re)connects, subscribes and
    passes each read's messages to `deliver`; ack() acknowledges messages of the current connection.
    With `subscription_id`, the broker marks the messages of these filters with it (not those a session
    holds under filters it subscribed to before)."""

    def __init__(self, host: str, port: int, client_id: str, filters: list[str], deliver: Callable[[list], None],
                 *, username: str | None = None, password: str | None = None, keepalive: int = 30,
                 session_expiry: int = 7 * 86400, receive_maximum: int = 65535, tls: ssl.SSLContext | None = None,
                 subscription_id: int = 0):
        self.host, self.port, self.client_id, self.filters = host, port, client_id, filters
        self.subscription_id = subscription_id
        self.tls = tls
        self.deliver, self.username, self.password = deliver, username, password
        self.keepalive, self.session_expiry, self.receive_maximum = keepalive, session_expiry, receive_maximum
        self.generation = 0
        self.subscribed = threading.Event()
        self.sock: socket.socket | None = None
        self.send_lock = threading.Lock()
        self.last_sent = time.monotonic()
        self.stopping = threading.Event()
        self.unsubscribe: list[str] = []  # filters to leave on connecting (retiring a session)
        self.thread = threading.Thread(target=self._run, name=f"mqtt-{client_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _send(self, data: bytes) -> None:
        with self.send_lock:
            if self.sock is None:
                raise ConnectionError("not connected")
            self.sock.sendall(data)
            self.last_sent = time.monotonic()

    def ack(self, msgs: list[tuple[int, int, int]]) -> None:
        """PUBACK for (generation, packet id, qos) of the current connection; others were redelivered."""
        gen = self.generation
        data = b"".join(b"\x40\x02" + struct.pack("!H", pid) for g, pid, qos in msgs if qos and g == gen)
        if data:
            try:
                self._send(data)
            except OSError as exc:  # the broker delivers them again on the next connection
                log.warning("could not acknowledge: %s", exc)

    def _handshake(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            except OSError:
                sock.close()
                raise
        sock.sendall(connect_packet(self.client_id, self.keepalive, self.session_expiry, self.receive_maximum,
                                    self.username, self.password))
        buf = bytearray()
        while (got := _read_varint(buf, 1) if len(buf) > 1 else None) is None or got[1] + got[0] > len(buf):
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("the broker closed the connection")
            buf += data
        first, body = buf[0], bytes(buf[got[1]:got[1] + got[0]])
        # what follows the CONNACK (the session's unacknowledged messages, sent again) is for the reader
        del buf[:got[1] + got[0]]
        if first >> 4 != 2 or body[1] != 0:
            raise ConnectionError(f"the broker refused the connection (reason {body[1] if len(body) > 1 else '?'})")
        if self.filters:
            subs = b"".join(string(f.encode()) + b"\x01" for f in self.filters)
            props = b"\x0b" + varint(self.subscription_id) if self.subscription_id else b""
            sock.sendall(packet(0x82, b"\x00\x01" + varint(len(props)) + props + subs))  # packet id 1, QoS 1 each
        if self.unsubscribe:
            sock.sendall(packet(0xA2, b"\x00\x02\x00" + b"".join(string(f.encode()) for f in self.unsubscribe)))
        log.info("connected to %s:%s (session present: %s)", self.host, self.port, bool(body[0] & 1))
        self._leftover = buf
        return sock

    def _run(self) -> None:
        delay = 0.2
        while not self.stopping.is_set():
            try:
                sock = self._handshake()
            except OSError as exc:
                log.warning("broker unreachable, retrying in %.1f s: %s", delay, exc)
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            self.generation += 1
            with self.send_lock:
                self.sock, self.last_sent = sock, time.monotonic()
            try:
                self._read(sock)
            except OSError as exc:
                if not self.stopping.is_set():
                    log.warning("connection to the broker lost: %s", exc)
            finally:
                with self.send_lock:
                    self.sock = None
                sock.close()

    def _read(self, sock: socket.socket) -> None:
        sock.settimeout(self.keepalive / 4)
        buf, gen = self._leftover, self.generation
        while not self.stopping.is_set():
            if time.monotonic() - self.last_sent > self.keepalive / 2:
                self._send(b"\xc0\x00")  # PINGREQ
            packets, used = split(buf)
            if used:
                del buf[:used]
            msgs = []
            for first, body in packets:
                kind = first >> 4
                if kind == 3:
                    msgs.append((gen, *publish_fields(first, body)))
                elif kind == 11:  # UNSUBACK
                    self.subscribed.set()
                elif kind == 9:  # SUBACK: one reason code per filter after the id and properties
                    plen, i = _read_varint(body, 2)
                    codes = body[i + plen:]
                    if any(c >= 0x80 for c in codes):
                        raise ConnectionError(f"subscription refused: {codes.hex()}")
                    self.subscribed.set()
                elif kind == 14:
                    raise ConnectionError("the broker disconnected us")
            if msgs:
                self.deliver(msgs)
            try:
                data = self._recv(sock)
            except TimeoutError:
                continue
            if not data:
                raise ConnectionError("the broker closed the connection")
            buf += data

    def _recv(self, sock: socket.socket) -> bytes:
        """What the socket holds. An OpenSSL connection must not read and write in two threads at once
        (acknowledgements are sent by the batch's thread): over TLS, wait until there is something to
        read, then read it under the send lock."""
        if not self.tls:
            return sock.recv(READ)
        if not sock.pending() and not select.select([sock], [], [], self.keepalive / 4)[0]:
            raise TimeoutError
        with self.send_lock:
            return sock.recv(READ)

    def stop(self, end_session: bool = False) -> None:
        """Disconnect; the broker keeps the session, or, with end_session, drops it (and its subscriptions)
        at once (DISCONNECT with a session expiry of 0)."""
        self.stopping.set()
        try:
            self._send(packet(0xE0, b"\x00\x05\x11\x00\x00\x00\x00") if end_session else b"\xe0\x00")
        except OSError:
            pass
        with self.send_lock:
            if self.sock is not None:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(10)
