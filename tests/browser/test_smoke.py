"""Headless Chromium against a real `gito serve`: sign in, open a device, watch it update, take a screenshot."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests.support import gito

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason='needs Chromium: apt-get install chromium'),
]


def post(base: str, device: dict[str, str], body: object, *, status: int = 202) -> None:
    """As the device: JSON of `body`, or `body` itself when it is bytes."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(f'{base}/api/v1/devices/{device["id"]}/telemetry', content=content, timeout=10,
                          headers={'Authorization': f'Bearer {device["token"]}', 'Content-Type': 'application/json'})
    assert response.status_code == status, response.text


async def test_sign_in_open_device_and_see_it_live(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = served
    tenant = json.loads(gito('tenant', 'create', 'Smoke Test Ltd', '--json', env=env).stdout)
    gito('user', 'create', '--tenant', tenant['id'], '--email', 'tech@smoke.example', '--password',
         'smoke password 1', '--role', 'technician', env=env)
    device = json.loads(gito('device', 'create', '--tenant', tenant['id'], 'Chiller 3', '--type', 'chiller',
                             '--json', env=env).stdout)
    owner = await asyncpg.connect(env['DATABASE_URL'])  # an admin switched the raw archive on (see the storage tests)
    await owner.execute('INSERT INTO raw_archive_settings (tenant_id, enabled, days) VALUES ($1, true, 7)',
                        UUID(tenant['id']))
    await owner.close()
    await asyncio.sleep(2.5)  # the serving instance reads the setting every 2 s
    post(base, device, b'{"supply_temp": 6.1,', status=400)  # cut off: refused, counted, archived with the reason
    now = datetime.now(UTC)
    post(base, device, [{'ts': (now - timedelta(minutes=10 - i)).isoformat(), 'supply_temp': 6.0 + i / 4,
                         'return_temp': 11.0 + i / 5} for i in range(10)])

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[
            '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
            '--disable-component-update', '--no-first-run'])
        page = await browser.new_page(viewport={'width': 1024, 'height': 768})
        errors: list[str] = []
        page.on('pageerror', lambda error: errors.append(str(error)))
        await page.goto(f'{base}/login')
        await page.get_by_label('E-mail').fill('tech@smoke.example')
        await page.get_by_label('Password', exact=True).fill('wrong password!')
        await page.get_by_role('button', name='Sign in').click()
        await expect(page.locator('#app').get_by_text('Wrong e-mail address or password.')).to_be_visible()
        await page.get_by_label('Password', exact=True).fill('smoke password 1')
        await page.get_by_role('button', name='Sign in').click()
        await expect(page.get_by_text('Chiller 3')).to_be_visible(timeout=10_000)
        await page.get_by_text('Chiller 3').click()
        await expect(page.get_by_text('supply_temp').first).to_be_visible(timeout=10_000)
        await expect(page.locator('.js-plotly-plot').first).to_be_visible(timeout=10_000)

        post(base, device, {'supply_temp': 7.77, 'return_temp': 12.34})
        await expect(page.get_by_text('7.77').first).to_be_visible(timeout=5_000)
        await expect(page.get_by_text('12.34').first).to_be_visible()
        raw = page.locator('.nicegui-card', has_text='Last 50 messages')
        await expect(raw.get_by_text('rejected: not valid JSON')).to_be_visible(timeout=5_000)
        await expect(raw.get_by_text('"supply_temp": 7.77').first).to_be_visible(timeout=5_000)
        await page.wait_for_timeout(600)  # one chart throttle period, so the screenshot shows the live point
        shot = Path(os.environ.get('GITO_SCREENSHOT_DIR', tmp_path)) / 'device-page.png'
        shot.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        await browser.close()
    assert errors == []
