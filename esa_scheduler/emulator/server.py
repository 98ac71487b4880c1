"""HTTP/1.1 on loopback for the emulated service: asyncio + h11 with keep-alive, in its own thread.

One event loop multiplexes every connection, so 64 concurrent keep-alive clients cost no threads;
h11 (already a dependency of httpx) does the framing. The loop runs in a background thread so
tests and the CLI can drive the ``Emulator`` from ordinary synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any

import h11
from pydantic import ValidationError

from esa_scheduler import config
from esa_scheduler.addresses import loopback_bind_address
from esa_scheduler.emulator.functions import FunctionBody
from esa_scheduler.emulator.models import (
    EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET,
    ApiError,
    EmulatedAccount,
    EmulatedRole,
    EmulatedTask,
    Faults,
    load_tasks,
)
from esa_scheduler.emulator.replies import Reply, error_reply
from esa_scheduler.emulator.service import EsaBackend
from esa_scheduler.emulator.verify import HttpRequest
from esa_scheduler.errors import ConfigError
from esa_scheduler.timeutil import now_utc

MAX_BODY = 1 << 20
SIGNAL_POLL_S = 0.2
MAX_HEAD = 64 * 1024
_READ_SIZE = 64 * 1024
_JSON = b"application/json;charset=utf-8"
_MALFORMED = ApiError("BadRequest", "The request is not valid HTTP/1.1 or its body exceeds 1 MiB.")


class _BadRequest(Exception):
    """The peer broke HTTP/1.1 framing (or sent over 1 MiB): one error document, then a hang-up."""


class Emulator(EsaBackend):
    """The emulated ESA, STS and FC APIs served on ``url`` while the context is open (port 0 picks a
    free port); see ``EsaBackend`` for accounts, roles and functions."""

    def __init__(
        self,
        tasks: Iterable[EmulatedTask | Mapping[str, Any]] = (),
        faults: Faults | None = None,
        access_key_id: str = EMULATOR_ACCESS_KEY_ID,
        access_key_secret: str = EMULATOR_ACCESS_KEY_SECRET,
        sts_credentials: Iterable[tuple[str, str, str]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = now_utc,
        *,
        accounts: Iterable[EmulatedAccount] = (),
        roles: Iterable[EmulatedRole] = (),
        functions: Mapping[str, FunctionBody] | None = None,
    ) -> None:
        super().__init__(
            tasks,
            faults,
            access_key_id,
            access_key_secret,
            sts_credentials,
            clock,
            accounts=accounts,
            roles=roles,
            functions=functions,
        )
        self._bind = loopback_bind_address(host, "emulator host")
        self._requested_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._startup_error: BaseException | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        host = f"[{self._bind}]" if ":" in self._bind else self._bind
        return f"http://{host}:{self._port}"

    def start(self) -> Emulator:
        """Listen and serve in a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, args=(ready,), name="esa-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Wait for the function runs still going (they may call the emulator), then close the
        listener and every open connection, and join the thread."""
        if self._thread is None:
            return
        self.stop_functions()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None
        self._port = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(ready))
        except Exception as exc:  # handed to start(), which re-raises it in the caller's thread
            self._startup_error = exc
        finally:
            ready.set()
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        connections: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            try:
                # Cancellation only comes from our own shutdown; ending normally keeps asyncio's
                # stream callback from logging the cancelled task as an error (Python 3.11).
                with contextlib.suppress(asyncio.CancelledError):
                    await self._serve_connection(reader, writer)
            finally:
                connections.discard(task)

        try:
            server = await asyncio.start_server(on_connect, self._bind, self._requested_port, backlog=512)
        except OSError as exc:
            self._startup_error = ConfigError(
                f"emulator cannot listen on {self._bind}:{self._requested_port}: {exc.strerror or exc}"
            )
            return
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._port = server.sockets[0].getsockname()[1]
        ready.set()
        await self._stop.wait()
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if isinstance(peer, tuple) else ""
        try:
            while True:
                try:
                    request = await _read_request(conn, reader, peer_host)
                except _BadRequest:
                    with contextlib.suppress(h11.LocalProtocolError):
                        _write_reply(conn, writer, error_reply(_MALFORMED, ""))
                    await writer.drain()
                    return
                if request is None:
                    return
                reply = self.handle(request)
                if reply.delay > 0:
                    await asyncio.sleep(reply.delay)
                if reply.defer is not None:
                    reply = await asyncio.to_thread(reply.defer)
                if reply.drop:
                    writer.transport.abort()
                    return
                _write_reply(conn, writer, reply)
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.LocalProtocolError):
            return
        finally:
            writer.close()


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader, peer: str) -> HttpRequest | None:
    """The next complete request on the connection, or ``None`` once the peer has closed it."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise _BadRequest from exc
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_READ_SIZE))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise _BadRequest
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            return _http_request(head, bytes(body), peer)
        else:
            return None


