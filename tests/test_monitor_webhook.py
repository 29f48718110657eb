"""Alarm events reach a webhook, retried until it answers: a real HTTP server that fails the first call."""
from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

from monitor_helpers import make_sensors, wait_for
from test_monitor_alarms import feed

from services.monitor import webhook


def test_alarm_events_are_posted_with_retries(db):
    make_sensors(db)
    got: list[dict] = []
    calls = [0]

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            calls[0] += 1
            body = self.rfile.read(int(self.headers["content-length"]))
            if calls[0] == 1:
                self.send_response(503)  # the first attempt fails
            else:
                got.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    thread, stop = webhook.start(db.url.render_as_string(hide_password=False), url, tries=3)
    try:
        time.sleep(1.0)  # the forwarder takes its lock and listens
        feed(db, "G1", [30, 30], datetime.now(UTC) - timedelta(minutes=1))
        assert wait_for(lambda: got, timeout=15)
        assert (got[0]["event"], got[0]["sensor"], got[0]["level"]) == ("raised", "G1", "alarm")
        assert calls[0] == 2
    finally:
        stop.set()
        thread.join(5)
        server.shutdown()
