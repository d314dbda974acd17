"""First-run onboarding, sign-in and sign-out."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.frame import TOUCH, bare_frame
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError


def show_error(error: DomainError, fields: dict[str, ui.input]) -> None:
    """Notify, and put the message under the field it concerns when there is one."""
    ui.notify(str(error), type='negative')
    field = fields.get(error.field or '')
    if field is not None:
        field.error = str(error)


def register(platform: Platform) -> None:
    @ui.page('/onboarding')
    async def onboarding_page() -> RedirectResponse | None:
        if not await platform.tenants.needs_onboarding():
            return RedirectResponse('/login')
        with bare_frame('Set up Gito'):
            ui.label('Create your organisation and its first administrator.').classes('text-grey-8')
            organisation = ui.input('Organisation name').props('autofocus').classes('w-full').mark('organisation')
            email = ui.input('Admin e-mail').props('type=email').classes('w-full').mark('email')
            password = ui.input('Password', password=True, password_toggle_button=True) \
                .classes('w-full').mark('password')
            again = ui.input('Password again', password=True, password_toggle_button=True) \
                .classes('w-full').mark('password-again')
            fields = {'tenant_name': organisation, 'email': email, 'password': password}

            async def submit() -> None:
                for field in (*fields.values(), again):
                    field.error = None
                if password.value != again.value:
                    again.error = 'The passwords do not match.'
                    ui.notify('The passwords do not match.', type='negative')
                    return
                try:
                    principal = await platform.tenants.onboard(
                        tenant_name=organisation.value or '', email=email.value or '', password=password.value or '')
                except DomainError as error:
                    show_error(error, fields)
                    return
                await session.sign_in(platform, principal)
                ui.navigate.to('/')

            again.on('keydown.enter', submit)
            ui.button('Create organisation', on_click=submit).classes(f'w-full {TOUCH}').mark('onboard')
        return None

    @ui.page('/login')
    async def login_page() -> RedirectResponse | None:
        if await session.current_principal(platform) is not None:
            return RedirectResponse('/')
        if await platform.tenants.needs_onboarding():
            return RedirectResponse('/onboarding')
        with bare_frame('Sign in'):
            email = ui.input('E-mail').props('type=email autofocus').classes('w-full').mark('email')
            password = ui.input('Password', password=True, password_toggle_button=True) \
                .classes('w-full').mark('password')

            async def submit() -> None:
                try:
                    principal = await platform.auth.authenticate(email.value or '', password.value or '',
                                                                 ip=session.client_details()[0])
                except DomainError as error:
                    ui.notify(str(error), type='negative')
                    password.error = str(error)
                    return
                await session.sign_in(platform, principal)
                ui.navigate.to('/')

            password.on('keydown.enter', submit)
            ui.button('Sign in', on_click=submit).classes(f'w-full {TOUCH}').mark('sign-in')
            ui.link('Forgot your password?', '/reset').classes(TOUCH).mark('forgot-password')
            if platform.oidc.enabled:
                ui.separator()
                ui.button(platform.oidc.button, icon='login', on_click=lambda: ui.navigate.to('/auth/oidc/login')) \
                    .props('outline').classes(f'w-full {TOUCH}').mark('sso-sign-in')
        return None

    @ui.page('/logout')
    async def logout_page() -> RedirectResponse:
        await session.sign_out(platform)
        return RedirectResponse('/login')
