"""Database access: the embedded PostGIS cluster, engines, and migrations.

With CIM_DATABASE_URL set, that server is used; otherwise an embedded PostgreSQL cluster under
$CIM_HOME/pgdata, started on demand on a free local port. As root the server runs as the
`postgres` user, since initdb and pg_ctl refuse root. With CIM_DATABASE_READ_URLS, reads that may
lag a little (the API's) go to streaming replicas (`read_engine`); everything else to the primary.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from .errors import DatabaseError
from .settings import get_settings

DB_NAME = "cim"
DB_USER = "cim"
# PostgreSQL's default of 100 is used up by four `cim serve` workers (pools of up to 30) beside the ingest
# and the analyses; an idle connection slot costs a few hundred bytes of shared memory.
MAX_CONNECTIONS = 300


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise DatabaseError("PostgreSQL server binaries not found",
                        hint="apt-get install postgresql-15 postgresql-15-postgis-3, or set CIM_DATABASE_URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that no one listens on now (for the embedded servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # as PostgreSQL binds: connections of a stopped server in TIME_WAIT do not make the port busy
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@dataclass
class Embedded:
    """The embedded cluster of one CIM_HOME."""
    home: Path

    def __post_init__(self):
        self.home = Path(self.home).absolute()
        self.pgdata = self.home / "pgdata"
        self.state_file = self.home / "cluster.json"
        self.as_root = os.geteuid() == 0

    # -- running the server binaries, as `postgres` when we are root
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(_pg_bindir() / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise DatabaseError(f"{args[0]} failed: {detail[-1] if detail else proc.returncode}",
                                hint=f"see {self.pgdata / 'server.log'}")
        return proc

    def _postgres_can_use(self, path: Path) -> bool:
        return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(path)]).returncode == 0

    def _make_datadir(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.as_root:
            self.pgdata.mkdir(mode=0o700)
            return
        if self._postgres_can_use(self.home) or (os.chmod(self.home, 0o755) or self._postgres_can_use(self.home)):
            self.pgdata.mkdir(mode=0o700)
            shutil.chown(self.pgdata, "postgres", "postgres")
            return
        # `postgres` cannot reach CIM_HOME (e.g. under /root): keep the cluster in /var/lib/cim
        # and link it from CIM_HOME/pgdata.
        real = Path("/var/lib/cim") / hashlib.sha1(str(self.home).encode()).hexdigest()[:12] / "pgdata"
        if real.exists():
            shutil.rmtree(real)
        real.mkdir(parents=True, mode=0o700)
        for p in (real, real.parent):
            shutil.chown(p, "postgres", "postgres")
        self.pgdata.symlink_to(real)

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    @property
    def port(self) -> int | None:
        return self._state().get("port")

    def running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata.resolve()), check=False).returncode == 0

    def url(self) -> str:
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def start(self) -> bool:
        """Create on first use and start the cluster; False when it was already running."""
        if self.running():
            return False
        if not self.initialised:
            if self.pgdata.is_symlink() or self.pgdata.exists():
                if any(self.pgdata.resolve().iterdir()):
                    raise DatabaseError(f"{self.pgdata} exists but holds no PostgreSQL cluster",
                                        hint="remove it or set CIM_HOME to another folder")
            else:
                self._make_datadir()
            self._run("initdb", "-D", str(self.pgdata.resolve()), "-U", DB_USER, "--auth=trust",
                      "-E", "UTF8", "--locale=C")
        port = self.port if self.port and _port_free(self.port) else free_port()
        self.state_file.write_text(json.dumps({"port": port}))
        datadir = self.pgdata.resolve()
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(datadir), "-l", str(datadir / "server.log"),
                  "-o", f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                        f"-c max_connections={MAX_CONNECTIONS}")
        admin = sa.create_engine(self.url().rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            if not c.scalar(sa.text("select 1 from pg_database where datname = :n"), {"n": DB_NAME}):
                c.execute(sa.text(f'create database "{DB_NAME}"'))
        admin.dispose()
        return True

    def make_standby(self, home: Path | str) -> Embedded:
        """A streaming replica of this running cluster under `home`/pgdata (pg_basebackup -R), to start.

        The embedded cluster allows it as initdb made it: wal_level replica and replication connections
        from 127.0.0.1 in pg_hba.conf."""
        standby = Embedded(home)
        if standby.initialised or standby.pgdata.exists() or standby.pgdata.is_symlink():
            raise DatabaseError(f"{standby.pgdata} exists", hint="give a new folder for the replica")
        standby._make_datadir()
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, "-D",
                  str(standby.pgdata.resolve()), "-R", "-X", "stream", "-c", "fast")
        return standby

    def stop(self) -> bool:
        if not self.running():
            return False
        self._run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.pgdata.resolve()))
        _started.pop(self.home, None)
        return True


def embedded() -> Embedded:
    return Embedded(get_settings().home)


def normalise_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def describe_url(url: str) -> str:
    """host:port/db of a URL, never its password."""
    u = make_url(url)
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


_started: dict[Path, str] = {}


def database_url(start: bool = True) -> str:
    """The URL of the database to use; starts the embedded cluster when needed and allowed."""
    s = get_settings()
    if s.database_url:
        return normalise_url(s.database_url)
    emb = embedded()
    if emb.home in _started:  # checked once per process: `pg_ctl status` is a subprocess
        return _started[emb.home]
    if start:
        emb.start()
    elif not emb.running():
        raise DatabaseError("the embedded database is not running", hint="run `cim db start`")
    _started[emb.home] = emb.url()
    return _started[emb.home]


_engines: dict[str, sa.Engine] = {}


def _engine_for(url: str) -> sa.Engine:
    if url not in _engines:
        _engines[url] = sa.create_engine(url, pool_size=20, max_overflow=10)
    return _engines[url]


def dispose_engines() -> None:
    """Close every pooled connection of this process's engines (a process that moves between databases,
    such as the test suite, would otherwise keep each database's idle connections open)."""
    for engine in [*_engines.values(), *_read_engines.values()]:
        engine.dispose()
    _engines.clear()
    _read_engines.clear()
    _ready.clear()


