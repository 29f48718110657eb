"""`cim monitor run --processes N`: N ingest processes of one shared-subscription group in one command.

Python parses and batches on one core, so one process is bounded by its interpreter; N processes split
the messages and the database takes their batches in parallel: child k takes the readings of the
sensors of partition k of N (ingest.partition_of), from one-reading and gateway messages alike.
Child k of instance I is the MQTT session `cim-ingest-<group>-I-k` (I alone when N is 1), the same on
every start, so a child that dies is started again under its name and the broker delivers again what it
had not acknowledged. Children die with the parent (PR_SET_PDEATHSIG), so a killed command leaves
no orphan consuming under a session the next start will claim.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing as mp
import signal
import time

log = logging.getLogger("cim.monitor")
PR_SET_PDEATHSIG = 1  # prctl(2)
RESTART_PAUSE_S = 1.0


def instance_names(instance: str, processes: int) -> list[str]:
    return [instance] if processes == 1 else [f"{instance}-{k}" for k in range(1, processes + 1)]


def die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child outlives a killed parent
        log.warning("cannot tie the ingest child to its parent (prctl)")


def _child(instance: str, group: str, partition: tuple[int, int]) -> None:
    die_with_parent()
    from cim_core import db as cdb

    from .broker import endpoint
    from .ingest import Ingest

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(name)s [{instance}] %(message)s")
    ingest = Ingest(cdb.get_engine(), endpoint(start=False), instance=instance, group=group, partition=partition)
    signal.signal(signal.SIGTERM, lambda *_: ingest.stop())
    signal.signal(signal.SIGINT, lambda *_: ingest.stop())
    st = ingest.run()
    log.info("stopped: %d messages, %d readings stored, %d dead letters", st.messages, st.stored, st.dead)


def run_pool(instance: str, group: str, processes: int) -> None:
    """Run the children until SIGTERM or Ctrl-C; start again a child that exits on its own."""
    ctx = mp.get_context("spawn")
    names = instance_names(instance, processes)
    stopping = [False]

    def stop(*_):
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parts = {n: (k, len(names)) for k, n in enumerate(names, 1)}  # child k takes the sensors of partition k
    procs = {n: ctx.Process(target=_child, args=(n, group, parts[n]), name=f"ingest-{n}") for n in names}
    for p in procs.values():
        p.start()
    while not stopping[0]:
        time.sleep(0.2)
        for n, p in list(procs.items()):
            if not p.is_alive() and not stopping[0]:
                log.warning("ingest %s exited (%s); starting it again", n, p.exitcode)
                time.sleep(RESTART_PAUSE_S)
                procs[n] = ctx.Process(target=_child, args=(n, group, parts[n]), name=f"ingest-{n}")
                procs[n].start()
    for p in procs.values():
        if p.is_alive():
            p.terminate()  # SIGTERM: the child finishes its batch and acknowledges it
    for p in procs.values():
        p.join(60)
        if p.is_alive():
            p.kill()
