"""User management for admins: invite by e-mail or add with a password, change role, disable and enable."""

from __future__ import annotations

from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.formatting import relative_time
from app.components.frame import TOUCH, frame
from app.models.schemas import ROLES, Principal, Role, UserPublic
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError
from app.services.permissions import Permission, can
from app.services.sessions import SessionInfo


class UsersView:
    def __init__(self, platform: Platform, principal: Principal) -> None:
        self.platform = platform
        self.principal = principal
        with ui.row().classes('w-full items-end gap-3 flex-wrap'):
            self.email = ui.input('E-mail').props('type=email outlined dense').classes('w-64').mark('new-email')
            self.role = ui.select(list(ROLES), value='viewer', label='Role').props('outlined dense') \
                .classes('w-40').mark('new-role')
            ui.button('Invite by e-mail', icon='forward_to_inbox', on_click=self.invite).classes(TOUCH) \
                .mark('invite-user')
            self.password = ui.input('or an initial password', password=True).props('outlined dense') \
                .classes('w-56').mark('new-password')
            ui.button('Add user', icon='person_add', on_click=self.add).props('outline').classes(TOUCH) \
                .mark('add-user')
        self.shown = ui.column().classes('w-full').mark('invite-shown')
        self.table = ui.column().classes('w-full gap-1').mark('user-list')
        ui.label('Pending invitations').classes('text-lg font-semibold')
        self.invites = ui.column().classes('w-full gap-1').mark('invite-list')

    async def refresh(self) -> None:
        users = await self.platform.users.list(self.principal)
        sessions = await self.platform.sessions.list_by_user(self.principal)
        self.table.clear()
        with self.table:
            for user in users:
                self.row(user)
                self.sessions(user, sessions.get(user.id, []))
        self.invites.clear()
        with self.invites:
            for invite in await self.platform.account_links.pending_invites(self.principal):
                with ui.row().classes('w-full items-center gap-3').mark(f'invite-{invite.email}'):
                    ui.label(invite.email).classes('w-72 break-all')
                    ui.label(invite.role).classes('w-40')
                    ui.label(f'expires {invite.expires_at:%Y-%m-%d}').classes('text-sm text-grey-8')
                    ui.button('Revoke', on_click=lambda invite_id=invite.id: self.revoke_invite(invite_id)) \
                        .props('flat no-caps color=negative').classes(TOUCH).mark('revoke-invite')

    def row(self, user: UserPublic) -> None:
        own = user.id == self.principal.user_id
        with ui.row().classes('w-full items-center gap-3 border-b py-1').mark(f'user-{user.email}'):
            ui.label(user.email).classes('w-72 break-all')
            if own:
                ui.label(user.role).classes('w-40')
            else:
                ui.select(list(ROLES), value=user.role,
                          on_change=lambda event, user_id=user.id: self.set_role(user_id, event.value)) \
                    .props('dense outlined').classes('w-40').mark('role-select')
            ui.label('disabled' if user.disabled else 'active') \
                .classes('w-20 ' + ('text-negative' if user.disabled else 'text-positive'))
            if not own:
                label = 'Enable' if user.disabled else 'Disable'
                ui.button(label, on_click=lambda user=user: self.toggle(user)).props('flat no-caps') \
                    .classes(TOUCH).mark('toggle-user')

    def sessions(self, user: UserPublic, sessions: list[SessionInfo]) -> None:
        """The user's live sessions: created, last seen, address; revoke one, or all (also their API sign-ins)."""
        if not sessions:
            return
        with ui.column().classes('w-full pl-6 gap-0 text-sm text-grey-8').mark(f'sessions-{user.email}'):
            for info in sessions:
                with ui.row().classes('items-center gap-3'):
                    ui.label(f'signed in {info.created_at:%Y-%m-%d %H:%M} UTC · active {relative_time(info.last_seen)}')
                    ui.label(info.ip or 'unknown address')
                    ui.label(info.user_agent[:60] or 'unknown browser').classes('max-w-xs truncate')
                    ui.button('Revoke', on_click=lambda info=info: self.revoke_session(user.id, info.id)) \
                        .props('flat dense no-caps color=negative').classes(TOUCH) \
                        .mark(f'revoke-session-{user.email}')
            if user.id != self.principal.user_id:
                ui.button('Log out everywhere', on_click=lambda: self.revoke_user(user.id)) \
                    .props('flat dense no-caps color=negative').classes(TOUCH).mark(f'logout-user-{user.email}')

    async def revoke_session(self, user_id: UUID, session_id: str) -> None:
        try:
            await self.platform.sessions.revoke_session(self.principal, user_id, session_id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
        await self.refresh()

    async def revoke_user(self, user_id: UUID) -> None:
        try:
            await self.platform.sessions.revoke_user(self.principal, user_id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
        await self.refresh()

    async def add(self) -> None:
        role: Role = self.role.value
        try:
            await self.platform.users.create(self.principal, email=self.email.value or '',
                                             password=self.password.value or '', role=role)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        ui.notify(f'{self.email.value} added.', type='positive')
        self.email.value = self.password.value = ''
        await self.refresh()

    async def invite(self) -> None:
        email, role = self.email.value or '', self.role.value
        try:
            sent = await self.platform.account_links.invite(self.principal, email=email, role=role)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        self.shown.clear()
        if sent.emailed:
            ui.notify(f'Invitation e-mailed to {sent.invite.email}.', type='positive')
        else:
            with self.shown:
                ui.label(f'{sent.problem}: the invitation was not e-mailed. Hand this one-time link (valid 7 days) '
                         f'to {sent.invite.email} yourself:').classes('text-warning')
                ui.code(sent.link or '').classes('w-full').mark('invite-link')
        self.email.value = ''
        await self.refresh()

    async def revoke_invite(self, invite_id: UUID) -> None:
        try:
            await self.platform.account_links.revoke_invite(self.principal, invite_id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
        await self.refresh()

    async def set_role(self, user_id: UUID, role: Role) -> None:
        try:
            await self.platform.users.set_role(self.principal, user_id, role)
        except DomainError as error:
            ui.notify(str(error), type='negative')
        await self.refresh()

    async def toggle(self, user: UserPublic) -> None:
        try:
            await self.platform.users.set_disabled(self.principal, user.id, not user.disabled)
        except DomainError as error:
            ui.notify(str(error), type='negative')
        await self.refresh()


def register(platform: Platform) -> None:
    @ui.page('/users')
    async def users_page() -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        with frame(title='Users', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            ui.label('Users').classes('text-2xl font-semibold')
            if not can(principal, Permission.MANAGE_USERS):
                ui.label('Only an admin can manage users.').classes('text-grey-8').mark('not-allowed')
                return None
            view = UsersView(platform, principal)
            await view.refresh()
        return None
