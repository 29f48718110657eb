"""The HTTP application: /api (features, BIM detail), /tiles (3D Tiles), and the viewer at /."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from cim_core.settings import get_settings
from services.api import install_problem_handlers
from services.api import router as api_router
from services.auth import declare_security, tile_access
from services.tiles.service import router as tiles_router

VIEWER = Path(__file__).resolve().parent.parent / "viewer"


@asynccontextmanager
async def _lifespan(app: FastAPI):
    # Request handlers run in threads that share one GIL: a few threads finish requests in arrival
    # order, where 40 (anyio's default) would interleave every request and stretch the slowest.
    anyio.to_thread.current_default_thread_limiter().total_tokens = get_settings().api_threads
    yield


def create_app() -> FastAPI:
    app = FastAPI(title="CIM platform", version="1", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=_lifespan)
    install_problem_handlers(app)
    declare_security(app)
    app.include_router(api_router)
    app.include_router(tiles_router, dependencies=[Depends(tile_access)])  # pipe tiles need a role
    # Routers are added here as they land: services.api (under /api), services.tiles (under /tiles),
    # and the viewer's static files at /.
    mount_viewer(app)  # keep last: the mount at / catches every path no router claimed
    return app


def mount_viewer(app: FastAPI) -> None:
    """CesiumJS at /cesium (from viewer/node_modules, see viewer/package.json) and the viewer at /."""
    # check_dir=False: the API and tiles still serve when `npm ci` has not been run in viewer/;
    # the page then says that CesiumJS is missing.
    app.mount("/cesium", StaticFiles(directory=VIEWER / "node_modules" / "cesium" / "Build" / "Cesium",
                                     check_dir=False), name="cesium")
    app.mount("/echarts", StaticFiles(directory=VIEWER / "node_modules" / "echarts" / "dist", check_dir=False),
              name="echarts")  # the health-check dashboard's charts (viewer/dashboard, served at /dashboard/)
    app.mount("/", StaticFiles(directory=VIEWER, html=True), name="viewer")
