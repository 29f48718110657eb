"""`cim monitor run` (the MQTT ingest process) and `cim broker start|stop|status` (the MQTT broker)."""

from __future__ import annotations

import logging
import signal

import typer

from .output import console

app = typer.Typer(help="Lifeline monitoring: the ingest of sensor readings. Example: cim monitor run",
                  no_args_is_help=True)
broker_app = typer.Typer(help="The MQTT broker: the one of CIM_MQTT_URL, or a Mosquitto of our own. "
                         "Example: cim broker start", no_args_is_help=True)


@app.command("run")
def run(
    instance: str = typer.Option("1", help="This process's name within its group: its MQTT session, which "
                                 "the broker keeps while it restarts. Give each process of a group its own."),
    group: str = typer.Option("cim", help="Shared-subscription group: processes of one group split the readings."),
    processes: int = typer.Option(0, "--processes", min=0, help="Ingest processes in this command, splitting "
                                  "the group's messages (0: one per core). Sessions <instance>-1..N when N > 1; "
                                  "child k takes the sensors of partition k of N (use the same N on every machine)."),
    retention: bool = typer.Option(True, help="Drop daily reading partitions older than "
                                   "CIM_READING_RETENTION_DAYS at start."),
):
    """Ingest readings from MQTT into the database until stopped (Ctrl-C or SIGTERM).

    Example: cim monitor run --instance 2   (a second command beside `cim monitor run`)
    """
    import os

    from cim_core import db as cdb
    from cim_core.readings import drop_old_partitions
    from services.monitor.broker import endpoint
    from services.monitor.ingest import Ingest

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    engine = cdb.get_engine()
    if retention:
        dropped = drop_old_partitions(engine, cdb.get_settings().reading_retention_days)
        if dropped:
            console.print(f"dropped {len(dropped)} old reading partitions")
    where = endpoint()
    s = cdb.get_settings()
    if s.alarm_webhook_url:
        from services.monitor import webhook

        webhook.start(engine.url.render_as_string(hide_password=False), s.alarm_webhook_url, s.alarm_webhook_tries)
    processes = processes or os.cpu_count() or 1
    if processes > 1:
        from services.monitor.pool import instance_names, run_pool

        console.print(f"ingesting from {where.url} (group {group}, instances "
                      f"{', '.join(instance_names(instance, processes))}) into "
                      f"{cdb.describe_url(engine.url.render_as_string())}")
        engine.dispose()
        run_pool(instance, group, processes)
        console.print("stopped")
        return
    ingest = Ingest(engine, where, instance=instance, group=group)
    signal.signal(signal.SIGTERM, lambda *_: ingest.stop())
    console.print(f"ingesting from {where.url} (group {group}, instance {instance}) into "
                  f"{cdb.describe_url(engine.url.render_as_string())}")
    try:
        stats = ingest.run()
    except KeyboardInterrupt:
        ingest.stop()
        stats = ingest.stats
    console.print(f"stopped: {stats.messages} messages, {stats.stored} readings stored, {stats.dead} dead letters")


@app.command("retire")
def retire(
    instance: str = typer.Option(..., help="The instance to retire (as given to `cim monitor run --instance`; "
                                 "with --processes N, each of <instance>-1..N)."),
    group: str = typer.Option("cim", help="Its shared-subscription group."),
):
    """End the MQTT session of an ingest instance you removed: what the broker queued for it is stored
    first, and nothing more is routed to it.

    Example: cim monitor retire --instance b-3
    """
    from cim_core import db as cdb
    from services.monitor.broker import endpoint
    from services.monitor.ingest import retire as end

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    st = end(cdb.get_engine(), endpoint(start=False), instance, group)
    console.print(f"retired cim-ingest-{group}-{instance}: {st.messages} queued messages, {st.stored} readings "
                  f"stored, {st.dead} dead letters")


@broker_app.command("start")
def broker_start():
    """Start our own Mosquitto (a no-op with CIM_MQTT_URL, or when it runs).

    Example: cim broker start
    """
    from cim_core.settings import get_settings
    from services.monitor.broker import own_broker

    if get_settings().mqtt_url:
        console.print("CIM_MQTT_URL is set: using that broker")
        return
    b = own_broker()
    started = b.start()
    console.print(f"{'started' if started else 'already running'}: mosquitto at {b.url()} ({b.dir})")


@broker_app.command("stop")
def broker_stop():
    """Stop our own Mosquitto (it saves its queued messages).

    Example: cim broker stop
    """
    from cim_core.settings import get_settings
    from services.monitor.broker import own_broker

    if get_settings().mqtt_url:
        console.print("CIM_MQTT_URL is set: nothing to stop")
        return
    console.print("stopped" if own_broker().stop() else "not running")


@broker_app.command("status")
def broker_status():
    """Whether the broker runs, and where.

    Example: cim broker status
    """
    from cim_core.settings import get_settings
    from services.monitor.broker import own_broker

    url = get_settings().mqtt_url
    if url:
        console.print(f"using {url.split('@')[-1]} (CIM_MQTT_URL)")
        return
    b = own_broker()
    if not b.running():
        console.print(f"not running ({b.dir}); start it with `cim broker start`")
        raise typer.Exit(3)
    console.print(f"running: mosquitto at {b.url()} ({b.dir})")


@app.command("simulate")
def simulate(
    sensors: int = typer.Option(50, "--sensors", min=1, help="Sensors to place on the model's networks."),
    rate: float = typer.Option(20.0, "--rate", min=0.1, help="Readings per second, all sensors together."),
    duration: float = typer.Option(60.0, "--duration", min=1, help="Seconds to publish for."),
    incident: str = typer.Option(None, "--incident", help="gas-leak, burst or flood, on one sensor."),
    incident_after: float = typer.Option(5.0, "--incident-after", help="Seconds before the incident begins."),
):
    """Place sensors on the model (gas in gas manholes, pressure on water nodes, level in rain manholes)
    and publish realistic readings to the broker, with an incident if asked; `cim monitor run` stores them.

    Example: cim monitor simulate --sensors 50 --rate 20 --incident gas-leak
    """
    from cim_core import db as cdb
    from cim_core.errors import InputError
    from services.monitor import simulate as sim
    from services.monitor.broker import endpoint

    if incident and incident not in sim.INCIDENTS:
        raise InputError(f"--incident must be one of {', '.join(sim.INCIDENTS)}")
    placed = sim.place_sensors(cdb.get_engine(), sensors)
    console.print(f"{len(placed)} sensors placed (dataset {sim.DATASET})")
    out = sim.run(placed, endpoint(), rate=rate, duration=duration, incident=incident, incident_after=incident_after)
    hit = f"; {incident} at {out['incident_sensor']} on {out['incident_asset']}" if incident else ""
    console.print(f"{out['published']} readings published{hit}")
