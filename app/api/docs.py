"""OpenAPI schema and Swagger UI of the API (NiceGUI's app has FastAPI's own docs switched off)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute

TITLE = 'Gito API'
OPENAPI_PATH = '/api/openapi.json'
DOCS_PATH = '/api/docs'
REDIRECT_PATH = '/api/docs/oauth2-redirect'
DESCRIPTION = (
    'Devices, telemetry and device HTTP ingest of one Gito tenant. Sign in with **Authorize** (your e-mail '
    'address and password); devices send telemetry with their own token. Errors are RFC 9457 problem+json.'
)


def api_version() -> str:
    try:
        return version('gito')
    except PackageNotFoundError:
        return '0'


def docs_router(routes: Sequence[BaseRoute]) -> APIRouter:
    """`routes`: what the schema describes (the API, not NiceGUI's pages); built once, on first request."""
    router = APIRouter(include_in_schema=False)
    schema: dict[str, Any] = {}

    @router.get(OPENAPI_PATH)
    async def openapi() -> JSONResponse:
        if not schema:
            schema.update(get_openapi(title=TITLE, version=api_version(), description=DESCRIPTION, routes=routes))
        return JSONResponse(schema)

    @router.get(DOCS_PATH)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get('root_path', '').rstrip('/')
        return get_swagger_ui_html(
            openapi_url=root + OPENAPI_PATH, title=f'{TITLE} - Swagger UI', oauth2_redirect_url=root + REDIRECT_PATH,
            swagger_ui_parameters={'persistAuthorization': True},
        )

    @router.get(REDIRECT_PATH)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return router
