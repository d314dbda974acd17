"""Alarm emails land in a real SMTP sink with both parts; without SMTP the delivery fails visibly."""

from __future__ import annotations

import pytest

from app.models.notifications import ChannelCreate
from app.platform import Platform
from tests.conftest import NewTenant
from tests.notifications.conftest import Inbox, email_parts, enqueue, notice


async def test_alarm_email_has_plain_and_html_parts_with_device_rule_and_link(
    platform: Platform, new_tenant: NewTenant, smtp_sink: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_sink
    monkeypatch.setattr(platform.settings, 'smtp_host', '127.0.0.1')
    monkeypatch.setattr(platform.settings, 'smtp_port', port)
    monkeypatch.setattr(platform.settings, 'smtp_tls', 'none')
    tenant = await new_tenant()
    await platform.notifications.channels.create(tenant.principal, ChannelCreate(
        name='On call', kind='email', recipients=['oncall@example.com', 'boss@example.com']))
    raised = notice(tenant.principal.tenant_id, device_name='Boiler <7>')
    await enqueue(platform, raised)
    [pending] = await platform.notifications.deliveries.list(tenant.principal)

    await platform.notifications.dispatcher.run_once(only=pending.id)  # not other tests' leftover emails

    [(recipients, raw)] = inbox.messages
    assert sorted(recipients) == ['boss@example.com', 'oncall@example.com']
    message, plain, html = email_parts(raw)
    assert message['Subject'] == '[CRITICAL] Boiler too hot raised on Boiler <7>'
    link = f'/alarms/{raised.alarm_id}'
    assert 'Boiler <7>' in plain and 'Boiler too hot' in plain and '93.5' in plain and link in plain
    assert 'temperature > 80' in plain
    assert 'Boiler &lt;7&gt;' in html and 'Boiler <7>' not in html  # autoescaped
    assert 'href="http://' in html and link in html and 'temperature &gt; 80' in html
    [delivery] = await platform.notifications.deliveries.list(tenant.principal)
    assert delivery.status == 'sent' and delivery.last_status_code == 250


async def test_missing_smtp_configuration_is_a_failed_attempt_with_its_reason(
    platform: Platform, new_tenant: NewTenant, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(platform.settings, 'smtp_host', None)
    tenant = await new_tenant()
    await platform.notifications.channels.create(tenant.principal, ChannelCreate(
        name='Mail', kind='email', recipients=['oncall@example.com']))
    await enqueue(platform, notice(tenant.principal.tenant_id))
    [pending] = await platform.notifications.deliveries.list(tenant.principal)
    await platform.notifications.dispatcher.run_once(only=pending.id)

    delivery = await platform.notifications.deliveries.get(tenant.principal, pending.id)
    assert delivery.status == 'failed'
    assert delivery.last_error == 'SMTP is not configured (SMTP_HOST unset)'
    assert [a.error for a in delivery.attempt_log] == ['SMTP is not configured (SMTP_HOST unset)']
