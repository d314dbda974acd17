"""Send one message over one channel: email (aiosmtplib), Slack incoming webhook, signed generic webhook."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from uuid import UUID

import aiosmtplib

from app.config import Settings
from app.services.notifications.address_policy import Network
from app.services.notifications.messages import Message
from app.services.notifications.safe_http import HttpResult, SafeHttpClient
from app.services.notifications.signing import webhook_headers

SMTP_MISSING = 'SMTP is not configured (SMTP_HOST unset)'


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
        settings = self._settings
        started = time.perf_counter()
        if not settings.smtp_host:
            return HttpResult(ok=False, status_code=None, error=SMTP_MISSING, duration_ms=0)
        if not target.recipients:
            return HttpResult(ok=False, status_code=None, error='The channel has no recipients.', duration_ms=0)
        email = EmailMessage()
        email['Subject'] = message.subject
        email['From'] = settings.smtp_from
        email['To'] = ', '.join(target.recipients)
        email.set_content(message.plain())
        email.add_alternative(message.html(), subtype='html')
        try:
            await aiosmtplib.send(
                email, hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_user,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                use_tls=settings.smtp_tls == 'tls', start_tls=settings.smtp_tls == 'starttls',
                timeout=10,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            return HttpResult(ok=False, status_code=None, error=f'SMTP delivery failed: {_reason(error)}',
                              duration_ms=int((time.perf_counter() - started) * 1000))
        return HttpResult(ok=True, status_code=250, error=None,
                          duration_ms=int((time.perf_counter() - started) * 1000))


def _reason(error: Exception) -> str:
    return f'{type(error).__name__}: {str(error)[:300]}'
