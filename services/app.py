"""The HTTP application: /api (features, BIM detail), /tiles (3D Tiles), and the viewer at /."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

VIEWER = Path(__file__).resolve().parent.parent / "viewer"


def create_app() -> FastAPI:
    app = FastAPI(title="CIM platform", docs_url=None, redoc_url=None, openapi_url=None)
    # Routers are added here as they land: services.api (under /api), services.tiles (under /tiles),
    # and the viewer's static files at /.
    return app
