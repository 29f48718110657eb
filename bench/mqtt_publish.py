"""A lean MQTT 3.1.1 QoS 1 publisher for the monitoring bench: PUBLISH packets built in chunks and
written to the socket, PUBACKs counted by a reader thread (paho spends ~100 us a message in Python, which
made the publisher, not the broker, the limit of the "Mosquitto alone" anchor). Packet layout: MQTT 3.1.1,
OASIS standard, sections 3.1 (CONNECT), 3.2 (CONNACK), 3.3 (PUBLISH), 3.4 (PUBACK).

One publisher process sends `rate` readings a second (0: as fast as the broker acknowledges) for
`seconds`, as one-reading messages on cim/<sensor>/reading or gateway messages of `per_message` readings
on cim/gateway/<id>; every reading has its own (sensor, time). It returns the readings acknowledged.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from datetime import UTC, datetime, timedelta

from services.monitor.mqttwire import packet, string

WINDOW = 20000  # messages in flight (published, not yet acknowledged)
CHUNK_S = 0.01  # a paced publisher writes a chunk every 10 ms


def publish_packet(topic: bytes, payload: bytes, packet_id: int) -> bytes:
    return packet(0x32, string(topic) + struct.pack("!H", packet_id) + payload)  # PUBLISH, QoS 1


def connect(port: int, client_id: str, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(packet(0x10, string(b"MQTT") + b"\x04\x02\x00\x00" + string(client_id.encode())))  # 3.1.1,
    # clean session, no keepalive
    ack = sock.recv(4)
    if ack[:2] != b"\x20\x02" or ack[3] != 0:
        raise ConnectionError(f"broker refused {client_id}: {ack!r}")
    return sock


class Acks(threading.Thread):
    """Counts the PUBACKs (4 bytes each: the broker sends nothing else to a publisher)."""

    def __init__(self, sock: socket.socket):
        super().__init__(daemon=True)
        self.sock, self.count, self.rest = sock, 0, 0

    def run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.rest += len(data)
            self.count, self.rest = self.count + self.rest // 4, self.rest % 4


def _messages(sensors: int, per_message: int, worker: int, workers: int):
    """(topic, payload) forever; worker w's readings of a sensor are w ms apart from the other workers'."""
    base, n = datetime.now(UTC) - timedelta(seconds=60), 0  # recent: old readings would read as offline
    while True:
        items = [(f"B{(n + i) % sensors:04d}", (base + timedelta(milliseconds=(n + i) // sensors * 10 * workers
                                                                 + worker)).isoformat()) for i in range(per_message)]
        n += per_message
        if per_message == 1:
            yield f"cim/{items[0][0]}/reading".encode(), f'{{"time":"{items[0][1]}","value":0.3}}'.encode()
        else:
            yield f"cim/gateway/bench{worker}".encode(), ('{"readings":[' + ",".join(
                f'{{"sensor":"{s}","time":"{t}","value":0.3}}' for s, t in items) + "]}").encode()


def publish(port: int, seconds: float, per_message: int, worker: int, workers: int, rate: float,
            sensors: int) -> int:
    sock = connect(port, f"bench-pub-{worker}-{per_message}-{time.monotonic_ns()}")
    acks = Acks(sock)
    acks.start()
    gen, sent, pid = _messages(sensors, per_message, worker, workers), 0, 0
    t0 = time.monotonic()
    end = t0 + seconds
    while (now := time.monotonic()) < end:
        due = int(rate / per_message * (now - t0 + CHUNK_S)) if rate else sent + 500
        due = min(due, acks.count + WINDOW)
        if due <= sent:
            time.sleep(0.001)
            continue
        chunk = bytearray()
        for _ in range(due - sent):
            pid = pid % 65535 + 1
            topic, payload = next(gen)
            chunk += publish_packet(topic, payload, pid)
        sock.sendall(chunk)
        sent = due
    deadline = time.monotonic() + 120
    while acks.count < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return acks.count * per_message
