"""The e-mails of account links: an invitation to join an organisation, a password reset."""

from __future__ import annotations

from datetime import datetime
from html import escape


def invite_message(*, tenant_name: str, inviter: str, role: str, url: str,
                   expires_at: datetime) -> tuple[str, str, str]:
    """Subject, plain text and HTML."""
    subject = f'You are invited to {tenant_name} on Gito'
    lines = [f'{inviter} invites you to join {tenant_name} on Gito as {role}.', '',
             'Choose your name and password here (the link works once):', url, '',
             f'The link expires on {expires_at:%Y-%m-%d %H:%M} UTC.']
    return subject, _plain(lines), _html(subject, lines, url, 'Accept the invitation')


def reset_message(*, url: str, expires_at: datetime) -> tuple[str, str, str]:
    subject = 'Set a new Gito password'
    lines = ['Someone (hopefully you) asked to set a new password for your Gito account.', '',
             'Set it here (the link works once):', url, '',
             f'The link expires at {expires_at:%Y-%m-%d %H:%M} UTC. Setting a new password signs you out everywhere.',
             'If you did not ask, ignore this message: your password stays as it is.']
    return subject, _plain(lines), _html(subject, lines, url, 'Set a new password')


def _plain(lines: list[str]) -> str:
    return '\n'.join([*lines, '', '-- Gito', ''])


def _html(subject: str, lines: list[str], url: str, action: str) -> str:
    body = ''.join(f'<p>{escape(line)}</p>' for line in lines if line and line != url)
    return (f'<html><body style="font-family: sans-serif"><h2>{escape(subject)}</h2>{body}'
            f'<p><a href="{escape(url)}">{escape(action)}</a></p></body></html>')
