"""The signed-in user's own account: change password, API tokens, open sessions, log out everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.formatting import relative_time
from app.components.frame import TOUCH, frame
from app.models.schemas import ROLES, Principal, Role
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError
from app.services.permissions import ROLE_RANK


def password_card(platform: Platform, principal: Principal) -> None:
    with ui.card().classes('w-full max-w-md gap-2'):
        ui.label('Change password').classes('text-lg font-semibold')
        current = ui.input('Current password', password=True).classes('w-full').mark('current-password')
        new = ui.input('New password', password=True, password_toggle_button=True) \
            .classes('w-full').mark('new-password')
        again = ui.input('New password again', password=True).classes('w-full').mark('new-password-again')

        async def change() -> None:
            if new.value != again.value:
                ui.notify('The new passwords do not match.', type='negative')
                return
            try:
                await platform.users.change_password(principal, current=current.value or '', new=new.value or '',
                                                     keep_token=session.current_token())
            except DomainError as error:
                ui.notify(str(error), type='negative')
                return
            for field in (current, new, again):
                field.value = ''
            ui.notify('Password changed; your other sessions were signed out.', type='positive')

        ui.button('Change password', on_click=change).classes(TOUCH).mark('change-password')


class TokensCard:
    """Named API tokens: create (shown once), list with last use, revoke."""

    def __init__(self, platform: Platform, principal: Principal) -> None:
        self.platform = platform
        self.principal = principal
        roles = [role for role in ROLES if ROLE_RANK[role] <= ROLE_RANK[principal.role]]
        with ui.card().classes('w-full gap-2'):
            ui.label('API tokens').classes('text-lg font-semibold')
            with ui.row().classes('items-end gap-3 flex-wrap'):
                self.name = ui.input('Token name').props('outlined dense').mark('token-name')
                self.role = ui.select(roles, value=principal.role, label='Role').props('outlined dense') \
                    .classes('w-40').mark('token-role')
                self.days = ui.number('Expires after (days)', min=1, max=3650, precision=0) \
                    .props('outlined dense clearable').classes('w-44').mark('token-days')
                ui.button('Create token', icon='key', on_click=self.create).classes(TOUCH).mark('create-token')
            self.shown = ui.column().classes('w-full')
            self.rows = ui.column().classes('w-full gap-1').mark('token-list')

    async def create(self) -> None:
        role: Role = self.role.value
        days = self.days.value
        expires = datetime.now(UTC) + timedelta(days=int(days)) if days else None
        try:
            _, token = await self.platform.api_tokens.create(self.principal, name=self.name.value or '', role=role,
                                                             expires_at=expires)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        self.shown.clear()
        with self.shown:
            ui.label('Copy the token now; it is not shown again.').classes('text-warning')
            ui.code(token).classes('w-full').mark('new-token')
        self.name.value = ''
        await self.refresh()

    async def refresh(self) -> None:
        self.rows.clear()
        with self.rows:
            for info in await self.platform.api_tokens.list(self.principal):
                with ui.row().classes('items-center gap-3').mark(f"token-{'-'.join(info.name.split())}"):
                    ui.label(info.name).classes('font-medium')
                    ui.label(info.role).classes('text-grey-8')
                    ui.label(f'used {relative_time(info.last_used_at)}').classes('text-sm text-grey-8')
                    if info.expires_at is not None:
                        ui.label(f'expires {info.expires_at:%Y-%m-%d}').classes('text-sm text-grey-8')
                    if info.revoked_at is not None:
                        ui.label('revoked').classes('text-negative')
                    else:
                        ui.button('Revoke', on_click=lambda token_id=info.id: self.revoke(token_id)) \
                            .props('flat no-caps color=negative').mark('revoke-token')

    async def revoke(self, token_id: UUID) -> None:
        await self.platform.api_tokens.revoke(self.principal, token_id)
        await self.refresh()


async def sessions_card(platform: Platform, principal: Principal) -> None:
    with ui.card().classes('w-full gap-2'):
        ui.label('Where you are signed in').classes('text-lg font-semibold')
        for info in await platform.sessions.list(principal, current_token=session.current_token()):
            with ui.row().classes('items-center gap-3').mark('session-row'):
                ui.label(info.user_agent[:80] or 'Unknown browser').classes('text-sm')
                ui.label(info.ip or '').classes('text-sm text-grey-8')
                ui.label(f'active {relative_time(info.last_seen)}').classes('text-sm text-grey-8')
                if info.current:
                    ui.badge('this browser')

        async def everywhere() -> None:
            await platform.sessions.revoke_all(principal)
            ui.navigate.to('/login')

        ui.button('Log out everywhere', icon='logout', on_click=everywhere, color='negative') \
            .classes(TOUCH).mark('logout-everywhere')


def register(platform: Platform) -> None:
    @ui.page('/account')
    async def account_page() -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        with frame(title='Account', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            ui.label('Your account').classes('text-2xl font-semibold')
            ui.label(f'{principal.email} · {principal.role}').classes('text-grey-8').mark('account-role')
            password_card(platform, principal)
            tokens = TokensCard(platform, principal)
            await tokens.refresh()
            await sessions_card(platform, principal)
        return None
