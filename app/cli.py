"""The `gito` command: serve, migrate, and the administrative shortcuts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import typer

from app.config import Settings

cli = typer.Typer(help='Gito: IoT monitoring and device management.', no_args_is_help=True, add_completion=False)
tenant_cli = typer.Typer(help='Tenants.', no_args_is_help=True)
user_cli = typer.Typer(help='Users.', no_args_is_help=True)
device_cli = typer.Typer(help='Devices.', no_args_is_help=True)
cli.add_typer(tenant_cli, name='tenant')
cli.add_typer(user_cli, name='user')
cli.add_typer(device_cli, name='device')

T = TypeVar('T')
JsonFlag = Annotated[bool, typer.Option('--json', help='Print one JSON object.')]
JsonListFlag = Annotated[bool, typer.Option('--json', help='Print one JSON array.')]
TenantOption = Annotated[UUID, typer.Option(help='Tenant id.')]


def _settings(**overrides: Any) -> Settings:
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _with_platform(action: Callable[[Any], Awaitable[T]]) -> T:
    """Run one administrative action against the configured (or embedded) database."""
    from app.bootstrap import prepare
    from app.platform import Platform

    settings = _settings()
    resolved = prepare(settings)

    async def main() -> T:
        platform = Platform(settings, resolved)
        try:
            return await action(platform)
        finally:
            await platform.db.dispose()

    return asyncio.run(main())


def _fail(message: str) -> None:
    typer.echo(f'error: {message}', err=True)
    raise typer.Exit(code=1)


def _emit(data: dict[str, Any], *, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, default=str) if as_json else text)


def _emit_table(rows: list[dict[str, Any]], columns: tuple[str, ...], *, as_json: bool, empty: str) -> None:
    """A JSON array of every field, or aligned columns with a header line."""
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    if not rows:
        typer.echo(empty)
        return
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(columns)]
    for line in [[column.upper() for column in columns], *cells]:
        typer.echo('  '.join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return '-'
    if isinstance(value, str) and len(value) > 19 and value[10:11] == 'T':  # an ISO timestamp: UTC, to the second
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value).astimezone(UTC).strftime('%Y-%m-%d %H:%M:%SZ')
    return str(value)


def _admin(tenant: UUID) -> Any:
    """The principal the administrative commands act as inside a tenant."""
    from app.models.schemas import Principal

    return Principal(tenant_id=tenant, user_id=None, role='admin', email='cli')


async def _in_tenant(platform: Any, tenant: UUID) -> Any:
    """The admin principal of a tenant that exists (else NotFound naming it)."""
    from app.services.errors import NotFound

    principal = _admin(tenant)
    try:
        await platform.tenants.get(principal)
    except NotFound:
        raise NotFound(f'Unknown tenant {tenant}.', field='tenant') from None
    return principal


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help='Address to listen on (GITO_HOST).')] = None,
    port: Annotated[int | None, typer.Option(help='HTTP port (GITO_PORT).')] = None,
    demo: Annotated[bool, typer.Option(help='Seed a demo tenant with simulated devices.')] = False,
) -> None:
    """Run Gito: web UI, REST API, device ingest and background tasks."""
    from app.ingest.broker import BrokerPortTaken
    from app.main import run

    try:
        run(_settings(host=host, port=port), demo=demo)
    except BrokerPortTaken as error:
        _fail(str(error))


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date (also done by `serve`)."""
    from app.bootstrap import prepare

    prepare(_settings())
    typer.echo('database is up to date')


@tenant_cli.command('create')
def tenant_create(name: str, as_json: JsonFlag = False) -> None:
    """Create a tenant."""
    from app.services.errors import DomainError

    try:
        tenant = _with_platform(lambda p: p.tenants.create(name))
    except DomainError as error:
        _fail(error.message)
    _emit(tenant.model_dump(mode='json'), as_json=as_json, text=f'tenant {tenant.id} created: {tenant.name}')


@tenant_cli.command('list')
def tenant_list(as_json: JsonListFlag = False) -> None:
    """List every tenant with its status and how many devices and users it has."""
    tenants = _with_platform(lambda p: p.platform_admin.tenants())
    _emit_table([tenant.model_dump(mode='json') for tenant in tenants],
                ('id', 'name', 'status', 'devices', 'users', 'created_at'), as_json=as_json, empty='no tenants')


@tenant_cli.command('suspend')
def tenant_suspend(tenant: UUID) -> None:
    """Suspend a tenant: its users cannot sign in (open sessions end) and its devices' data is refused."""
    from app.services.errors import DomainError

    try:
        _with_platform(lambda p: p.platform_admin.set_status(tenant, 'suspended'))
    except DomainError as error:
        _fail(error.message)
    typer.echo(f'tenant {tenant} suspended')


@tenant_cli.command('resume')
def tenant_resume(tenant: UUID) -> None:
    """Make a suspended tenant active again."""
    from app.services.errors import DomainError

    try:
        _with_platform(lambda p: p.platform_admin.set_status(tenant, 'active'))
    except DomainError as error:
        _fail(error.message)
    typer.echo(f'tenant {tenant} resumed')


