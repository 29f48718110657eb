"""Alarm events to a webhook (CIM_ALARM_WEBHOOK_URL): each event of the `cim_monitor` channel of type
`alarm` is POSTed as JSON, retried with backoff (1, 2, 4 ... s, CIM_ALARM_WEBHOOK_TRIES attempts).

One forwarder per database: `cim monitor run` starts one, and the first process to take the session
advisory lock forwards while the others wait for it (so an event is posted once, not once per process).
"""
from __future__ import annotations

import json
import logging
import threading
import time

import httpx
import psycopg

from analyses.alarms import CHANNEL

log = logging.getLogger("cim.monitor")
LOCK = 7461019


def post(url: str, event: dict, tries: int, first_delay: float = 1.0) -> bool:
    """POST one event; True once a 2xx came back."""
    delay = first_delay
    for attempt in range(1, tries + 1):
        try:
            r = httpx.post(url, json=event, timeout=10)
            if r.is_success:
                return True
            log.warning("webhook answered %s (attempt %d of %d)", r.status_code, attempt, tries)
        except httpx.HTTPError as exc:
            log.warning("webhook unreachable (attempt %d of %d): %s", attempt, tries, exc)
        if attempt < tries:
            time.sleep(delay)
            delay *= 2
    log.error("webhook gave up on alarm event %s", event.get("alarm_id"))
    return False


def forward(db_url: str, url: str, tries: int, stop: threading.Event) -> None:
    """Forward alarm events until `stop` is set (for a thread)."""
    while not stop.is_set():
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                while not conn.execute("select pg_try_advisory_lock(%s)", (LOCK,)).fetchone()[0]:
                    if stop.wait(5):
                        return
                conn.execute(f"listen {CHANNEL}")
                while not stop.is_set():
                    for n in conn.notifies(timeout=1.0):
                        event = json.loads(n.payload)
                        if event.get("type") == "alarm":
                            post(url, event, tries)
        except psycopg.OperationalError as exc:
            log.warning("webhook forwarder lost the database: %s", exc)
            stop.wait(2)


def start(db_url: str, url: str, tries: int) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    t = threading.Thread(target=forward, args=(db_url.replace("+psycopg", ""), url, tries, stop), daemon=True,
                         name="alarm-webhook")
    t.start()
    return t, stop
