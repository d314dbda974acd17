"""Device HTTP ingest: one JSON object or an array of them, with the device's own token.

Answered only after the batch that holds the data is committed (202), so a device may forget what it sent.
Bad payloads are refused with the reason and counted on the device, as over MQTT.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from app.api.problems import problem_responses
from app.api.security import device_scheme
from app.ingest.batch_items import Inbound, Rejection
from app.ingest.directory import DeviceEntry
from app.ingest.payload import MAX_PAYLOAD_BYTES, Message, PayloadError, decode, excerpt
from app.ingest.writer import BatchWriter
from app.logs import Throttled
from app.platform import Platform
from app.services.errors import AuthenticationFailed, DomainError, PermissionDenied, Unavailable
from app.services.ingest_keys import MAX_KEY_LENGTH
from app.services.rate_limits import take_tenant

log = logging.getLogger(__name__)
LOG_REJECTED = Throttled(log, logging.INFO, 'payload rejected')

COMMIT_TIMEOUT_S = 10.0
REJECTION_TIMEOUT_S = 1.0
WRONG_TOKEN = 'Unknown device or wrong device token.'  # noqa: S105
UNAVAILABLE = 'Telemetry storage is unavailable right now; nothing was stored. Retry shortly.'
TOO_LARGE = f'The payload is larger than {MAX_PAYLOAD_BYTES} bytes; send fewer readings per request.'

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(device_scheme())]


class InvalidPayload(DomainError):
    status = 400
    title = 'Invalid payload'


class PayloadTooLarge(DomainError):
    status = 413
    title = 'Payload too large'


class IngestAccepted(BaseModel):
    accepted: int
    points: int


PAYLOAD_SCHEMA: dict[str, Any] = {
    'requestBody': {'required': True, 'content': {'application/json': {
        'schema': {'oneOf': [{'type': 'object'}, {'type': 'array', 'items': {'type': 'object'}}]},
        'example': {'temperature': 21.5, 'door_open': False, 'ts': '2026-01-01T12:00:00Z'},
    }}},
}


async def authenticate(
    platform: Platform, device_id: UUID, credentials: HTTPAuthorizationCredentials | None,
) -> DeviceEntry:
    """The same answer whether the device is unknown or the token wrong."""
    token = credentials.credentials if credentials is not None else ''
    entry = await platform.directory.authenticate(device_id, token) if token else None
    if entry is None:
        raise AuthenticationFailed(WRONG_TOKEN)
    if not entry.tenant_active:
        raise PermissionDenied('This organisation is suspended; telemetry is not accepted.')
    if entry.disabled:
        raise PermissionDenied('This device is disabled; telemetry is not accepted. An operator can enable it.')
    await take_tenant(platform.limits, 'ingest', entry.tenant_id, platform.ingest_limit)  # 429 + Retry-After
    return entry


async def read_body(request: Request) -> bytes:
    """Stop reading as soon as the body is over the limit."""
    length = request.headers.get('content-length', '')
    if length.isdigit() and int(length) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(TOO_LARGE)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(TOO_LARGE)
    return bytes(body)


async def record_rejection(writer: BatchWriter, entry: DeviceEntry, reason: str, body: bytes, at: datetime) -> None:
    """Counted on the device as over MQTT; the device's answer does not wait for a full queue."""
    rejection = Rejection(entry.tenant_id, entry.device_id, reason, excerpt(body), at, payload=body,
                          transport='http')
    try:
        await asyncio.wait_for(writer.submit(rejection), REJECTION_TIMEOUT_S)
    except TimeoutError:
        log.warning('rejection not recorded, queue full', extra={'device_id': str(entry.device_id)})


async def store(writer: BatchWriter, inbound: Inbound) -> None:
    if not writer.healthy:
        raise Unavailable(UNAVAILABLE)
    inbound.done = asyncio.get_running_loop().create_future()
    try:
        async with asyncio.timeout(COMMIT_TIMEOUT_S):
            await writer.submit(inbound)
            await inbound.done
    except TimeoutError:
        log.warning('http ingest commit timed out', extra={'device_id': str(inbound.device_id)})
        raise Unavailable(UNAVAILABLE) from None


def points_in(messages: list[Message]) -> int:
    return sum(len(message.readings) for message in messages)


def ingest_router(platform: Platform) -> APIRouter:
    router = APIRouter(tags=['device ingest'])

    @router.post('/devices/{device_id}/telemetry', status_code=202, openapi_extra=PAYLOAD_SCHEMA,
                 responses=problem_responses(400, 401, 403, 409, 413, 422, 429, 503))
    async def ingest_telemetry(
        device_id: UUID, request: Request, credentials: Credentials, response: Response,
        idempotency_key: Annotated[str | None, Header(
            alias='Idempotency-Key', max_length=MAX_KEY_LENGTH,
            description='Send the same key when retrying: the data is stored once; another body with it: 422.',
        )] = None,
    ) -> IngestAccepted:
        """For devices: `Authorization: Bearer <device token>`; flat JSON of key to value, optional `ts`
        (ms since the epoch or ISO 8601) and `seq`; one object or an array of them."""
        entry = await authenticate(platform, device_id, credentials)
        received_at = datetime.now(UTC)
        try:
            body = await read_body(request)
        except PayloadTooLarge as error:
            await record_rejection(platform.writer, entry, error.message, b'', received_at)
            raise
        try:
            messages = decode(body, received_at=received_at)
        except PayloadError as error:
            LOG_REJECTED(device_id=str(device_id), reason=str(error))
            await record_rejection(platform.writer, entry, str(error), body, received_at)
            raise InvalidPayload(str(error), field=error.field) from None
        accepted = IngestAccepted(accepted=len(messages), points=points_in(messages))
        if idempotency_key is not None:
            claim = await platform.ingest_keys.claim(entry.tenant_id, entry.device_id, idempotency_key, body=body,
                                                     accepted=accepted.accepted, points=accepted.points)
            if claim.outcome == 'repeat':
                response.headers['Idempotent-Replayed'] = 'true'
                return IngestAccepted(accepted=claim.accepted, points=claim.points)
        try:
            await store(platform.writer, Inbound(entry.tenant_id, entry.device_id, messages, received_at,
                                                 idempotency_key=idempotency_key, payload=body, transport='http'))
        except Unavailable:
            if idempotency_key is not None:
                await platform.ingest_keys.release(entry.tenant_id, entry.device_id, idempotency_key)
            raise
        return accepted

    return router

