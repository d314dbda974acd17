"""Alarm rules and maintenance windows of the caller's tenant."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.maintenance import MaintenanceCreate, MaintenancePublic
from app.models.rules import RuleCreate, RulePublic
from app.models.schemas import Principal
from app.platform import Platform
from app.services.rules.backtest import BacktestResult


def rules_router(platform: Platform) -> APIRouter:
    router = APIRouter(tags=['rules'], responses=problem_responses(401, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]
    found = problem_responses(404)
    written = problem_responses(403, 404)

    @router.get('/rules')
    async def list_rules(caller: Caller) -> list[RulePublic]:
        """Every rule of the tenant, by name."""
        return await platform.rules.all(caller)

    @router.post('/rules', status_code=201, responses=problem_responses(403))
    async def create_rule(caller: Caller, data: RuleCreate) -> RulePublic:
        """A new rule; it is evaluated from the next committed batch on."""
        return await platform.rules.create(caller, data)

    @router.post('/rules/backtest')
    async def backtest_rule(caller: Caller, data: RuleCreate) -> BacktestResult:
        """How many alarms this (unsaved) rule would have raised per device in the last 24 h and 7 days."""
        return await platform.backtest.run(caller, data)

    @router.get('/rules/{rule_id}', responses=found)
    async def get_rule(caller: Caller, rule_id: UUID) -> RulePublic:
        return await platform.rules.get(caller, rule_id)

    @router.put('/rules/{rule_id}', responses=written)
    async def update_rule(caller: Caller, rule_id: UUID, data: RuleCreate) -> RulePublic:
        """Replace the rule's definition; a severity change is recorded on its open alarms."""
        return await platform.rules.update(caller, rule_id, data)

    @router.delete('/rules/{rule_id}', status_code=204, response_class=Response, responses=written)
    async def delete_rule(caller: Caller, rule_id: UUID) -> Response:
        """The rule and its alarms."""
        await platform.rules.delete(caller, rule_id)
        return Response(status_code=204)

    @router.get('/maintenance-windows')
    async def list_maintenance(caller: Caller) -> list[MaintenancePublic]:
        """Windows not yet over (and those ended in the last day)."""
        return await platform.maintenance.current(caller)

    @router.post('/maintenance-windows', status_code=201, responses=problem_responses(403))
    async def create_maintenance(caller: Caller, data: MaintenanceCreate) -> MaintenancePublic:
        """No alarm is raised for the chosen devices (all when `device_ids` is null) inside the window."""
        return await platform.maintenance.create(caller, data)

    @router.post('/maintenance-windows/{window_id}/end', responses=written)
    async def end_maintenance(caller: Caller, window_id: UUID) -> MaintenancePublic:
        """End a running window now (409 when it is over or has not started)."""
        return await platform.maintenance.end_now(caller, window_id)

    @router.delete('/maintenance-windows/{window_id}', status_code=204, response_class=Response,
                   responses=written)
    async def delete_maintenance(caller: Caller, window_id: UUID) -> Response:
        await platform.maintenance.delete(caller, window_id)
        return Response(status_code=204)

    return router
