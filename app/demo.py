"""Demo data: a tenant, an admin and simulated devices publishing live, for a first look (`gito serve --demo`)."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from sqlalchemy import func, select

from app.models.schemas import DeviceCreate, Principal
from app.models.tables import User
from app.platform import Platform
from app.simulator import SimulatedDevice, simulate

log = logging.getLogger(__name__)

DEMO_EMAIL = 'demo@gito.local'
DEMO_PASSWORD = 'gito-demo-password'  # noqa: S105 - the documented demo login
KINDS = ('climate', 'ac_meter', 'dc_meter')
TYPES = {'climate': 'climate-sensor', 'ac_meter': 'ac-power-meter', 'dc_meter': 'dc-power-meter'}


async def create_simulated_devices(
    platform: Platform, *, count: int, tenant_id: UUID | None,
) -> tuple[list[SimulatedDevice], str, int]:
    """New devices for the simulator (tokens exist only in memory); returns them with the broker address."""
    if tenant_id is None:
        tenant_id = (await platform.tenants.create('Simulation')).id
    principal = Principal(tenant_id=tenant_id, user_id=None, role='admin', email='simulator')
    existing = await platform.devices.count(principal)
    fleet: list[SimulatedDevice] = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        device, credentials = await platform.devices.create(
            principal, DeviceCreate(name=f'sim-{kind}-{existing + index + 1:04d}', type=TYPES[kind]),
        )
        fleet.append(SimulatedDevice(device_id=str(device.id), tenant_id=str(tenant_id),
                                     token=credentials.token, kind=kind))  # type: ignore[arg-type]
    return fleet, platform.mqtt_target.host, platform.mqtt_target.port


async def start_demo(platform: Platform) -> None:
    """Seed once (a demo admin and six devices), then simulate them in the background of this process."""
    async with platform.db.system() as session:
        demo_user = (await session.execute(select(User).where(func.lower(User.email) == DEMO_EMAIL))).scalar()
    if demo_user is None:
        tenant = await platform.tenants.create('Demo')
        await platform.users.create_in_tenant(tenant.id, email=DEMO_EMAIL, password=DEMO_PASSWORD, role='admin')
        tenant_id = tenant.id
    else:
        tenant_id = demo_user.tenant_id
    principal = Principal(tenant_id=tenant_id, user_id=None, role='admin')
    # Tokens are stored hashed, so the demo rotates its devices' tokens at every start and keeps their history.
    kind_of = {device_type: kind for kind, device_type in TYPES.items()}
    fleet = [
        SimulatedDevice(device_id=str(device.id), tenant_id=str(tenant_id), kind=kind_of[device.type],  # type: ignore[arg-type]
                        token=(await platform.devices.rotate_token(principal, device.id)).token)
        for device in await platform.devices.list(principal) if device.type in kind_of
    ]
    if not fleet:
        fleet, _, _ = await create_simulated_devices(platform, count=6, tenant_id=tenant_id)
    await asyncio.sleep(1.0)  # let the managed broker load the new credentials
    log.info('demo running', extra={'login': DEMO_EMAIL, 'devices': len(fleet)})
    platform.background(simulate(
        fleet, mqtt_host=platform.mqtt_target.host, mqtt_port=platform.mqtt_target.port, interval_s=2.0))
