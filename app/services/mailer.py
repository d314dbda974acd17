"""Outgoing e-mail through the SMTP_* settings: alarm notifications, invitations, password resets."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from app.config import Settings

SMTP_MISSING = 'SMTP is not configured (SMTP_HOST unset)'


def smtp_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


async def send_email(settings: Settings, *, to: list[str], subject: str, plain: str, html: str | None = None) -> None:
    """Send one message (plain text, optionally with an HTML alternative); raises MailError with the reason."""
    if not settings.smtp_host:
        raise MailError(SMTP_MISSING)
    if not to:
        raise MailError('The message has no recipients.')
    email = EmailMessage()
    email['Subject'] = subject
    email['From'] = settings.smtp_from
    email['To'] = ', '.join(to)
    email.set_content(plain)
    if html is not None:
        email.add_alternative(html, subtype='html')
    try:
        await aiosmtplib.send(
            email, hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            use_tls=settings.smtp_tls == 'tls', start_tls=settings.smtp_tls == 'starttls', timeout=10,
        )
    except (aiosmtplib.SMTPException, OSError) as error:
        raise MailError(f'SMTP delivery failed: {type(error).__name__}: {str(error)[:300]}') from error


class MailError(Exception):
    """Why a message was not sent (safe to show an admin: no secrets)."""
