"""Send one message over one channel: email (aiosmtplib), Slack incoming webhook, signed generic webhook."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from app.config import Settings
from app.services.mailer import SMTP_MISSING, MailError, send_email
from app.services.notifications.address_policy import Network
from app.services.notifications.messages import Message
from app.services.notifications.safe_http import HttpResult, SafeHttpClient
from app.services.notifications.signing import webhook_headers


@dataclass(frozen=True)
class ChannelTarget:
    """A channel ready to send: its secret opened (never logged)."""

    id: UUID
    tenant_id: UUID
    kind: str
    name: str
    recipients: list[str]
    url: str | None  # the webhook endpoint, or the Slack URL (a secret)
    secret: str | None  # the webhook signing secret


class Senders:
    def __init__(self, settings: Settings, http: SafeHttpClient) -> None:
        self._settings = settings
        self.http = http

    async def send(self, target: ChannelTarget, message: Message, *, message_id: str,
                   allowed: list[Network]) -> HttpResult:
        if target.kind == 'email':
            return await self._email(target, message)
        if not target.url:
            return HttpResult(ok=False, status_code=None, error='The channel has no URL.', duration_ms=0)
        if target.kind == 'slack':
            return await self.http.post(target.url, content=message.slack_body(),
                                        headers={'content-type': 'application/json'}, allowed=allowed)
        now = datetime.now(UTC)
        body = message.webhook_body(now)
        headers = webhook_headers(target.secret or '', message_id=message_id, timestamp=int(now.timestamp()),
                                  body=body)
        return await self.http.post(target.url, content=body, headers=headers, allowed=allowed)

    async def _email(self, target: ChannelTarget, message: Message) -> HttpResult:
        started = time.perf_counter()
        if not self._settings.smtp_host:
            return HttpResult(ok=False, status_code=None, error=SMTP_MISSING, duration_ms=0)
        if not target.recipients:
            return HttpResult(ok=False, status_code=None, error='The channel has no recipients.', duration_ms=0)
        try:
            await send_email(self._settings, to=target.recipients, subject=message.subject, plain=message.plain(),
                             html=message.html())
        except MailError as error:
            return HttpResult(ok=False, status_code=None, error=str(error),
                              duration_ms=int((time.perf_counter() - started) * 1000))
        return HttpResult(ok=True, status_code=250, error=None,
                          duration_ms=int((time.perf_counter() - started) * 1000))
