"""Security tests reuse the page fixtures (accounts and devices made through the running app's services), the
API fixtures (a running app and signed-in callers) and the notification tests' SMTP sink."""

from __future__ import annotations

import pytest

from tests.api.conftest import api, sign_in
from tests.notifications.conftest import Inbox, smtp_sink
from tests.pages.conftest import make_account, make_device

__all__ = ['api', 'make_account', 'make_device', 'sign_in', 'smtp_sink']


@pytest.fixture
def smtp_env(smtp_sink: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """SMTP_* pointing at the loopback sink; request it before `platform` or `user`."""
    inbox, port = smtp_sink
    monkeypatch.setenv('SMTP_HOST', '127.0.0.1')
    monkeypatch.setenv('SMTP_PORT', str(port))
    monkeypatch.setenv('SMTP_TLS', 'none')
    monkeypatch.setenv('SMTP_FROM', 'gito@example.com')
    return inbox
