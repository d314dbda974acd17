"""amqtt fallback for the managed broker: the pure-Python broker run in a child process (`app.ingest.amqtt_child`).

It reads the same Mosquitto-format password and ACL files through Gito's own plugins, so both brokers enforce the
same credentials and topic prefixes. amqtt speaks MQTT 3.1.1 only (no `$share/` shared subscriptions) and keeps
sessions in memory, so queued QoS 1 messages do not survive a broker restart.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import app

CONFIG_NAME = 'amqtt.json'
READY_MESSAGE = 'amqtt broker running'  # logged by the child once it listens; ManagedBroker waits for it
PLUGINS_MODULE = 'app.ingest.amqtt_child'


def amqtt_config(*, host: str, port: int, password_file: Path, acl_file: Path) -> str:
    bind_host = f'[{host}]' if ':' in host else host
    config = {
        'listeners': {'default': {'type': 'tcp', 'bind': f'{bind_host}:{port}', 'max_connections': 0}},
        'timeout_disconnect_delay': 0,
        'plugins': {
            f'{PLUGINS_MODULE}.PasswordFileAuthPlugin': {'password_file': str(password_file)},
            f'{PLUGINS_MODULE}.PrefixTopicPlugin': {'acl_file': str(acl_file)},
        },
    }
    return json.dumps(config, indent=2) + '\n'


def amqtt_command(config_file: Path) -> list[str]:
    return [sys.executable, '-m', PLUGINS_MODULE, str(config_file)]


def amqtt_environment() -> dict[str, str]:
    """The child must import `app` even when Gito runs from a source checkout rather than an installed package."""
    source_root = str(Path(app.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (source_root, env.get('PYTHONPATH', '')) if p)
    return env
