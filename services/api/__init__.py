"""The API under /api: OGC API - Features (Parts 1-3), OGC API - Tiles (vector), OGC API - Processes (the analyses), building detail,
objects, search.

`router` is included by services.app; `install_problem_handlers` renders every error of the app
as application/problem+json.
"""
from fastapi import APIRouter

from . import (
               alarms,
               authcheck,
               bim,
               drainage,
               features,
               findings,
               healthcheck,
               healthcheck_features,
               monitor,
               pipe_categories,
               processes,
               readings,
               scenarios,
               vector_tiles,
               water,
)
from .problems import install as install_problem_handlers

router = APIRouter(prefix="/api")
# the landing page is /api itself, which an included router cannot declare (empty prefix and path)
router.add_api_route("", features.landing, methods=["GET"], summary="Landing page", tags=["OGC API - Features"])
router.include_router(features.router)
router.include_router(bim.router)
router.include_router(pipe_categories.router)
router.include_router(processes.router)
router.include_router(authcheck.router)
router.include_router(water.router)
router.include_router(vector_tiles.router)
router.include_router(healthcheck_features.router)  # before healthcheck's /{year} paths
router.include_router(healthcheck.router)
router.include_router(readings.router)
router.include_router(alarms.router)
router.include_router(monitor.router)
router.include_router(drainage.router)
router.include_router(findings.router)
router.include_router(scenarios.router)

__all__ = ["install_problem_handlers", "router"]
