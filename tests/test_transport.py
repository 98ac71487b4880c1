"""The keep-alive transport against raw HTTP/1.1 servers on loopback: framing, reuse, failures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest

from esa_scheduler.edge.transport import KeepAliveTransport

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def serve(script: Script) -> tuple[asyncio.AbstractServer, str, list[int]]:
    """A loopback server running ``script`` per connection; returns (server, url, connection ids)."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            await script(reader, writer, connections[-1])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/", connections


async def get(transport: KeepAliveTransport, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.get(url, params={"a": "b c"})


def test_content_length_and_keep_alive_reuse_one_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            head = await read_request(reader)
            assert b"GET /?a=b+c HTTP/1.1" in head
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}')
            await writer.drain()

    async def go() -> list[int]:
        server, url, connections = await serve(script)
        async with server, httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            for _ in range(3):
                response = await client.get(url, params={"a": "b c"})
                assert response.json() == {"ok": True}
        return connections

    assert asyncio.run(go()) == [0]


def test_chunked_responses_are_reassembled() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n')
        await writer.drain()

    async def go() -> httpx.Response:
        server, url, _ = await serve(script)
        async with server:
            return await get(KeepAliveTransport(), url)

    assert asyncio.run(go()).json() == {"a": 1}


def test_a_keep_alive_connection_closed_by_the_server_is_replaced_once() -> None:
    """The server answers one request per connection and then hangs up without saying so."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()

    async def go() -> list[int]:
        server, url, connections = await serve(script)
        async with server, httpx.AsyncClient(transport=KeepAliveTransport()) as client:
            for _ in range(3):
                assert (await client.get(url)).status_code == 200
                await asyncio.sleep(0.01)
        return connections

    assert asyncio.run(go()) == [0, 1, 2]


def test_a_fresh_connection_closed_without_an_answer_is_an_error() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)

    async def go() -> None:
        server, url, _ = await serve(script)
        async with server:
            await get(KeepAliveTransport(), url)

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(go())


def test_a_silent_server_times_out() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def go() -> None:
        server, url, _ = await serve(script)
        async with server:
            await get(KeepAliveTransport(read_timeout=0.1), url)

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(go())


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        asyncio.run(get(KeepAliveTransport(), f"http://127.0.0.1:{port}/"))


def test_garbage_instead_of_http_is_a_protocol_error() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()

    async def go() -> None:
        server, url, _ = await serve(script)
        async with server:
            await get(KeepAliveTransport(), url)

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(go())
