"""Invitations and password resets by e-mail: one-time, expiring links whose tokens are stored hashed."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import text

from app.models.schemas import Principal
from app.platform import Platform
from app.services.account_links import RESET_NO_MAIL, RESET_REQUESTED, LinkInvalid
from app.services.audit import AuditQuery
from app.services.errors import AuthenticationFailed, Conflict, PermissionDenied
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant
from tests.notifications.conftest import Inbox, email_parts

LINK = re.compile(r'http://\S+/(?:invite|reset)/(\S+)')


async def mail_to(inbox: Inbox, address: str, *, count: int = 1) -> list[tuple[str, str]]:
    """(subject, plain text) of the messages to `address`, once `count` have arrived."""
    for _ in range(100):
        found = [email_parts(raw) for recipients, raw in inbox.messages if address in recipients]
        if len(found) >= count:
            return [(str(message['Subject']), plain) for message, plain, _html in found]
        await asyncio.sleep(0.05)
    raise AssertionError(f'no e-mail to {address}')


def token_in(plain: str) -> str:
    match = LINK.search(plain)
    assert match is not None, plain
    return match.group(1)


async def stored_tokens(platform: Platform) -> list[str]:
    async with platform.db.system() as session:
        return list((await session.scalars(text('SELECT token_sha256 FROM account_links'))).all())


async def test_invitation_e_mail_lets_the_invitee_choose_name_and_password_once(
        smtp_env: Inbox, platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant(name='Acme Water')).principal
    email = f'new-{uuid4().hex[:8]}@example.com'
    sent = await platform.account_links.invite(admin, email=email.upper(), role='technician')
    assert (sent.emailed, sent.link) == (True, None)  # the admin never sees a link that was e-mailed
    [(subject, plain)] = await mail_to(smtp_env, email)
    assert 'Acme Water' in subject and 'technician' in plain
    token = token_in(plain)
    assert token not in await stored_tokens(platform)  # only its hash is kept
    assert [invite.email for invite in await platform.account_links.pending_invites(admin)] == [email]

    assert (await platform.account_links.describe(token, 'invite')).email == email
    principal = await platform.account_links.accept_invite(token, display_name='Ada Lovelace',
                                                           password='my own secret pw')
    assert (principal.tenant_id, principal.role, principal.email) == (admin.tenant_id, 'technician', email)
    assert await platform.auth.authenticate(email, 'my own secret pw') == principal
    [member] = [user for user in await platform.users.list(admin) if user.email == email]
    assert member.display_name == 'Ada Lovelace'
    with pytest.raises(LinkInvalid):
        await platform.account_links.accept_invite(token, display_name='Eve', password='another secret pw')
    assert await platform.account_links.pending_invites(admin) == []
    actions = [entry.action for entry in await platform.audit.search(admin, AuditQuery())]
    assert actions[:2] == ['user.invite_accept', 'user.invite']


async def test_without_smtp_the_admin_gets_the_link_to_hand_over(platform: Platform,
                                                                 new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    sent = await platform.account_links.invite(admin, email=f'x-{uuid4().hex[:8]}@example.com', role='viewer')
    assert not sent.emailed and sent.problem is not None and 'SMTP_HOST' in sent.problem
    assert sent.link is not None
    principal = await platform.account_links.accept_invite(sent.link.rsplit('/', 1)[1], display_name='',
                                                           password='long enough pw')
    assert principal.role == 'viewer'


async def test_invitations_expire_can_be_revoked_and_need_an_admin(platform: Platform,
                                                                   new_tenant: NewTenant) -> None:
    context = await new_tenant()
    admin, links = context.principal, platform.account_links
    expiring = await links.invite(admin, email=f'late-{uuid4().hex[:8]}@example.com', role='viewer')
    revoked = await links.invite(admin, email=f'gone-{uuid4().hex[:8]}@example.com', role='viewer')
    await links.revoke_invite(admin, revoked.invite.id)
    assert revoked.link is not None and expiring.link is not None
    with pytest.raises(LinkInvalid):
        await links.accept_invite(revoked.link.rsplit('/', 1)[1], display_name='', password='long enough pw')
    links.clock = lambda: datetime.now(UTC) + timedelta(days=7, minutes=1)
    with pytest.raises(LinkInvalid):
        await links.describe(expiring.link.rsplit('/', 1)[1], 'invite')
    with pytest.raises(Conflict):
        await links.invite(admin, email=context.email, role='viewer')
    operator = Principal(tenant_id=admin.tenant_id, user_id=None, role='operator')
    with pytest.raises(PermissionDenied):
        await links.invite(operator, email=f'op-{uuid4().hex[:8]}@example.com', role='admin')


async def test_password_reset_by_e_mail_ends_every_session(smtp_env: Inbox, platform: Platform,
                                                           new_tenant: NewTenant) -> None:
    context = await new_tenant()
    laptop = await platform.sessions.create(context.principal)
    unknown = f'nobody-{uuid4().hex[:8]}@example.com'
    assert await platform.account_links.request_reset(unknown) == RESET_REQUESTED
    assert await platform.account_links.request_reset(context.email.upper()) == RESET_REQUESTED
    await platform.account_links.settle()
    [(subject, plain)] = await mail_to(smtp_env, context.email)
    assert 'password' in subject.lower()
    assert not [raw for recipients, raw in smtp_env.messages if unknown in recipients]
    token = token_in(plain)
    assert token not in await stored_tokens(platform)

    await platform.account_links.reset_password(token, password='brand new password')
    assert await platform.sessions.resolve(laptop) is None
    assert (await platform.auth.authenticate(context.email, 'brand new password')).user_id == context.principal.user_id
    with pytest.raises(AuthenticationFailed):
        await platform.auth.authenticate(context.email, context.password)
    with pytest.raises(LinkInvalid):
        await platform.account_links.reset_password(token, password='yet another password')


async def test_reset_links_expire_after_an_hour_and_requests_are_limited(
        smtp_env: Inbox, platform: Platform, new_tenant: NewTenant) -> None:
    context = await new_tenant()
    links = platform.account_links
    for _ in range(5):
        await links.request_reset(context.email, ip='192.0.2.7')
    await links.settle()
    mails = await mail_to(smtp_env, context.email, count=3)
    await asyncio.sleep(0.2)
    assert len(mails) == 3 == len([1 for recipients, _ in smtp_env.messages if context.email in recipients])
    links.clock = lambda: datetime.now(UTC) + timedelta(minutes=61)
    with pytest.raises(LinkInvalid):
        await links.reset_password(token_in(mails[0][1]), password='brand new password')


async def test_api_invites_and_reset_requests(api: Api, sign_in: SignIn) -> None:
    admin, viewer = await sign_in('admin'), await sign_in('viewer')
    email = f'api-{uuid4().hex[:8]}@example.com'
    created = await api.client.post('/api/v1/invites', json={'email': email, 'role': 'operator'},
                                    headers=admin.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body['emailed'], body['invite']['role']) == (False, 'operator') and '/invite/' in body['link']
    listed = await api.client.get('/api/v1/invites', headers=admin.headers)
    assert [invite['email'] for invite in listed.json()] == [email]
    refused = await api.client.post('/api/v1/invites', json={'email': 'x@example.com'}, headers=viewer.headers)
    assert refused.status_code == 403 and refused.headers['content-type'] == 'application/problem+json'
    bad = await api.client.post('/api/v1/invites', json={'email': 'not an address'}, headers=admin.headers)
    assert (bad.status_code, bad.json()['field']) == (422, 'email')
    assert (await api.client.delete(f'/api/v1/invites/{body["invite"]["id"]}',
                                    headers=viewer.headers)).status_code == 403
    assert (await api.client.delete(f'/api/v1/invites/{body["invite"]["id"]}',
                                    headers=admin.headers)).status_code == 204
    assert (await api.client.get('/api/v1/invites', headers=admin.headers)).json() == []

    answers = [await api.client.post('/api/v1/auth/password-reset', json={'email': address})
               for address in (admin.principal.email, f'nobody-{uuid4().hex[:6]}@example.com')]
    assert [answer.status_code for answer in answers] == [202, 202]
    assert answers[0].json() == answers[1].json() == {'detail': RESET_NO_MAIL}  # no SMTP here: says so, to all
