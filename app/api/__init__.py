"""The REST API under /api/v1, device HTTP ingest, health probes and the API docs, on NiceGUI's FastAPI app."""

from __future__ import annotations

from fastapi import APIRouter
from nicegui import app
from sqlalchemy.exc import DBAPIError

from app.api.alarms import alarms_router
from app.api.audit import audit_router
from app.api.auth import auth_router
from app.api.devices import devices_router
from app.api.docs import docs_router
from app.api.headers import SecurityHeaders
from app.api.health import health_router
from app.api.ingest import ingest_router
from app.api.input_errors import database_input_problem
from app.api.invites import invites_router, password_reset_router
from app.api.metrics import metrics_router
from app.api.notifications import notifications_router
from app.api.problems import install_handler, install_problem_handlers
from app.api.raw_archive import raw_archive_router
from app.api.responses import ApiJSONResponse
from app.api.rules import rules_router
from app.api.storage import storage_router
from app.api.telemetry import telemetry_router
from app.api.tokens import tokens_router
from app.api.users import users_router
from app.platform import Platform

API_V1 = '/api/v1'


def api_router(platform: Platform) -> APIRouter:
    """Everything the OpenAPI schema describes. Built per call: tests build the app several times."""
    v1 = APIRouter(prefix=API_V1, default_response_class=ApiJSONResponse)
    for router in (auth_router(platform), devices_router(platform), telemetry_router(platform),
                   ingest_router(platform), notifications_router(platform)):
        v1.include_router(router)
    v1.include_router(users_router(platform))
    v1.include_router(invites_router(platform))
    v1.include_router(password_reset_router(platform))
    v1.include_router(audit_router(platform))
    v1.include_router(tokens_router(platform))
    v1.include_router(rules_router(platform))
    v1.include_router(alarms_router(platform))
    v1.include_router(storage_router(platform))
    v1.include_router(raw_archive_router(platform))
    api = APIRouter()
    api.include_router(v1)
    api.include_router(health_router(platform))
    api.include_router(metrics_router(platform))
    return api


def register(platform: Platform) -> None:
    api = api_router(platform)
    app.include_router(api)
    app.include_router(docs_router(api.routes))
    install_problem_handlers(app)
    install_handler(app, DBAPIError, database_input_problem)
    kept = [entry for entry in app.user_middleware if getattr(entry, 'cls', None) is not SecurityHeaders]
    app.user_middleware[:] = kept  # once, however often the app is built
    app.add_middleware(SecurityHeaders, force_tls=(platform.settings.base_url or '').startswith('https://'))
