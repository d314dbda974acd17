"""Fault injection on loopback: a TCP proxy in front of PostgreSQL that a test can cut and restore."""

from __future__ import annotations

import asyncio
import contextlib


class CuttableProxy:
    """Forwards 127.0.0.1:`port` to the target. `cut()` drops every connection and refuses new ones (the database
    is gone, as far as a client can tell); `restore()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int, *, unix_socket: str | None = None) -> None:
        self._target = (target_host, target_port)
        self._unix_socket = unix_socket  # an embedded PostgreSQL listens on a socket file
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, '127.0.0.1', self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        """Listen again (nothing to do if not cut: a test's `finally` may restore whatever happened before)."""
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix_socket:
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(self._unix_socket)
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()


def proxied_url(url: str, proxy: CuttableProxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    query = {key: value for key, value in parsed.query.items() if key != 'host'}
    return parsed.set(host='127.0.0.1', port=proxy.port, query=query).render_as_string(hide_password=False)


def proxy_for(url: str) -> CuttableProxy:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    socket_dir = parsed.query.get('host')
    if isinstance(socket_dir, str) and socket_dir.startswith('/'):
        return CuttableProxy('', 0, unix_socket=f'{socket_dir}/.s.PGSQL.{parsed.port or 5432}')
    return CuttableProxy(parsed.host or '127.0.0.1', parsed.port or 5432)