@tenant_cli.command('delete')
def tenant_delete(
    tenant: UUID,
    yes: Annotated[bool, typer.Option('--yes', help='Really delete everything of this tenant.')] = False,
) -> None:
    """Delete a tenant and all its data (users, devices, telemetry, audit log); cannot be undone."""
    from app.services.errors import DomainError

    if not yes:
        _fail('this deletes the tenant and all its data; repeat with --yes to confirm')
    try:
        _with_platform(lambda p: p.platform_admin.delete(tenant))
    except DomainError as error:
        _fail(error.message)
    typer.echo(f'tenant {tenant} deleted')


@user_cli.command('create')
def user_create(
    tenant: Annotated[UUID, typer.Option(help='Tenant id.')],
    email: Annotated[str, typer.Option(help='E-mail address (the login).')],
    password: Annotated[str, typer.Option(help='Password, at least 10 characters.', prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help='admin, operator, technician or viewer.')] = 'admin',
    as_json: JsonFlag = False,
) -> None:
    """Create a user in a tenant."""
    from app.services.errors import DomainError

    try:
        user = _with_platform(lambda p: p.users.create_in_tenant(tenant, email=email, password=password, role=role))
    except DomainError as error:
        _fail(error.message)
    _emit(user.model_dump(mode='json'), as_json=as_json, text=f'user {user.id} created: {user.email} ({user.role})')


@user_cli.command('list')
def user_list(tenant: TenantOption, as_json: JsonListFlag = False) -> None:
    """List a tenant's users."""
    from app.services.errors import DomainError

    async def users(platform: Any) -> Any:
        return await platform.users.list(await _in_tenant(platform, tenant))

    try:
        found = _with_platform(users)
    except DomainError as error:
        _fail(error.message)
    _emit_table([user.model_dump(mode='json') for user in found], ('id', 'email', 'role', 'disabled', 'created_at'),
                as_json=as_json, empty='no users')


@device_cli.command('list')
def device_list(
    tenant: TenantOption,
    search: Annotated[str, typer.Option(help='Part of the name or type.')] = '',
    status: Annotated[str | None, typer.Option(help='new, online or offline.')] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help='At most this many, by name.')] = 500,
    as_json: JsonListFlag = False,
) -> None:
    """List a tenant's devices, by name, with their status and when they were last seen."""
    from app.services.errors import DomainError

    if status not in (None, 'new', 'online', 'offline'):
        _fail(f'--status must be new, online or offline, not {status!r}')

    async def devices(platform: Any) -> Any:
        return await platform.devices.list(await _in_tenant(platform, tenant), search=search, status=status,
                                           limit=limit)

    try:
        found = _with_platform(devices)
    except DomainError as error:
        _fail(error.message)
    _emit_table([device.model_dump(mode='json') for device in found],
                ('id', 'name', 'type', 'status', 'last_seen', 'messages_received'), as_json=as_json,
                empty='no devices')


@device_cli.command('create')
def device_create(
    name: str,
    tenant: Annotated[UUID, typer.Option(help='Tenant id.')],
    device_type: Annotated[str, typer.Option('--type', help='Device type.')] = 'generic',
    as_json: JsonFlag = False,
) -> None:
    """Create a device and print its credentials (the token is shown only once)."""
    from app.models.schemas import DeviceCreate
    from app.services.errors import DomainError

    try:
        device, credentials = _with_platform(
            lambda p: p.devices.create(_admin(tenant), DeviceCreate(name=name, type=device_type)))
    except DomainError as error:
        _fail(error.message)
    data = {**device.model_dump(mode='json'), **credentials.model_dump(mode='json')}
    _emit(data, as_json=as_json, text=(
        f'device {device.id} created: {device.name}\n'
        f'token (shown once): {credentials.token}\n\n'
        f'MQTT:  {credentials.mosquitto_pub}\nHTTP:  {credentials.curl}'))


@cli.command()
def simulate(
    devices: Annotated[int, typer.Option(help='How many simulated devices.')] = 5,
    interval: Annotated[float, typer.Option(help='Seconds between messages of one device.')] = 1.0,
    tenant: Annotated[UUID | None, typer.Option(help='Tenant to create the devices in (default: a new one).')] = None,
    seconds: Annotated[float | None, typer.Option(help='Stop after this many seconds.')] = None,
    qos: Annotated[int, typer.Option(help='MQTT QoS.')] = 1,
) -> None:
    """Create N devices and publish realistic telemetry for them over MQTT, with sequence numbers and heartbeats."""
    from app.demo import create_simulated_devices
    from app.simulator import SimulationStats
    from app.simulator import simulate as run_simulation

    fleet, host, port = _with_platform(lambda p: create_simulated_devices(p, count=devices, tenant_id=tenant))
    typer.echo(f'publishing for {len(fleet)} devices of tenant {fleet[0].tenant_id} to {host}:{port}', err=True)
    stats = SimulationStats()

    async def main() -> None:
        report = asyncio.create_task(_report(stats))
        try:
            await run_simulation(fleet, mqtt_host=host, mqtt_port=port, interval_s=interval, qos=qos,
                                 duration_s=seconds, stats=stats)
        finally:
            report.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    typer.echo(json.dumps({'published': stats.published, 'telemetry': stats.telemetry, 'errors': stats.errors,
                           'rate': round(stats.rate(), 1)}))


async def _report(stats: Any) -> None:
    while True:
        await asyncio.sleep(5)
        print(f'published {stats.published} messages ({stats.rate():.0f}/s), errors {stats.errors}', file=sys.stderr)


def main() -> None:
    cli()


if __name__ == '__main__':
    main()
