"""The HTTP application: /api (features, BIM detail), /tiles (3D Tiles), and the viewer at /."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from cim_core.settings import get_settings
from services.api import install_problem_handlers
from services.api import router as api_router
from services.auth import declare_security, tile_access
from services.tiles.service import router as tiles_router

VIEWER = Path(__file__).resolve().parent.parent / "viewer"
CESIUM_BUILD = VIEWER / "node_modules" / "cesium" / "Build" / "Cesium"
ECHARTS_BUILD = VIEWER / "node_modules" / "echarts" / "dist"
# What the viewer serves at /: the 3D viewer's page, style sheet, lighting table (js/scene.js) and ES modules
# (viewer/js/**.js) and the dashboard's (viewer/dashboard/); never package.json, the lock file or node_modules
# (CesiumJS and ECharts are served from their build folders at /cesium and /echarts).
VIEWER_FILES = ("index.html", "style.css", "brdf-lut.png", "dashboard", "dashboard/index.html",
                "dashboard/dashboard.css")
VIEWER_MODULES = ("js", "dashboard/js")


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
    mount_viewer(app)  # keep last: the mount at / catches every path no router claimed
    return app


def is_viewer_file(path: str) -> bool:
    """Whether a path relative to viewer/ ('.' for the folder itself) is one the viewer serves."""
    if path in (".", *VIEWER_FILES):
        return True
    folder, _, name = path.rpartition("/")
    in_modules = any(folder == m or folder.startswith(m + "/") for m in VIEWER_MODULES)
    return in_modules and name.endswith(".js") and not name.startswith(".") and ".." not in folder.split("/")


class _ViewerFiles(StaticFiles):
    """viewer/ at /, limited to the app's own files (is_viewer_file); every other path is a 404."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not is_viewer_file(path):
            raise HTTPException(404, "not found")
        return await super().get_response(path, scope)


def mount_viewer(app: FastAPI) -> None:
    """CesiumJS at /cesium (its build folder in viewer/node_modules, see viewer/package.json) and the
    viewer's page, style sheet and modules at /."""
    # check_dir=False: the API and tiles still serve when `npm ci` has not been run in viewer/;
    # the page then says that CesiumJS is missing.
    app.mount("/cesium", StaticFiles(directory=CESIUM_BUILD, check_dir=False), name="cesium")
    app.mount("/echarts", StaticFiles(directory=ECHARTS_BUILD, check_dir=False),
              name="echarts")  # the health-check dashboard's charts (viewer/dashboard, served at /dashboard/)
    app.mount("/", _ViewerFiles(directory=VIEWER, html=True), name="viewer")
