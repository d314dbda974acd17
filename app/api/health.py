"""Probes for orchestrators: alive (the process answers) and ready (database and broker reachable)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.platform import Platform


class Alive(BaseModel):
    status: Literal['ok'] = 'ok'


class Readiness(BaseModel):
    database: bool
    broker: bool


def health_router(platform: Platform) -> APIRouter:
    router = APIRouter(tags=['health'])

    @router.get('/healthz')
    async def healthz() -> Alive:
        return Alive()

    @router.get('/readyz', response_model=Readiness, responses={503: {'model': Readiness}})
    async def readyz() -> JSONResponse:
        """200 when the database and the MQTT broker are reachable, else 503 saying which is not."""
        readiness = Readiness.model_validate(await platform.ready())
        ready = readiness.database and readiness.broker
        return JSONResponse(readiness.model_dump(), status_code=200 if ready else 503)

    return router
