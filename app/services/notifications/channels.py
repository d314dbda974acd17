"""Notification channels of a tenant and its outbound allow-list: admins write, operators read."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from sqlalchemy import text

from app.db import Database
from app.models.notifications import ChannelCreate, ChannelCreated, ChannelPublic, ChannelUpdate, OutboundSettings
from app.models.schemas import Principal
from app.services.errors import InvalidInput, NotFound, PermissionDenied
from app.services.notifications.address_policy import parse_cidrs
from app.services.notifications.signing import SecretBox, new_signing_secret

COLUMNS = ('id, name, kind, enabled, recipients, url, secret_encrypted, severities, rule_ids, on_raise, '
           'on_acknowledge, on_clear, created_at')
EDITABLE = ('name', 'enabled', 'recipients', 'url', 'severities', 'rule_ids', 'on_raise', 'on_acknowledge',
            'on_clear')


def require_admin(principal: Principal) -> None:
    if principal.role != 'admin':
        raise PermissionDenied('Only an admin can change notification channels.')


def require_reader(principal: Principal) -> None:
    if principal.role not in ('admin', 'operator'):
        raise PermissionDenied('Only admins and operators can see notifications.')


class ChannelService:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    async def create(self, principal: Principal, data: ChannelCreate) -> ChannelCreated:
        require_admin(principal)
        values = _validated(data.model_dump())
        secret, sealed = None, None
        if data.kind == 'webhook':
            secret = new_signing_secret()
            sealed = self._box.seal(secret)
        elif data.kind == 'slack':
            sealed, values['url'] = self._box.seal(values['url']), None
        values |= {'id': uuid4(), 'tenant': principal.tenant_id, 'kind': data.kind, 'sealed': sealed}
        async with self._db.tenant(principal.tenant_id) as session:
            row = (await session.execute(text(f"""
                INSERT INTO notification_channels (id, tenant_id, {', '.join(EDITABLE)}, kind, secret_encrypted)
                VALUES (:id, :tenant, {', '.join(':' + c for c in EDITABLE)}, :kind, :sealed)
                RETURNING {COLUMNS}"""), values)).one()
        return ChannelCreated(channel=self._public(row._mapping), signing_secret=secret)

    async def list(self, principal: Principal) -> list[ChannelPublic]:
        require_reader(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.execute(text(f'SELECT {COLUMNS} FROM notification_channels ORDER BY name, id'))
            return [self._public(row._mapping) for row in rows]

    async def get(self, principal: Principal, channel_id: UUID) -> ChannelPublic:
        require_reader(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            row = (await session.execute(text(f'SELECT {COLUMNS} FROM notification_channels WHERE id = :id'),
                                         {'id': channel_id})).one_or_none()
        if row is None:
            raise NotFound('No such notification channel.')
        return self._public(row._mapping)

    async def update(self, principal: Principal, channel_id: UUID, data: ChannelUpdate) -> ChannelPublic:
        require_admin(principal)
        current = await self.get(principal, channel_id)
        changes = data.model_dump(exclude_unset=True, exclude={'all_rules'})
        if data.all_rules:
            changes['rule_ids'] = None
        merged = _validated({**current.model_dump(), 'url': changes.get('url', 'https://unchanged.invalid/'),
                             **{k: v for k, v in changes.items() if k != 'url'}})
        values = {k: merged[k] for k in changes if k != 'url'}
        if 'url' in changes:
            url = _validated({**current.model_dump(), 'url': changes['url']})['url']
            if current.kind == 'slack':
                values['secret_encrypted'] = self._box.seal(url)
            else:
                values['url'] = url
        if values:
            assignments = ', '.join(f'{column} = :{column}' for column in values)
            async with self._db.tenant(principal.tenant_id) as session:
                await session.execute(text(f'UPDATE notification_channels SET {assignments} WHERE id = :id'),
                                      {**values, 'id': channel_id})
        return await self.get(principal, channel_id)

    async def delete(self, principal: Principal, channel_id: UUID) -> None:
        require_admin(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            result = await session.execute(text('DELETE FROM notification_channels WHERE id = :id'),
                                           {'id': channel_id})
        if not getattr(result, 'rowcount', 0):
            raise NotFound('No such notification channel.')

    async def outbound_settings(self, principal: Principal) -> OutboundSettings:
        require_reader(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            cidrs = await session.scalar(text('SELECT allowed_cidrs FROM notification_settings'))
        return OutboundSettings(allowed_cidrs=list(cidrs or []))

    async def set_outbound_settings(self, principal: Principal, data: OutboundSettings) -> OutboundSettings:
        """Explicitly allow outbound HTTP to private ranges (on-prem receivers); metadata stays blocked."""
        require_admin(principal)
        try:
            cidrs = [str(network) for network in parse_cidrs(data.allowed_cidrs)]
        except ValueError as error:
            raise InvalidInput('Enter address ranges like 10.0.0.0/8 or 192.168.1.20.', field='allowed_cidrs') \
                from error
        async with self._db.tenant(principal.tenant_id) as session:
            await session.execute(text("""
                INSERT INTO notification_settings (tenant_id, allowed_cidrs) VALUES (:tenant, :cidrs)
                ON CONFLICT (tenant_id) DO UPDATE SET allowed_cidrs = EXCLUDED.allowed_cidrs"""),
                {'tenant': principal.tenant_id, 'cidrs': cidrs})
        return OutboundSettings(allowed_cidrs=cidrs)

    def _public(self, row: Any) -> ChannelPublic:
        url = row['url']
        if row['kind'] == 'slack' and row['secret_encrypted']:
            url = mask_url(self._box.open(row['secret_encrypted']))
        return ChannelPublic.model_validate({**{k: row[k] for k in row if k != 'secret_encrypted'}, 'url': url})


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    return f'{parts.scheme}://{parts.hostname}/…{url[-4:]}' if len(url) > 12 else '…'


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    name = str(values.get('name') or '').strip()
    if not name:
        raise InvalidInput('Give the channel a name.', field='name')
    values['name'] = name
    if not values.get('severities'):
        raise InvalidInput('Choose at least one severity.', field='severities')
    recipients = [r.strip() for r in values.get('recipients') or [] if r.strip()]
    if values['kind'] == 'email' and (not recipients or any('@' not in r for r in recipients)):
        raise InvalidInput('Enter one or more email addresses.', field='recipients')
    values['recipients'] = recipients
    url = (values.get('url') or '').strip()
    if values['kind'] != 'email' and (urlsplit(url).scheme not in ('http', 'https') or not urlsplit(url).hostname):
        raise InvalidInput('Enter an http or https URL.', field='url')
    values['url'] = url or None
    return values