def _http_request(head: h11.Request, body: bytes, peer: str) -> HttpRequest:
    headers: dict[str, str] = {}
    for raw_name, raw_value in head.headers:
        name = raw_name.decode("ascii")
        value = raw_value.decode("utf-8", "replace")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    path, _, query = head.target.decode("utf-8", "replace").partition("?")
    return HttpRequest(head.method.decode("ascii"), path, query, headers, body, peer)


def _write_reply(conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply) -> None:
    headers = [
        (b"content-type", _JSON),
        (b"content-length", str(len(reply.body)).encode()),
        *((name.encode(), value.encode()) for name, value in reply.headers),
    ]
    reason = HTTPStatus(reply.status).phrase.encode()
    out = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=reason)) or b""
    out += conn.send(h11.Data(data=reply.body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    writer.write(out)


def export_lines(url: str, access_key_id: str | None, access_key_secret: str | None) -> list[str]:
    """``export`` lines an operator pastes into a shell so that ``run``, ``invoke`` and ``hold`` use
    this emulator. The built-in test key pair is public; a secret given with ``--access-key-secret``
    may be a real one, so it is never printed: a placeholder names the flag instead."""
    secret = EMULATOR_ACCESS_KEY_SECRET if access_key_secret is None else "<the value of --access-key-secret>"
    values = {
        config.ENDPOINT: url,
        config.ACCESS_KEY_ID: access_key_id or EMULATOR_ACCESS_KEY_ID,
        config.ACCESS_KEY_SECRET: secret,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def serve(
    host: str,
    port: int,
    tasks_file: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    latency_ms: float,
    throttle_rps: float | None,
    error_rate: float,
    seed: int | None,
) -> int:
    """Run the emulator in the foreground until SIGINT or SIGTERM; must be called on the main thread.

    ``error_rate`` is split evenly: half ServiceUnavailable (503), half InternalError (400).
    """
    if (access_key_id is None) != (access_key_secret is None):
        raise ConfigError("emulator: give both --access-key-id and --access-key-secret, or neither")
    if not 0 <= error_rate <= 1:
        raise ConfigError(f"emulator: --error-rate must be between 0 and 1, got {error_rate}")
    try:
        faults = Faults(
            latency_ms=latency_ms,
            throttle_rps=throttle_rps,
            unavailable_rate=error_rate / 2,
            internal_error_rate=error_rate / 2,
            seed=seed,
        )
    except ValidationError as exc:
        problems = [f"emulator: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(problems[0], problems) from None
    emulator = Emulator(
        tasks=load_tasks(tasks_file) if tasks_file else (),
        faults=faults,
        access_key_id=access_key_id or EMULATOR_ACCESS_KEY_ID,
        access_key_secret=access_key_secret or EMULATOR_ACCESS_KEY_SECRET,
        host=host,
        port=port,
    )
    signalled: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: signalled.append(signum))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with emulator:
            print(
                f"listening on {emulator.url}", *export_lines(emulator.url, access_key_id, access_key_secret), sep="\n"
            )
            print(
                f"# ESA API 2024-09-10 with {len(emulator.tasks)} task(s), stats at {emulator.url}/_emulator/stats; "
                "the export lines above point run, invoke and hold at it",
                flush=True,
            )
            # Polled, not waited on: the kernel may deliver the signal to a server thread, and a
            # main thread blocked on a lock would never run the handler. (A handler that set a
            # threading.Event could also deadlock on the lock the interrupted wait holds.)
            while not signalled:
                time.sleep(SIGNAL_POLL_S)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
