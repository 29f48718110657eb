"""What `cim demo` runs beside the server, each stopped with the demo: the live monitoring (the MQTT broker,
one ingest process and a small simulation: 50 sensors, five readings a second in all, a gas leak after two
minutes) so the viewer's live tool shows data (`cim demo --no-live` leaves it out), and above
serve.STORM_MAX_SCALE the design storm."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

from .output import console

SENSORS, RATE, LEAK_AFTER_S = 50, 5.0, 120  # each sensor every 10 s, its sampling period (fewer: offline)
DURATION_S = 7 * 86400  # "until the demo stops"


def _cim(*args: str, log) -> subprocess.Popen:
    from services.monitor.pool import die_with_parent

    # children die with the demo even when it is killed, not stopped
    return subprocess.Popen([sys.executable, "-m", "services.cli", *args], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=die_with_parent)


@contextlib.contextmanager
def live_simulation(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from cim_core.settings import get_settings
    from services.monitor.broker import own_broker

    broker = None if get_settings().mqtt_url else own_broker()
    started_broker = broker.start() if broker else False
    logs = get_settings().home.absolute() / "demo-live.log"
    with logs.open("ab") as log:
        procs = [_cim("monitor", "run", "--processes", "1", "--group", "demo", "--instance", "demo", log=log),
                 _cim("monitor", "simulate", "--sensors", str(SENSORS), "--rate", str(RATE), "--duration",
                      str(DURATION_S), "--incident", "gas-leak", "--incident-after", str(LEAK_AFTER_S), log=log)]
        console.print(f"live monitoring: {SENSORS} simulated sensors, a gas leak after {LEAK_AFTER_S} s "
                      f"(log {logs})")
        try:
            yield
        finally:
            _stop(procs)
            if started_broker:
                broker.stop()


@contextlib.contextmanager
def background_storm(enabled: bool, dataset: str, year: int) -> Iterator[list[subprocess.Popen]]:
    """The demo's 3-year 120-minute design storm (its waterlogging points) in a process of its own, then the
    year's health check again (its 严重易涝积水点数量 counts them); the processes started."""
    if not enabled:
        yield []
        return
    from cim_core.settings import get_settings

    logs = get_settings().home.absolute() / "demo-storm.log"
    with logs.open("ab") as log:
        procs = [_cim("analyse", "storm", "--dataset", dataset, "--return-period", "3", "--duration", "120", log=log)]
        lock, stopping = threading.Lock(), threading.Event()

        def then() -> None:
            ok = procs[0].wait() == 0
            with lock:
                if not ok or stopping.is_set():
                    return
                procs.append(_cim("healthcheck", "run", "--year", str(year), log=log))
            procs[1].wait()  # a child dies with the thread that started it (die_with_parent): outlive it

        threading.Thread(target=then, daemon=True).start()
        console.print(f"design storm: running beside the server (many minutes at this scale; the waterlogging "
                      f"layer fills and the health check is made again when it ends), log {logs}")
        try:
            yield procs
        finally:
            with lock:
                stopping.set()
            _stop(procs)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
