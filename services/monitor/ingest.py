"""`cim monitor run`: MQTT readings into PostgreSQL, at least once from the broker, once in the table.

The process is stateless. It subscribes with QoS 1 through a shared subscription (`$share/<group>/...`),
so N processes of one group split the messages. Readings are routed by sensor: with `partition=(k, n)`
the process takes the one-reading messages of the sensors whose code hashes to k of n (see
`partition_of`), and of every gateway message the readings of those sensors; it acknowledges the rest
unread, so one process sees a sensor's readings in order. It acknowledges a
message (PUBACK) only after the transaction holding its readings has committed. A process killed in
between leaves its messages unacknowledged in its persistent session; the broker delivers them again
when the process (the same --instance) comes back, and the primary key on (sensor, time) stores them
once.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from analyses import alarms
from cim_core.readings import DeadLetter
from cim_core.settings import get_settings

from .broker import Endpoint
from .messages import GATEWAY_TOPIC, SINGLE_TOPIC, Decoded, Window, decode, sort_decoded
from .mqttwire import Subscriber
from .writer import AfterStore, Writer

log = logging.getLogger("cim.monitor")
SESSION_EXPIRY_S = 7 * 86400
RECEIVE_MAXIMUM = 65535
OFFLINE_CHECK_S = 5.0
PARTITIONED = 1  # the subscription identifier of a partition's filters


def partition_of(code: str, n: int) -> int:
    """The partition (1..n) of a sensor code: CRC-32 of its UTF-8, the same in every process."""
    return zlib.crc32(code.encode()) % n + 1


def filters(group: str, partition: tuple[int, int] | None) -> list[str]:
    """The subscriptions: the group's shared ones, or with a partition (k, n) those of the shared group
    `<group>-p<k>` (every partition gets every message and keeps its own; processes of one partition on
    other machines share its group)."""
    name = group if partition is None else f"{group}-p{partition[0]}"
    return [f"$share/{name}/{SINGLE_TOPIC}", f"$share/{name}/{GATEWAY_TOPIC}"]


@dataclass
class Stats:
    messages: int = 0
    stored: int = 0
    dead: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


class Ingest:
    """One ingest process's MQTT client and batch loop."""

    def __init__(self, engine: sa.Engine, broker: Endpoint, *, instance: str = "1", group: str = "cim",
                 after_store: AfterStore | None = alarms.evaluate, partition: tuple[int, int] | None = None):
        s = get_settings()
        self.batch_size, self.flush_s = s.ingest_batch, s.ingest_flush_s
        self.writer = Writer(engine, after_store)
        self.broker, self.group = broker, group
        # (time received, messages), one per read of the socket
        self.inbox: queue.Queue[tuple[float, list]] = queue.Queue()
        self.stats = Stats()
        self.behind = False  # more was waiting after the last batch: a backlog (after an outage) drains
        self.stop_event = threading.Event()
        self.partition = partition if partition and partition[1] > 1 else None
        self.client = Subscriber(broker.host, broker.port, f"cim-ingest-{group}-{instance}",
                                 filters(group, self.partition),
                                 self._received, username=broker.username, password=broker.password,
                                 session_expiry=SESSION_EXPIRY_S, receive_maximum=RECEIVE_MAXIMUM,
                                 tls=broker.ssl_context(), subscription_id=PARTITIONED if self.partition else 0)
        if self.partition:  # a session that ran unpartitioned leaves the group's filters
            self.client.unsubscribe = filters(group, None)
        self.subscribed = self.client.subscribed  # set once the broker confirmed the subscriptions

    def _received(self, msgs: list) -> None:
        self.inbox.put((time.monotonic(), msgs))

    def _decode(self, topic: str, payload: bytes, w: Window, sub: int) -> Decoded | None:
        """A message decoded; with a partition (k, n), only what is this process's: a one-reading message
        of one of its sensors (another's is acknowledged with the batch unread), the readings of its
        sensors in a gateway message. A gateway message that is bad as a whole, and its items that name
        no sensor, are the partition's of the gateway id (one dead letter, not n). A message that came
        by another filter than the partition's (`sub`, its subscription identifier: held for the session
        under the group's filter before it was partitioned) reached no other partition: taken whole."""
        if self.partition is None or sub != PARTITIONED:
            return decode(topic, payload, w)
        k, n = self.partition
        if not topic.startswith("cim/gateway/"):
            return decode(topic, payload, w) if partition_of(topic[4:-8], n) == k else None
        d = decode(topic, payload, w)
        gateway = partition_of(topic[12:], n) == k
        if isinstance(d, DeadLetter):
            return d if gateway else None
        mine = [it for it in d[1] if (partition_of(it["sensor"], n) == k if isinstance(it, dict)
                                      and isinstance(it.get("sensor"), str) else gateway)]
        return (topic, mine, None) if mine else None

    def connect(self) -> None:
        self.client.start()

    def _take(self) -> tuple[list[tuple], list, Window] | None:
        """Messages (generation, mid, qos) decoded, about batch_size readings, closed flush_s after the
        first of them was received: the time it waited in the inbox while the batch before was written
        counts (a window started when it was taken added up to a batch's write to each reading's wait)."""
        try:
            received, chunk = self.inbox.get(timeout=0.5)
        except queue.Empty:
            return None
        w = Window.at(datetime.now(UTC))
        msgs, decoded, n = [], [], 0
        deadline = received + self.flush_s
        while True:
            for gen, mid, qos, topic, payload, sub in chunk:
                msgs.append((gen, mid, qos))
                d = self._decode(topic, payload, w, sub)
                if d is None:
                    continue  # acknowledged with the batch, stored by its partition's process
                decoded.append(d)
                n += 1 if isinstance(d, DeadLetter) else len(d[1])
            if n >= self.batch_size:
                break
            left = deadline - time.monotonic()
            try:
                chunk = (self.inbox.get_nowait() if left <= 0 else self.inbox.get(timeout=left))[1]
            except queue.Empty:
                break
        self.behind = not self.inbox.empty()
        return msgs, decoded, w

    def step(self) -> bool:
        """Take, store and acknowledge one batch; False when there was nothing or it could not be stored."""
        taken = self._take()
        if taken is None:
            return False
        msgs, decoded, w = taken
        done = self.writer.write_until_stored(lambda: sort_decoded(decoded, self.writer.sensors, w),
                                              self.stop_event.is_set)
        if done is None:
            return False
        batch, stored = done
        self.client.ack(msgs)
        st = self.stats
        st.messages, st.stored, st.dead, st.batches = (st.messages + len(msgs), st.stored + stored,
                                                       st.dead + len(batch.dead), st.batches + 1)
        return True

    def run(self, report_every: float = 10.0) -> Stats:
        """Until stop(): batches into the database; logs a line of counts every `report_every` seconds."""
        self.connect()
        last = offline_checked = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self.step()
                # no offline alarms while a backlog drains: its sensors' readings are queued, not missing
                if time.monotonic() - offline_checked >= OFFLINE_CHECK_S and not self.behind:
                    offline_checked = time.monotonic()
                    self._check_offline()
                if time.monotonic() - last >= report_every:
                    last = time.monotonic()
                    st = self.stats
                    log.info("%d messages, %d readings stored, %d dead letters", st.messages, st.stored, st.dead)
        finally:
            self.client.stop()
        return self.stats

    def _check_offline(self) -> None:
        try:
            alarms.check_offline(self.writer.engine, datetime.now(UTC))
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            self.writer.engine.dispose()  # the next batch waits for the database

    def stop(self) -> None:
        self.stop_event.set()


def retire(engine: sa.Engine, broker: Endpoint, instance: str, group: str = "cim", quiet_s: float = 2.0) -> Stats:
    """End a removed ingest instance's session without losing what it holds: connect as it, leave the
    group's subscriptions (nothing new is routed to it), store and acknowledge what the broker had queued
    for it until nothing came for `quiet_s`, then end the session."""
    ing = Ingest(engine, broker, instance=instance, group=group)
    k = instance.rpartition("-")[2]
    partition = filters(group, (int(k), 0)) if k.isdigit() and "-" in instance else []  # child k of a pool
    ing.client.unsubscribe, ing.client.filters = ing.client.filters + partition, []
    ing.connect()
    if not ing.subscribed.wait(30):
        ing.client.stop()
        raise ConnectionError(f"could not reach the broker at {broker.host}:{broker.port}")
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        if ing.step():
            quiet_since = time.monotonic()
    ing.client.stop(end_session=True)
    return ing.stats
