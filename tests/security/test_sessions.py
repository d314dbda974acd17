"""Server-side sessions through the service: hashed at rest, idle and absolute expiry, revocation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import text

from app.platform import Platform
from tests.conftest import NewTenant


async def test_each_sign_in_gets_a_new_token_stored_only_as_its_hash(platform: Platform,
                                                                    new_tenant: NewTenant) -> None:
    principal = (await new_tenant()).principal
    first, second = await platform.sessions.create(principal), await platform.sessions.create(principal)
    assert first != second and len(first) >= 43  # 256 random bits
    async with platform.db.system() as session:
        stored = set((await session.scalars(
            text('SELECT id FROM sessions WHERE user_id = :user'), {'user': principal.user_id})).all())
    assert stored == {hashlib.sha256(token.encode()).hexdigest() for token in (first, second)}
    assert await platform.sessions.resolve(first) == principal
    assert await platform.sessions.resolve('made-up') is None


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


async def test_idle_and_absolute_timeouts(platform: Platform, new_tenant: NewTenant) -> None:
    principal = (await new_tenant()).principal
    sessions = platform.sessions
    now = datetime.now(UTC)
    sessions.clock = lambda: now
    token = await sessions.create(principal)
    for step in range(1, 4):  # active every 7 h: the 8 h idle limit never strikes
        sessions.clock = at(now + timedelta(hours=7 * step))
        assert await sessions.resolve(token) == principal, step
    sessions.clock = lambda: now + timedelta(hours=21 + 8)
    assert await sessions.resolve(token) is None  # idle for 8 h

    token = await sessions.create(principal)
    start = now + timedelta(hours=29)
    for hours in range(7, 7 * 24, 7):
        sessions.clock = at(start + timedelta(hours=hours))
        assert await sessions.resolve(token) == principal, hours
    sessions.clock = lambda: start + timedelta(days=7)
    assert await sessions.resolve(token) is None  # 7 days after sign-in, however active


async def test_logout_everywhere_and_disabling_end_sessions(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    member = await platform.users.create(admin, email=f'member-{uuid4().hex[:8]}@example.com',
                                       password='long enough pw', role='viewer')
    member_principal = type(admin)(tenant_id=admin.tenant_id, user_id=member.id, role='viewer',
                                   email=member.email)
    phone, laptop = await platform.sessions.create(admin), await platform.sessions.create(admin)
    await platform.sessions.revoke(phone)
    assert await platform.sessions.resolve(phone) is None
    assert await platform.sessions.resolve(laptop) == admin
    other = await platform.sessions.create(admin)
    await platform.sessions.revoke_all(admin)
    assert [await platform.sessions.resolve(token) for token in (laptop, other)] == [None, None]

    tablet = await platform.sessions.create(member_principal)
    assert await platform.sessions.resolve(tablet) == member_principal
    await platform.users.set_disabled(admin, member.id, True)
    assert await platform.sessions.resolve(tablet) is None
    await platform.users.set_disabled(admin, member.id, False)
    assert await platform.sessions.resolve(tablet) is None  # re-enabling does not bring old sessions back
