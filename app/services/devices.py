"""Devices of a tenant: create, edit, delete, credentials."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from sqlalchemy import func, or_, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.bus import DeviceChanged, EventBus
from app.db import Database
from app.models.schemas import DeviceCreate, DeviceCredentials, DevicePublic, DeviceStatus, DeviceUpdate, Principal
from app.models.tables import Device
from app.services import audit
from app.services.credentials import mosquitto_hash, new_device_token, token_sha256
from app.services.errors import InvalidInput, NotFound
from app.services.permissions import Permission, require

DEVICE_CHANNEL = 'gito_device_changed'


@dataclass(frozen=True)
class DeviceEndpoints:
    """Where devices reach Gito, for the ready-to-paste commands shown with new credentials."""

    mqtt_host: str
    mqtt_port: int
    http_base_url: str


def to_public(device: Device) -> DevicePublic:
    return DevicePublic.model_validate({**device.model_dump(exclude={'metadata_'}), 'metadata': device.metadata_})


class DeviceService:
    def __init__(self, db: Database, bus: EventBus, endpoints: DeviceEndpoints) -> None:
        self._db = db
        self._bus = bus
        self._endpoints = endpoints

    async def create(self, principal: Principal, data: DeviceCreate) -> tuple[DevicePublic, DeviceCredentials]:
        _require_writer(principal)
        name = _clean_name(data.name)
        token = new_device_token()
        device = Device(
            tenant_id=principal.tenant_id, name=name, type=data.type.strip() or 'generic',
            token_sha256=token_sha256(token), mqtt_password_hash=mosquitto_hash(token),
            metadata_=data.metadata, offline_after_s=data.offline_after_s,
        )
        async with self._db.tenant(principal.tenant_id) as session:
            session.add(device)
            await session.flush()
            await _notify(session, device.id)
            public = to_public(device)
            await audit.record(session, principal, 'device.create', 'device', device.id, after=_snapshot(public))
        self._changed(public, 'created')
        return public, self.credentials(public, token)

    async def list(
        self, principal: Principal, *, search: str = '', status: DeviceStatus | None = None,
        limit: int = 500, offset: int = 0,
    ) -> list[DevicePublic]:
        query = select(Device).where(col(Device.tenant_id) == principal.tenant_id)
        if search.strip():
            pattern = f'%{search.strip()}%'
            query = query.where(or_(col(Device.name).ilike(pattern), col(Device.type).ilike(pattern)))
        if status is not None:
            query = query.where(col(Device.status) == status)
        query = query.order_by(func.lower(col(Device.name)), col(Device.id)).limit(limit).offset(offset)
        async with self._db.tenant(principal.tenant_id) as session:
            return [to_public(device) for device in await session.scalars(query)]

    async def count(self, principal: Principal) -> int:
        async with self._db.tenant(principal.tenant_id) as session:
            query = select(func.count()).select_from(Device).where(col(Device.tenant_id) == principal.tenant_id)
            return int(await session.scalar(query) or 0)

    async def get(self, principal: Principal, device_id: UUID) -> DevicePublic:
        async with self._db.tenant(principal.tenant_id) as session:
            return to_public(await _load(session, principal, device_id))

    async def update(self, principal: Principal, device_id: UUID, data: DeviceUpdate) -> DevicePublic:
        _require_writer(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            device = await _load(session, principal, device_id)
            before = _snapshot(to_public(device))
            if data.name is not None:
                device.name = _clean_name(data.name)
            if data.type is not None:
                device.type = data.type.strip() or 'generic'
            if data.metadata is not None:
                device.metadata_ = data.metadata
            if 'offline_after_s' in data.model_fields_set:
                device.offline_after_s = data.offline_after_s
            await session.flush()
            await _notify(session, device.id)
            public = to_public(device)
            await audit.record(session, principal, 'device.update', 'device', device.id, before=before,
                               after=_snapshot(public))
        self._changed(public, 'updated')
        return public

    async def delete(self, principal: Principal, device_id: UUID) -> None:
        _require_writer(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            device = await _load(session, principal, device_id)
            # telemetry has no foreign key (a hypertable/partitioned table cannot carry one cheaply); the function
            # (migration 0014) deletes the rows and series of the layout in use
            await session.execute(text('SELECT gito_delete_device_telemetry(:tenant, :device)'),
                                  {'tenant': principal.tenant_id, 'device': device_id})
            await audit.record(session, principal, 'device.delete', 'device', device_id,
                               before=_snapshot(to_public(device)))
            await session.delete(device)
            await _notify(session, device_id)
        self._bus.device_changed.publish(
            DeviceChanged(tenant_id=principal.tenant_id, device_id=device_id, change='deleted'),
        )

    async def rotate_token(self, principal: Principal, device_id: UUID) -> DeviceCredentials:
        """A new token; the old one stops working at once, over HTTP and (after the broker reloads) MQTT."""
        _require_writer(principal)
        token = new_device_token()
        async with self._db.tenant(principal.tenant_id) as session:
            device = await _load(session, principal, device_id)
            device.token_sha256 = token_sha256(token)
            device.mqtt_password_hash = mosquitto_hash(token)
            await session.flush()
            await _notify(session, device.id)
            public = to_public(device)
            await audit.record(session, principal, 'device.rotate_token', 'device', device.id)
        self._changed(public, 'updated')
        return self.credentials(public, token)

    async def set_disabled(self, principal: Principal, device_id: UUID, disabled: bool) -> DevicePublic:
        """A disabled device's data is refused (HTTP 403, MQTT dropped) and the managed broker disconnects it."""
        _require_writer(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            device = await _load(session, principal, device_id)
            if device.disabled == disabled:
                return to_public(device)
            device.disabled = disabled
            await session.flush()
            await _notify(session, device.id)
            public = to_public(device)
            await audit.record(session, principal, 'device.disable' if disabled else 'device.enable', 'device',
                               device.id, before={'disabled': not disabled}, after={'disabled': disabled})
        self._changed(public, 'updated')
        return public

    def _changed(self, device: DevicePublic, change: Literal['created', 'updated']) -> None:
        self._bus.device_changed.publish(DeviceChanged(tenant_id=device.tenant_id, device_id=device.id, change=change))

    def credentials(self, device: DevicePublic, token: str) -> DeviceCredentials:
        host, port = self._endpoints.mqtt_host, self._endpoints.mqtt_port
        topic = f'{device.tenant_id}/devices/{device.id}/telemetry'
        http_url = f'{self._endpoints.http_base_url.rstrip("/")}/api/v1/devices/{device.id}/telemetry'
        sample = '{"temperature": 21.5, "humidity": 40}'
        mosquitto_pub = shlex.join([
            'mosquitto_pub', '-h', host, '-p', str(port), '-q', '1', '-i', f'dev-{device.id}',
            '-u', str(device.id), '-P', token, '-t', topic, '-m', sample,
        ])
        curl = shlex.join([
            'curl', '-sS', '-X', 'POST', http_url, '-H', f'Authorization: Bearer {token}',
            '-H', 'Content-Type: application/json', '-d', sample,
        ])
        return DeviceCredentials(
            device_id=device.id, tenant_id=device.tenant_id, token=token, mqtt_host=host, mqtt_port=port,
            mqtt_username=str(device.id), telemetry_topic=topic, http_url=http_url,
            mosquitto_pub=mosquitto_pub, curl=curl,
        )


async def _load(session: AsyncSession, principal: Principal, device_id: UUID) -> Device:
    device = await session.get(Device, device_id)
    if device is None or device.tenant_id != principal.tenant_id:
        raise NotFound(f'Unknown device {device_id}.', field='device_id')
    return device


async def _notify(session: AsyncSession, device_id: UUID) -> None:
    """Tell every Gito process (CLI included) at commit that a device's credentials may have changed."""
    await session.execute(text(f"SELECT pg_notify('{DEVICE_CHANNEL}', :device)"), {'device': str(device_id)})


def _clean_name(name: str) -> str:
    if not name.strip():
        raise InvalidInput('A device needs a name.', field='name')
    return name.strip()


def _require_writer(principal: Principal) -> None:
    require(principal, Permission.MANAGE_DEVICES)


def _snapshot(device: DevicePublic) -> dict[str, object]:
    return {'name': device.name, 'type': device.type, 'metadata': device.metadata,
            'offline_after_s': device.offline_after_s}
