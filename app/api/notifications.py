"""Notification channels, the outbound allow-list and the delivery log of the caller's tenant."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.notifications import (
    ChannelCreate,
    ChannelCreated,
    ChannelPublic,
    ChannelUpdate,
    DeliveryPublic,
    DeliveryStatus,
    OutboundSettings,
)
from app.models.schemas import Principal
from app.platform import Platform


def notifications_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/notifications', tags=['notifications'], responses=problem_responses(401, 403, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]
    channels = platform.notifications.channels
    deliveries = platform.notifications.deliveries
    found = problem_responses(404)

    @router.get('/channels')
    async def list_channels(caller: Caller) -> list[ChannelPublic]:
        return await channels.list(caller)

    @router.post('/channels', status_code=201)
    async def create_channel(caller: Caller, data: ChannelCreate) -> ChannelCreated:
        """A new channel; a webhook channel's signing secret is shown only in this answer."""
        return await channels.create(caller, data)

    @router.get('/channels/{channel_id}', responses=found)
    async def get_channel(caller: Caller, channel_id: UUID) -> ChannelPublic:
        return await channels.get(caller, channel_id)

    @router.patch('/channels/{channel_id}', responses=found)
    async def update_channel(caller: Caller, channel_id: UUID, data: ChannelUpdate) -> ChannelPublic:
        """Change only the fields sent (routing, recipients, URL, enabled)."""
        return await channels.update(caller, channel_id, data)

    @router.delete('/channels/{channel_id}', status_code=204, response_class=Response, responses=found)
    async def delete_channel(caller: Caller, channel_id: UUID) -> Response:
        await channels.delete(caller, channel_id)
        return Response(status_code=204)

    @router.post('/channels/{channel_id}/test', responses=found)
    async def test_channel(caller: Caller, channel_id: UUID) -> DeliveryPublic:
        """Send a test message through the outbox and dispatcher; the answer is its delivery and attempts."""
        return await deliveries.send_test(caller, channel_id)

    @router.get('/settings')
    async def get_settings(caller: Caller) -> OutboundSettings:
        return await channels.outbound_settings(caller)

    @router.put('/settings')
    async def put_settings(caller: Caller, data: OutboundSettings) -> OutboundSettings:
        """Private address ranges outbound HTTP may reach (on-prem receivers); cloud metadata stays blocked."""
        return await channels.set_outbound_settings(caller, data)

    @router.get('/deliveries')
    async def list_deliveries(
        caller: Caller, status: DeliveryStatus | None = None, channel_id: UUID | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[DeliveryPublic]:
        """Newest first."""
        return await deliveries.list(caller, status=status, channel_id=channel_id, limit=limit)

    @router.get('/deliveries/{delivery_id}', responses=found)
    async def get_delivery(caller: Caller, delivery_id: UUID) -> DeliveryPublic:
        """With every attempt: time, outcome, response code, error, duration."""
        return await deliveries.get(caller, delivery_id)

    @router.post('/deliveries/{delivery_id}/retry', responses=found)
    async def retry_delivery(caller: Caller, delivery_id: UUID) -> DeliveryPublic:
        """Attempt now (a dead delivery gets a new day of retries)."""
        return await deliveries.retry_now(caller, delivery_id)

    return router
