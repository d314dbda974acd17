"""Loopback receivers (HTTP and SMTP), alarm notices and outbox helpers for the notification tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from app.models.alarm_notice import AlarmNotice
from app.platform import Platform
from app.services.notifications.dispatcher import Backoff
from tests.support import free_port


@dataclass
class Receiver:
    """An HTTP server on loopback that records every request and answers from a script (then 200)."""

    host: str = '127.0.0.1'
    port: int = 0
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    reply: bytes = b'ok'

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self.port}/hook'

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status, headers=headers, body=self.reply)


StartReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver_factory() -> AsyncIterator[StartReceiver]:
    runners: list[web.AppRunner] = []

    async def start(host: str = '127.0.0.1', port: int | None = None) -> Receiver:
        receiver = Receiver(host=host, port=port or free_port())
        app = web.Application()
        app.router.add_route('*', '/{tail:.*}', receiver.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, receiver.port).start()
        runners.append(runner)
        return receiver

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def receiver(receiver_factory: StartReceiver) -> Receiver:
    return await receiver_factory()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return '250 OK'


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname='127.0.0.1', port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def fast_retries(platform: Platform) -> Platform:
    platform.notifications.dispatcher.backoff = Backoff(base_s=0.01, cap_s=0.02, give_up_after_s=3600)
    return platform


def notice(tenant_id: UUID, **fields: Any) -> AlarmNotice:
    values: dict[str, Any] = {
        'tenant_id': tenant_id, 'alarm_id': uuid4(), 'rule_id': uuid4(), 'rule_name': 'Boiler too hot',
        'device_id': uuid4(), 'device_name': 'Boiler 7', 'severity': 'critical', 'transition': 'raised',
        'at': datetime.now(UTC), 'key': 'temperature', 'value': 93.5, 'threshold': 'temperature > 80',
    }
    return AlarmNotice(**(values | fields))


async def enqueue(platform: Platform, *notices: AlarmNotice, hold_s: float = 0) -> None:
    """Enqueue in one transaction, due at once unless told (the digest hold is tested on its own)."""
    platform.notifications.outbox.hold_s = hold_s
    async with platform.db.tenant(notices[0].tenant_id) as session:
        for item in notices:
            await platform.outbox.enqueue(session, item)


async def allow_loopback(platform: Platform, principal: Any, cidrs: tuple[str, ...] = ('127.0.0.0/8',)) -> None:
    from app.models.notifications import OutboundSettings

    await platform.notifications.channels.set_outbound_settings(principal, OutboundSettings(allowed_cidrs=list(cidrs)))


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (Standard Webhooks): recompute the v1 signature with the whsec_ secret."""
    key = base64.b64decode(secret.removeprefix('whsec_'))
    signed = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(f'v1,{expected}', part) for part in headers['webhook-signature'].split(' '))


def email_parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    from email import message_from_bytes, policy

    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    plain = message.get_body(preferencelist=('plain',))
    html = message.get_body(preferencelist=('html',))
    assert plain is not None and html is not None
    return message, plain.get_content(), html.get_content()
