"""A lean HTTP/1.1 keep-alive transport for httpx, for the client's one kind of traffic.

httpx's default pool (httpcore over anyio) spends about 2 ms of CPU per request here, mostly in
pool bookkeeping; the scheduler only ever sends small GETs to one origin, so a handful of
asyncio stream connections parsed with h11 do the same job in a fraction of that. An idle
connection the server has closed is dropped before use; a request is never sent twice by the
transport, because a signed request carries a one-time nonce: a connection lost mid-request is
reported, and the client's retry signs a fresh request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any

import h11
import httpx

_READ_CHUNK = 65536


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.writer.close()


class _ClosedEarly(Exception):
    """The server closed the connection before answering."""


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """Up to ``max_connections`` persistent connections per origin; callers bound concurrency."""

    def __init__(
        self,
        max_connections: int = 16,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._max_idle = max_connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl_context = ssl_context

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            import certifi

            self._ssl_context = ssl.create_default_context(cafile=certifi.where())
        return self._ssl_context

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        tls: dict[str, Any] = {"ssl": self._tls(), "server_hostname": host} if scheme == "https" else {}
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=_READ_CHUNK, **tls), self._connect_timeout
            )
        except asyncio.TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        return _Connection(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        idle = self._idle.setdefault(origin, deque())
        while idle:
            connection = idle.pop()
            if connection.reader.at_eof() or connection.writer.is_closing():
                connection.close()
                continue
            return await self._exchange(connection, request, idle)
        return await self._exchange(await self._connect(origin), request, idle)

    async def _exchange(self, conn: _Connection, request: httpx.Request, idle: deque[_Connection]) -> httpx.Response:
        try:
            response, body = await asyncio.wait_for(self._roundtrip(conn, request), self._read_timeout)
        except asyncio.TimeoutError as exc:
            conn.close()
            raise httpx.ReadTimeout(f"no complete response within {self._read_timeout:g} s") from exc
        except _ClosedEarly as exc:
            conn.close()
            raise httpx.RemoteProtocolError("server closed the connection without a response") from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            conn.close()
            raise httpx.ReadError(f"connection failed: {exc}") from exc
        except h11.RemoteProtocolError as exc:
            conn.close()
            raise httpx.RemoteProtocolError(f"malformed HTTP response: {exc}") from exc
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE and len(idle) < self._max_idle:
            conn.h11.start_next_cycle()
            idle.append(conn)
        else:
            conn.close()
        return httpx.Response(response.status_code, headers=list(response.headers), content=body, request=request)

    async def _roundtrip(self, conn: _Connection, request: httpx.Request) -> tuple[h11.Response, bytes]:
        target = request.url.raw_path
        headers = list(request.headers.raw)
        content = request.content
        data = conn.h11.send(h11.Request(method=request.method, target=target, headers=headers))
        if content:
            data += conn.h11.send(h11.Data(data=content))
        data += conn.h11.send(h11.EndOfMessage())
        conn.writer.write(data)
        await conn.writer.drain()
        response: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            event = conn.h11.next_event()
            if event is h11.NEED_DATA:
                received = await conn.reader.read(_READ_CHUNK)
                if not received and response is None:
                    raise _ClosedEarly
                conn.h11.receive_data(received)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return response, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise _ClosedEarly

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
