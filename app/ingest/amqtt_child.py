"""Child process running the amqtt broker for `ManagedBroker(kind='amqtt')`.

Run as `python -m app.ingest.amqtt_child <config.json>`; stops cleanly on SIGTERM or SIGINT.
The two plugins read the Mosquitto-format files `ManagedBroker` writes, re-reading a file as soon as it is replaced:
`username:$7$...` password lines, and `user <name>` / `topic readwrite <filter>` ACL lines. Like Mosquitto on a
reload, the child disconnects connected clients whose credentials are no longer in the replaced password file (a
disabled or deleted device, a rotated token), so they cannot go on publishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from app.ingest.broker_amqtt import PLUGINS_MODULE, READY_MESSAGE
from app.services.credentials import mosquitto_verify

log = logging.getLogger(__name__)
T = TypeVar('T')


class WatchedFile(Generic[T]):
    """A parsed file, parsed again whenever it is replaced or modified. A missing file parses as empty text."""

    def __init__(self, path: Path, parse: Callable[[str], T]) -> None:
        self._path = path
        self._parse = parse
        self._signature: tuple[int, int, int] | None = None
        self._value = parse('')

    def current(self) -> T:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            signature = (0, 0, 0)
        else:
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature != self._signature:
            try:
                text = self._path.read_text(encoding='utf-8')
            except FileNotFoundError:
                text = ''
                log.warning('broker credentials file missing', extra={'path': str(self._path)})
            self._value = self._parse(text)
            self._signature = signature
        return self._value


def parse_passwords(text: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in text.splitlines():
        username, sep, entry = line.strip().partition(':')
        if sep and not username.startswith('#'):
            entries[username] = entry
    return entries


def parse_acl(text: str) -> dict[str, tuple[str, ...]]:
    acl: dict[str, list[str]] = {}
    user: str | None = None
    for line in text.splitlines():
        words = line.strip().split(maxsplit=2)
        if len(words) == 2 and words[0] == 'user':
            user = words[1]
            acl.setdefault(user, [])
        elif len(words) == 3 and words[0] == 'topic' and words[1] == 'readwrite' and user is not None:
            acl[user].append(words[2])
    return {name: tuple(filters) for name, filters in acl.items()}


def filter_within(requested: str, allowed: str) -> bool:
    """Whether every topic matched by the topic or filter `requested` is matched by the ACL filter `allowed`."""
    wanted = requested.split('/')
    for index, level in enumerate(allowed.split('/')):
        if level == '#':
            return True
        if index >= len(wanted) or wanted[index] == '#':
            return False
        if level != '+' and wanted[index] != level:
            return False
    return len(wanted) == len(allowed.split('/'))


class PasswordFileAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type information
    @dataclass
    class Config:
        password_file: str = ''

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._passwords = WatchedFile(Path(self.config.password_file), parse_passwords)

    async def authenticate(self, *, session: Session) -> bool | None:
        if not session.username or session.password is None:
            return False
        entry = self._passwords.current().get(session.username)
        password = session.password if isinstance(session.password, str) else session.password.decode()
        return entry is not None and mosquitto_verify(entry, password)


class PrefixTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Publish, subscribe and receive only within the user's ACL filters (a device's own prefix; `#` for Gito)."""

    @dataclass
    class Config:
        acl_file: str = ''

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._acl = WatchedFile(Path(self.config.acl_file), parse_acl)

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        if session is None or not session.username or not topic:
            return False
        return any(filter_within(topic, allowed) for allowed in self._acl.current().get(session.username, ()))


def still_valid(passwords: dict[str, str], session: Session) -> bool:
    entry = passwords.get(session.username or '')
    password = session.password if isinstance(session.password, str) else (session.password or b'').decode()
    return entry is not None and mosquitto_verify(entry, password)


async def disconnect_revoked(broker: Broker, password_file: Path, *, every_s: float = 0.2) -> None:
    """Whenever the password file is replaced, close the connections of clients it no longer admits."""
    passwords = WatchedFile(password_file, parse_passwords)
    seen = passwords.current()
    while True:
        await asyncio.sleep(every_s)
        current = passwords.current()
        if current is seen:
            continue
        seen = current
        for session, handler in list(broker.sessions.values()):
            if session.transitions.is_connected() and handler is not None and not still_valid(current, session):
                log.info('client disconnected: credentials revoked', extra={'username': session.username})
                if handler.writer is not None:
                    with contextlib.suppress(Exception):
                        await handler.writer.close()


async def serve(config: dict[str, Any]) -> None:
    broker = Broker(config)
    await broker.start()
    password_file = Path(config['plugins'][f'{PLUGINS_MODULE}.PasswordFileAuthPlugin']['password_file'])
    watcher = asyncio.create_task(disconnect_revoked(broker, password_file))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info(READY_MESSAGE)
    await stopping.wait()
    watcher.cancel()
    await broker.shutdown()
    log.info('amqtt broker stopped')


def main() -> None:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    logging.getLogger('amqtt').setLevel(logging.WARNING)
    logging.getLogger('transitions').setLevel(logging.WARNING)
    config = json.loads(Path(sys.argv[1]).read_text(encoding='utf-8'))
    asyncio.run(serve(config))


if __name__ == '__main__':
    main()
