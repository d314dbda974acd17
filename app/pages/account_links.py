"""Pages of the one-time links: accept an invitation, ask for a password reset, set a new password."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.frame import TOUCH, bare_frame
from app.pages import session
from app.pages.auth import show_error
from app.platform import Platform
from app.services.errors import DomainError


def password_pair() -> tuple[ui.input, ui.input]:
    password = ui.input('Password', password=True, password_toggle_button=True).classes('w-full').mark('password')
    again = ui.input('Password again', password=True, password_toggle_button=True) \
        .classes('w-full').mark('password-again')
    return password, again


def matching(password: ui.input, again: ui.input) -> bool:
    password.error = again.error = None
    if password.value != again.value:
        again.error = 'The passwords do not match.'
        ui.notify('The passwords do not match.', type='negative')
        return False
    return True


def dead_link(error: DomainError) -> None:
    ui.label(str(error)).classes('text-negative').mark('link-invalid')
    ui.link('Go to sign-in', '/login').classes(TOUCH)


def register(platform: Platform) -> None:
    links = platform.account_links

    @ui.page('/invite/{token}')
    async def invite_page(token: str) -> None:
        with bare_frame('Join Gito'):
            try:
                details = await links.describe(token, 'invite')
            except DomainError as error:
                dead_link(error)
                return
            ui.label(f'You are invited to {details.tenant_name} as {details.email}.').mark('invite-for')
            name = ui.input('Your name').props('autofocus').classes('w-full').mark('display-name')
            password, again = password_pair()

            async def accept() -> None:
                if not matching(password, again):
                    return
                try:
                    principal = await links.accept_invite(token, display_name=name.value or '',
                                                           password=password.value or '')
                except DomainError as error:
                    show_error(error, {'password': password, 'display_name': name})
                    return
                await session.sign_in(platform, principal)
                ui.navigate.to('/')

            again.on('keydown.enter', accept)
            ui.button('Join', on_click=accept).classes(f'w-full {TOUCH}').mark('accept-invite')

    @ui.page('/reset')
    async def reset_request_page() -> None:
        with bare_frame('Forgot your password?'):
            ui.label('We e-mail you a link to set a new one.').classes('text-grey-8')
            email = ui.input('E-mail').props('type=email autofocus').classes('w-full').mark('email')
            answer = ui.label().classes('text-positive').mark('reset-answer')

            async def send() -> None:
                answer.text = await links.request_reset(email.value or '', ip=session.client_details()[0])

            email.on('keydown.enter', send)
            ui.button('Send link', on_click=send).classes(f'w-full {TOUCH}').mark('send-reset')
            ui.link('Back to sign-in', '/login').classes(TOUCH)

    @ui.page('/reset/{token}')
    async def reset_page(token: str) -> RedirectResponse | None:
        with bare_frame('Set a new password'):
            try:
                details = await links.describe(token, 'reset')
            except DomainError as error:
                dead_link(error)
                return None
            ui.label(f'For {details.email}. You will be signed out everywhere.').mark('reset-for')
            password, again = password_pair()

            async def save() -> None:
                if not matching(password, again):
                    return
                try:
                    await links.reset_password(token, password=password.value or '')
                except DomainError as error:
                    show_error(error, {'password': password})
                    return
                ui.notify('Password set. Sign in with it.', type='positive')
                ui.navigate.to('/login')

            again.on('keydown.enter', save)
            ui.button('Set password', on_click=save).classes(f'w-full {TOUCH}').mark('set-password')
        return None
