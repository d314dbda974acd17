"""The `gito` command as a user runs it: real processes, real database, real broker."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import SECRET, free_port

GITO = [sys.executable, '-m', 'app.cli']


def gito(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GITO, *args], env=env, capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    inherited = ('GITO_', 'MQTT_', 'REDIS_', 'DATABASE_', 'PYTEST', 'NICEGUI')  # pytest's would fool NiceGUI
    env = {key: value for key, value in os.environ.items() if not key.startswith(inherited)}
    env.update(DATABASE_URL=database_url, SECRET_KEY=SECRET, GITO_DATA_DIR=str(tmp_path), GITO_LOG_LEVEL='WARNING')
    return env


def test_admin_commands_print_json_with_ids(cli_env: dict[str, str]) -> None:
    tenant = json.loads(gito('tenant', 'create', 'Acme Water', '--json', env=cli_env).stdout)
    assert tenant['name'] == 'Acme Water'
    user = json.loads(gito('user', 'create', '--tenant', tenant['id'], '--email', 'Ops@Acme.example',
                           '--password', 'a long password', '--role', 'operator', '--json', env=cli_env).stdout)
    assert (user['email'], user['role'], user['tenant_id']) == ('ops@acme.example', 'operator', tenant['id'])
    device = json.loads(gito('device', 'create', '--tenant', tenant['id'], 'Pump 7', '--json', env=cli_env).stdout)
    assert device['name'] == 'Pump 7'
    assert len(device['token']) >= 40
    assert device['token'] in device['mosquitto_pub']


def test_bad_input_is_a_clear_error(cli_env: dict[str, str]) -> None:
    tenant = json.loads(gito('tenant', 'create', 'T', '--json', env=cli_env).stdout)
    weak = gito('user', 'create', '--tenant', tenant['id'], '--email', 'a@b.example', '--password', 'short',
                env=cli_env, check=False)
    assert weak.returncode == 1
    assert 'at least 10 characters' in weak.stderr
    unknown = gito('user', 'create', '--tenant', '00000000-0000-0000-0000-000000000000', '--email', 'a@b.example',
                   '--password', 'long enough pw', env=cli_env, check=False)
    assert unknown.returncode == 1
    assert 'Unknown tenant' in unknown.stderr


@pytest.fixture
def served(cli_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """`gito serve` with the managed broker on a free port, as a user starts it."""
    port, mqtt_port = free_port(), free_port()
    env = {**cli_env, 'GITO_PORT': str(port), 'GITO_MQTT_PORT': str(mqtt_port)}
    process = subprocess.Popen([*GITO, 'serve'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    base = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ''
            try:
                if httpx.get(f'{base}/readyz', timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail('gito serve did not become ready within 60 s')
        yield base, env
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_then_publish_with_the_printed_mosquitto_command(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    tenant = json.loads(gito('tenant', 'create', 'Live', '--json', env=env).stdout)
    gito('user', 'create', '--tenant', tenant['id'], '--email', 'live@example.com', '--password',
         'live password 1', env=env)
    device = json.loads(gito('device', 'create', '--tenant', tenant['id'], 'Boiler', '--json', env=env).stdout)
    command = shlex.split(device['mosquitto_pub'])
    command[command.index('-m') + 1] = '{"temperature": 64.5, "burner": true}'
    for _ in range(20):  # the serving process reloads the broker's password file when the device appears
        if subprocess.run(command, capture_output=True, timeout=10).returncode == 0:
            break
        time.sleep(0.25)
    else:
        pytest.fail('the device could not publish with its printed command')
    token = httpx.post(f'{base}/api/v1/auth/token',
                       data={'username': 'live@example.com', 'password': 'live password 1'}).json()['access_token']
    headers = {'Authorization': f'Bearer {token}'}
    latest: list[dict[str, object]] = []
    for _ in range(50):
        latest = httpx.get(f'{base}/api/v1/devices/{device["id"]}/telemetry/latest', headers=headers).json()
        if len(latest) == 2:
            break
        time.sleep(0.1)
    assert {item['key']: item['value'] for item in latest} == {'burner': True, 'temperature': 64.5}
    wrong = command.copy()
    wrong[wrong.index('-P') + 1] = 'not-the-token'
    assert subprocess.run(wrong, capture_output=True, timeout=10).returncode != 0


def test_taken_mqtt_port_names_the_variable(cli_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(('127.0.0.1', 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        env = {**cli_env, 'GITO_PORT': str(free_port()), 'GITO_MQTT_PORT': str(taken)}
        result = subprocess.run([*GITO, 'serve'], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f'GITO_MQTT_PORT={taken}' in result.stderr
