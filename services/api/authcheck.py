"""GET /api/auth/tiles/{layer}: may this caller read this tile layer? The cheap check behind nginx's
`auth_request` for restricted tile layers (docs/deploy.md): 204 yes, 401 no key, 403 a key whose role
lacks the layer.

The key comes from the X-API-Key header or from `?key=` of the original tile URL, which nginx passes in
X-Original-URI; refusals and restricted reads are audited as the tile router does (at most one row per
caller, layer and status a minute), under the original path with the key masked.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response

from services import auth
from services.tiles.source import LAYERS

router = APIRouter(tags=["Access"])


def _original(request: Request) -> Request:
    """The request as nginx received it: the path and query of X-Original-URI, this request's headers."""
    uri = request.headers.get("x-original-uri")
    if not uri:
        return request
    parts = urlsplit(uri)
    return Request({**request.scope, "path": parts.path, "raw_path": parts.path.encode(),
                    "query_string": parts.query.encode()})


@router.get("/auth/tiles/{layer}", status_code=204, summary="Check that the caller may read a tile layer",
            responses={204: {"description": "the caller may read the layer"},
                       401: {"description": "restricted layer and no key, or an unknown or revoked key"},
                       403: {"description": "the key's role may not read the layer"}})
def tile_layer_access(layer: str, request: Request) -> Response:
    if layer not in LAYERS:
        raise HTTPException(404, f"no tile layer {layer!r}; layers: {', '.join(LAYERS)}")
    original = _original(request)
    auth.require_layer(original, auth.caller(original), layer, throttle=auth.TILE_AUDIT_SECONDS)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
