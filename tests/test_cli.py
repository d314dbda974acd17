"""The `gito` command as a user runs it: real processes, real database, real broker."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from uuid import uuid4

import httpx
import pytest

from tests.support import GITO, free_port, gito


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


def test_list_commands_show_tenants_devices_and_users(cli_env: dict[str, str]) -> None:
    name = f'Listed {uuid4().hex[:6]}'
    tenant = json.loads(gito('tenant', 'create', name, '--json', env=cli_env).stdout)
    for device, kind in (('Pump 2', 'pump'), ('Chiller', 'hvac')):
        gito('device', 'create', '--tenant', tenant['id'], device, '--type', kind, env=cli_env)
    gito('user', 'create', '--tenant', tenant['id'], '--email', 'lister@example.com', '--password', 'list password',
         env=cli_env)
    listed = gito('tenant', 'list', env=cli_env)
    assert listed.stderr == ''  # no library warnings in a user's terminal
    header, *lines = listed.stdout.splitlines()
    assert header.split() == ['ID', 'NAME', 'STATUS', 'DEVICES', 'USERS', 'CREATED_AT']
    ours = next(line for line in lines if line.startswith(tenant['id']))
    assert ours.split()[1:6] == [*name.split(), 'active', '2', '1']
    devices = json.loads(gito('device', 'list', '--tenant', tenant['id'], '--json', env=cli_env).stdout)
    assert [(d['name'], d['type'], d['status']) for d in devices] == [('Chiller', 'hvac', 'new'),
                                                                      ('Pump 2', 'pump', 'new')]
    found = gito('device', 'list', '--tenant', tenant['id'], '--search', 'pum', env=cli_env).stdout.splitlines()
    assert len(found) == 2 and found[1].split()[1:4] == ['Pump', '2', 'pump']
    users = gito('user', 'list', '--tenant', tenant['id'], env=cli_env).stdout.splitlines()
    assert users[1].split()[1:3] == ['lister@example.com', 'admin']
    unknown = gito('device', 'list', '--tenant', str(uuid4()), env=cli_env, check=False)
    assert (unknown.returncode, unknown.stdout) == (1, '')
    assert 'Unknown tenant' in unknown.stderr


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
