"""Rules: the list, and an editor (new or existing) with per-type forms and a backtest before saving."""

from __future__ import annotations

import contextlib
from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import Client, ui

from app.components.device_form import confirm
from app.components.frame import TOUCH, frame
from app.components.rule_form import RuleForm
from app.models.rules import RulePublic, describe
from app.models.schemas import Principal
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError, NotFound
from app.services.permissions import Permission, can
from app.services.rules.backtest import BacktestResult


def rule_list(platform: Platform, principal: Principal, rules: list[RulePublic], devices: dict[str, str]) -> None:
    editable = can(principal, Permission.MANAGE_RULES)
    with ui.row().classes('w-full items-center gap-3'):
        ui.label('Rules').classes('text-2xl font-semibold')
        ui.space()
        ui.button('Maintenance windows', icon='construction', on_click=lambda: ui.navigate.to('/maintenance')) \
            .props('outline').classes(TOUCH).mark('maintenance-link')
        if editable:
            ui.button('New rule', icon='add', on_click=lambda: ui.navigate.to('/rules/new')).classes(TOUCH) \
                .mark('new-rule')
    if not rules:
        ui.label('No rules yet.').classes('text-grey-8').mark('rules-empty')
    for rule in rules:
        scope = devices.get(str(rule.scope.device_id), '?') if rule.scope.kind == 'device' else \
            f'type {rule.scope.device_type}' if rule.scope.kind == 'device_type' else 'all devices'
        with ui.card().classes('w-full p-3').mark(f'rule-{rule.id}'), \
                ui.row().classes('w-full items-center gap-3 flex-wrap'):
            ui.badge(rule.severity).classes('text-sm px-2 py-1')
            with ui.column().classes('gap-0 grow'):
                ui.label(rule.name + ('' if rule.enabled else ' (disabled)')).classes('text-base font-medium')
                ui.label(f'{describe(rule.condition)} · {scope}').classes('text-sm text-grey-8')
            if editable:
                ui.button('Edit', icon='edit', on_click=lambda r=rule.id: ui.navigate.to(f'/rules/{r}')) \
                    .props('outline').classes(TOUCH).mark(f'edit-{rule.id}')


class RuleEditor:
    def __init__(self, platform: Platform, principal: Principal, devices: dict[str, str],
                 rule: RulePublic | None) -> None:
        self.platform = platform
        self.principal = principal
        self.rule = rule
        ui.link('← Rules', '/rules').classes('text-base min-h-[32px]')
        ui.label(rule.name if rule else 'New rule').classes('text-2xl font-semibold')
        self.form = RuleForm(devices, rule)
        with ui.row().classes('w-full items-center gap-3'):
            ui.button('Backtest', icon='history', on_click=self.backtest).props('outline').classes(TOUCH) \
                .mark('backtest')
            ui.button('Save', icon='save', on_click=self.save).classes(TOUCH).mark('save-rule')
            if rule is not None:
                ui.button('Delete', icon='delete', color='negative', on_click=self.delete).props('outline') \
                    .classes(TOUCH).mark('delete-rule')
        self.result = ui.column().classes('w-full gap-1').mark('backtest-result')

    async def backtest(self) -> None:
        data = self.form.build()
        if data is None:
            return
        try:
            self.show(await self.platform.backtest.run(self.principal, data))
        except DomainError as error:
            self.form.show_error(error.field, str(error))

    def show(self, result: BacktestResult) -> None:
        self.result.clear()
        with self.result:
            ui.label(f'Would have raised {result.total_24h} alarm{"s" if result.total_24h != 1 else ""} in the '
                     f'last 24 h and {result.total_7d} in the last 7 d.').classes('text-base font-medium')
            for device in result.devices:
                ui.label(f'{device.device_name}: {device.last_24h} in 24 h, {device.last_7d} in 7 d') \
                    .classes('text-sm')
            if result.truncated:
                ui.label(f'Only the first {result.readings} readings were replayed.').classes('text-sm text-grey-8')

    async def save(self) -> None:
        data = self.form.build()
        if data is None:
            return
        try:
            if self.rule is None:
                await self.platform.rules.create(self.principal, data)
            else:
                await self.platform.rules.update(self.principal, self.rule.id, data)
        except DomainError as error:
            self.form.show_error(error.field, str(error))
            ui.notify(str(error), type='negative')
            return
        ui.notify('Rule saved', type='positive')
        ui.navigate.to('/rules')

    async def delete(self) -> None:
        assert self.rule is not None
        if not await confirm(f'Delete “{self.rule.name}”?', action='Delete rule', marker='confirm-delete-rule',
                             detail='Its alarms are deleted too.'):
            return
        try:
            await self.platform.rules.delete(self.principal, self.rule.id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        ui.navigate.to('/rules')


def register(platform: Platform) -> None:
    @ui.page('/rules')
    async def rules_page() -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        devices = {str(d.id): d.name for d in await platform.devices.list(principal, limit=500)}
        with frame(title='Rules', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            rule_list(platform, principal, await platform.rules.all(principal), devices)
        return None

    @ui.page('/rules/{rule_id}')
    async def rule_page(rule_id: str, client: Client) -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        devices = {str(d.id): d.name for d in await platform.devices.list(principal, limit=500)}
        rule: RulePublic | None = None
        if rule_id != 'new':
            with contextlib.suppress(ValueError, NotFound):
                rule = await platform.rules.get(principal, UUID(rule_id))
        with frame(title='Rule', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            if rule is None and rule_id != 'new':
                ui.label('Rule not found').classes('text-2xl font-semibold').mark('rule-not-found')
                ui.link('← Rules', '/rules')
                return None
            RuleEditor(platform, principal, devices, rule)
        return None
