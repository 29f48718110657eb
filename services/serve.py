"""`cim serve`: the application under uvicorn, in one process or N worker processes."""
from __future__ import annotations

import uvicorn

from cim_core.db import get_engine

APP = "services.app:create_app"  # an import string: each worker process builds its own app


def run(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "warning",
        forwarded_allow_ips: str | None = None) -> None:
    """Serve /api, /tiles and the viewer with `workers` processes sharing one listening socket.

    The database is started and migrated once, before the workers start. Each worker has its own
    connection pool and in-memory tile files; the tile cache on disk is shared and rebuilt by one worker
    at a time (see services.tiles.service.refresh). Behind a reverse proxy (docs/deploy.md), the client
    address and scheme (for the audit log) come from X-Forwarded-For / X-Forwarded-Proto sent by the
    proxies in `forwarded_allow_ips` (comma-separated addresses or '*'; default: the environment's
    FORWARDED_ALLOW_IPS, else 127.0.0.1 and ::1).
    """
    get_engine()
    uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips)