def connect_check(engine: sa.Engine) -> None:
    try:
        with engine.connect() as c:
            c.execute(sa.text("select 1"))
    except Exception as exc:  # driver errors vary; report the cause in one line
        cause = [ln.strip() for ln in str(getattr(exc, "orig", exc)).splitlines() if ln.strip()]
        raise DatabaseError(f"cannot connect to the database at {describe_url(engine.url.render_as_string())}: "
                            f"{cause[-1] if cause else type(exc).__name__}",
                            hint="check CIM_DATABASE_URL, or unset it to use the embedded database") from None


_ready: set[str] = set()


def get_engine(migrate: bool = True) -> sa.Engine:
    """An engine on the database, started, checked and migrated to head once per process."""
    url = database_url()
    engine = _engine_for(url)
    if migrate and url not in _ready:
        connect_check(engine)
        from .migrate import upgrade
        upgrade(engine)
        _ready.add(url)
    return engine


# A replica that refused a connection is tried again only after this long (others and the primary meanwhile).
REPLICA_RETRY_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 3
# Pooled read connections are replaced after this long, so that a replica back in service gets its share.
READ_POOL_RECYCLE_SECONDS = 300


def read_urls() -> list[str]:
    """The replicas of CIM_DATABASE_READ_URLS, in order."""
    raw = get_settings().database_read_urls or ""
    return [normalise_url(u.strip()) for u in raw.split(",") if u.strip()]


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ReadConnector:
    """Opens read connections: round robin over the replicas, one new connection at a time; a replica
    that refuses is skipped for REPLICA_RETRY_SECONDS, and when none answers the primary is used."""

    def __init__(self, replicas: list[str], primary: str):
        self.replicas = [_libpq(u) for u in replicas]
        self.primary = _libpq(primary)
        self.turn = 0
        self.down: dict[str, float] = {}

    def order(self) -> list[str]:
        """Replicas in service from this turn's one on, then the primary, then those resting after a refusal."""
        since = time.monotonic() - REPLICA_RETRY_SECONDS
        resting = [u for u in self.replicas if self.down.get(u, since) > since]
        up = [u for u in self.replicas if u not in resting]
        start = self.turn % len(up) if up else 0
        self.turn += 1
        return up[start:] + up[:start] + [self.primary] + resting

    def __call__(self) -> psycopg.Connection:
        error: Exception | None = None
        for conninfo in self.order():
            try:
                conn = psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            except psycopg.OperationalError as exc:
                error = exc
                if conninfo != self.primary:
                    self.down[conninfo] = time.monotonic()
                continue
            self.down.pop(conninfo, None)
            return conn
        raise error  # order() always holds the primary, so something was tried


_read_engines: dict[tuple[tuple[str, ...], str], sa.Engine] = {}


def _read_engine_for(replicas: tuple[str, ...], primary: str) -> sa.Engine:
    if (replicas, primary) not in _read_engines:
        _read_engines[replicas, primary] = sa.create_engine(
            replicas[0], creator=ReadConnector(list(replicas), primary), pool_pre_ping=True,
            pool_size=10, max_overflow=20, pool_recycle=READ_POOL_RECYCLE_SECONDS)
    return _read_engines[replicas, primary]


def read_engine() -> sa.Engine:
    """The engine for reads that may lag the primary by the replication delay: over the replicas of
    CIM_DATABASE_READ_URLS when set (the primary migrates them), else the same as `get_engine()`."""
    replicas = read_urls()
    if not replicas:
        return get_engine()
    return _read_engine_for(tuple(replicas), database_url())


def storage_srid(engine: sa.Engine | sa.Connection) -> int:
    """The storage CRS's SRID (on an open connection, without checking out another)."""
    if isinstance(engine, sa.Connection):
        return int(engine.scalar(sa.text("select value from cim_meta where key = 'srid'")))
    with engine.connect() as c:
        return storage_srid(c)


def id_array(ids) -> str:
    """Object ids as one PostgreSQL array literal, bound as text and cast (`any(cast(:ids as bigint[]))`): the
    driver adapts a list element by element, which for thousands of ids costs more than the query."""
    return "{" + ",".join(map(str, np.asarray(ids, np.int64).tolist())) + "}"


def server_versions(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as c:
        pg = c.scalar(sa.text("show server_version"))
        postgis = c.scalar(sa.text("select extversion from pg_extension where extname = 'postgis'"))
    return {"postgresql": pg, "postgis": postgis or "not installed"}


def url_without_password(url: str) -> str:
    return URL.render_as_string(make_url(url), hide_password=True)
