"""The audit log page for admins: search by actor, action, target and time range; export as CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.formatting import utc_time
from app.components.frame import TOUCH, frame
from app.models.schemas import Principal
from app.pages import session
from app.platform import Platform
from app.services.audit import AuditPublic, AuditQuery, to_csv
from app.services.audit_retention import MAX_DAYS, MIN_DAYS
from app.services.errors import DomainError
from app.services.permissions import Permission, can

COLUMNS = [
    {'name': 'at', 'label': 'When (UTC)', 'field': 'at', 'align': 'left'},
    {'name': 'actor', 'label': 'Who', 'field': 'actor', 'align': 'left'},
    {'name': 'action', 'label': 'Action', 'field': 'action', 'align': 'left'},
    {'name': 'target', 'label': 'Target', 'field': 'target', 'align': 'left'},
    {'name': 'change', 'label': 'Before → after', 'field': 'change', 'align': 'left'},
    {'name': 'ip', 'label': 'From', 'field': 'ip', 'align': 'left'},
]


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, '%Y-%m-%d').replace(tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day


def _row(entry: AuditPublic) -> dict[str, str]:
    change = ' → '.join(json.dumps(side, sort_keys=True) for side in (entry.before, entry.after) if side is not None)
    return {'id': str(entry.id), 'at': utc_time(entry.at), 'actor': entry.actor_email or 'system',
            'action': entry.action, 'target': f'{entry.target_type} {entry.target_id}'.strip(),
            'change': change[:300], 'ip': entry.ip}


class AuditView:
    def __init__(self, platform: Platform, principal: Principal) -> None:
        self.platform = platform
        self.principal = principal
        with ui.row().classes('w-full items-end gap-3 flex-wrap').mark('audit-search'):
            self.actor = ui.input('Who (e-mail)').props('outlined dense clearable').mark('audit-actor')
            self.action = ui.input('Action').props('outlined dense clearable').mark('audit-action')
            self.target = ui.input('Target').props('outlined dense clearable').mark('audit-target')
            self.since = ui.input('From (YYYY-MM-DD)').props('outlined dense clearable').mark('audit-since')
            self.until = ui.input('To (YYYY-MM-DD)').props('outlined dense clearable').mark('audit-until')
            ui.button('Search', icon='search', on_click=self.refresh).classes(TOUCH).mark('audit-run')
            ui.button('Export CSV', icon='download', on_click=self.export).props('outline') \
                .classes(TOUCH).mark('audit-export')
        self.table = ui.table(columns=COLUMNS, rows=[], row_key='id').classes('w-full').mark('audit-table')

    def query(self, limit: int = 500) -> AuditQuery:
        return AuditQuery(actor=self.actor.value or '', action=self.action.value or '',
                          target=self.target.value or '', since=_day(self.since.value),
                          until=_day(self.until.value, end=True), limit=limit)

    async def refresh(self) -> None:
        try:
            entries = await self.platform.audit.search(self.principal, self.query())
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        self.table.rows = [_row(entry) for entry in entries]
        self.table.update()

    async def export(self) -> None:
        entries = await self.platform.audit.search(self.principal, self.query(limit=5000))
        ui.download.content(to_csv(entries).encode(), 'audit.csv', media_type='text/csv')


def register(platform: Platform) -> None:
    @ui.page('/audit')
    async def audit_page() -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        with frame(title='Audit log', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            ui.label('Audit log').classes('text-2xl font-semibold')
            if not can(principal, Permission.VIEW_AUDIT):
                ui.label('Only an admin can read the audit log.').classes('text-grey-8').mark('not-allowed')
                return None
            await retention_row(platform, principal)
            view = AuditView(platform, principal)
            await view.refresh()
        return None


async def retention_row(platform: Platform, principal: Principal) -> None:
    """How many days entries are kept (empty: the installation's default)."""
    retention = await platform.audit_retention.get(principal)
    default = platform.audit_retention.default_days
    with ui.row().classes('items-end gap-3 flex-wrap').mark('audit-retention'):
        days = ui.number(f'Keep entries for (days; empty: {default})', min=MIN_DAYS, max=MAX_DAYS, precision=0,
                         value=None if retention.default else retention.days) \
            .props('outlined dense clearable').classes('w-72').mark('retention-days')

        async def save() -> None:
            try:
                kept = await platform.audit_retention.set(principal, int(days.value) if days.value else None)
            except DomainError as error:
                days.error = str(error)
                ui.notify(str(error), type='negative')
                return
            days.error = None
            ui.notify(f'Audit entries are kept for {kept.days} days.', type='positive')

        ui.button('Save', on_click=save).props('outline').classes(TOUCH).mark('save-retention')
