"""User management for admins: list, add with a role, change role, disable and enable."""

from __future__ import annotations

from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.frame import TOUCH, frame
from app.models.schemas import ROLES, Principal, Role, UserPublic
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError
from app.services.permissions import Permission, can


class UsersView:
    def __init__(self, platform: Platform, principal: Principal) -> None:
        self.platform = platform
        self.principal = principal
        with ui.row().classes('w-full items-end gap-3 flex-wrap'):
            self.email = ui.input('E-mail').props('type=email outlined dense').classes('w-64').mark('new-email')
            self.password = ui.input('Initial password', password=True).props('outlined dense') \
                .classes('w-56').mark('new-password')
            self.role = ui.select(list(ROLES), value='viewer', label='Role').props('outlined dense') \
                .classes('w-40').mark('new-role')
            ui.button('Add user', icon='person_add', on_click=self.add).classes(TOUCH).mark('add-user')
        self.table = ui.column().classes('w-full gap-1').mark('user-list')

    async def refresh(self) -> None:
        users = await self.platform.users.list(self.principal)
        self.table.clear()
        with self.table:
            for user in users:
                self.row(user)

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
