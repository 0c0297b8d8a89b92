"""The gunicorn worker of `chatbot serve`: gthread, hardened against slow clients, answering protocol errors in JSON.

gunicorn's gthread worker hands every accepted connection to one of its few threads, which then blocks on the socket
until the request has arrived: a handful of clients trickling their heads or bodies hold every thread and nobody else
is answered. This worker reads without blocking instead and gives a connection to a thread only once its whole request
is there (app/framing.py); until then it waits in the worker's poller, costing no thread, and is answered 408 when its
head takes longer than READ_TIMEOUT after a thread first looked at the connection (at once, unless every thread is busy
answering), or its body longer than READ_TIMEOUT after the head. What a
thread still reads itself (requests the framing leaves to the parser) is read under the same deadline.

After its answer a connection is closed without blocking either: gunicorn lingers until the client closes, on the
worker's main thread, so a client that never closes would stall the whole worker for seconds at a time.

Errors in the request itself (malformed, too long, a broken chunked body) are answered as `{"error": ...}` with their
4xx status, like the app's own errors, and logged as one warning line without a traceback.

This builds on the internals of gunicorn 27's gthread worker (`_DEFER`, `pending_conns`, `TConn`): tests/
test_hardening_server.py checks the behaviour through real sockets.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from selectors import EVENT_READ
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import _DEFER, ThreadWorker

from app.errors import ApiError
from app.framing import RequestBuffer

RECV_SIZE = 64 * 1024
LINGER_SECONDS = 2.0  # how long a closed connection waits for the client's own close (RFC 9112 section 9.6)
LINGER_BYTES = 64 * 1024  # nor does it read more than this of what the client still sends
CLOSE = object()  # handle() results: close now, or wait in the poller for the client to close
LINGER = object()

PROTOCOL_ERRORS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int, str], ...] = (
    # gunicorn's own errors first: a bad header the app tried to send is a bug, not the client's fault
    ((http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName), 500, "internal server error"),
    (http_errors.ConfigurationProblem, 500, "internal server error"),
    (http_errors.LimitRequestLine, 414, "request line too long"),
    (http_errors.LimitRequestHeaders, 431, "request header fields too large"),
    (http_errors.UnsupportedTransferCoding, 501, "transfer coding not supported: send Content-Length or chunked"),
    (http_errors.ExpectationFailed, 417, "unsupported Expect header: only 100-continue is understood"),
    (http_errors.InvalidChunkSize, 400, "malformed chunked body: bad chunk size"),
    (http_errors.ChunkMissingTerminator, 400, "malformed chunked body: a chunk does not end with CRLF"),
    (http_errors.InvalidChunkExtension, 400, "malformed chunked body: bad chunk extension"),
    (http_errors.ForbiddenProxyRequest, 403, "forbidden"),
    (http_errors.ParseException, 400, "malformed HTTP request"),
    (http_errors.NoMoreData, 400, "the request ended before its announced length"),
)


@dataclass(frozen=True)
class ReadLimits:
    """A request's head must arrive within `timeout` seconds, then its body (`body_bytes` at most) within as long."""

    timeout: float = 10.0
    body_bytes: int = 64 * 1024


@dataclass
class Pending:
    """A connection's request as far as it has arrived, and until when the worker waits for the rest."""

    limits: ReadLimits
    buffer: RequestBuffer
    deadline: float
    waiting_for: str = "head"  # then "body", then "close" once answered
    sent_continue: bool = False

    @classmethod
    def start(cls, limits: ReadLimits) -> Pending:
        return cls(limits, RequestBuffer(limits.body_bytes), time.monotonic() + limits.timeout)


def protocol_error(exc: BaseException) -> tuple[int, str]:
    """The status and message for an error in reading a request: ApiError as raised, gunicorn's errors by class."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    for kinds, status, message in PROTOCOL_ERRORS:
        if isinstance(exc, kinds):
            return status, message
    return 500, "internal server error"


def json_error_response(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer in the shape of the app's errors, for when the app never saw the request."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )
    return head.encode("latin-1") + body


def timeout_message(waiting_for: str, limits: ReadLimits) -> str:
    after = "of the connection" if waiting_for == "head" else "of the request head"
    return f"request timeout: the {waiting_for} did not arrive within {limits.timeout:g} s {after}"


class DeadlineUnreader(SocketUnreader):
    """gunicorn's socket reader, starting with what already arrived, and raising 408 once `deadline` has passed."""

    def __init__(self, sock: socket.socket, received: bytes, deadline: float, message: str) -> None:
        super().__init__(sock)
        self.unread(received)
        self.deadline = deadline
        self.message = message

    def chunk(self, size_hint: int | None = None) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ApiError(408, self.message)
        self.sock.settimeout(remaining)
        try:
            return super().chunk(size_hint)
        except TimeoutError:
            raise ApiError(408, self.message) from None
        finally:
            self.sock.settimeout(None)  # writing the answer keeps gunicorn's blocking socket


class CheckedBodyReader:
    """A request body reader whose framing errors reach the app as ApiError (a JSON 4xx), not as a 500 and traceback."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def read(self, size: int) -> bytes:
        try:
            return self.reader.read(size)
        except (http_errors.ParseException, http_errors.NoMoreData) as exc:
            raise ApiError(*protocol_error(exc)) from None


class JsonThreadWorker(ThreadWorker):
    """gthread that reads requests without blocking a thread, under a deadline, and answers its errors in JSON."""

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if cfg.keepalive or cfg.is_ssl:
            raise RuntimeError("JsonThreadWorker serves plain HTTP and closes after each answer: keepalive 0, no TLS")

    @property
    def limits(self) -> ReadLimits:
        return getattr(self.app, "read_limits", None) or ReadLimits()

    # --- in a worker thread ---------------------------------------------------------------------------------------

    def handle(self, conn: Any) -> Any:
        pending = getattr(conn, "pending", None)
        if pending is None:
            pending = conn.pending = Pending.start(self.limits)
        if not conn.initialized:
            arrived = self.read_ahead(conn, pending)
            if arrived is None:
                return CLOSE
            if not arrived:
                return _DEFER
            self.hand_over(conn, pending)
        super().handle(conn)
        return self.start_closing(conn, pending)

    def read_ahead(self, conn: Any, pending: Pending) -> bool | None:
        """Take what has arrived: True when the request is whole, False to wait for more, None if the client left."""
        buffer = pending.buffer
        conn.sock.setblocking(False)
        while True:
            try:
                data = conn.sock.recv(RECV_SIZE)
            except BlockingIOError:
                break
            except OSError:
                return None
            if not data:  # the client closed its side: answer what it sent if that is whole
                return True if buffer.data and buffer.ready() else None
            buffer.add(data)
            if len(data) < RECV_SIZE or buffer.ready():  # ready() is also true once oversized: memory stays bounded
                break
        if buffer.ready():
            return True
        if pending.waiting_for == "head" and buffer.head_end is not None:
            pending.waiting_for = "body"
            pending.deadline = time.monotonic() + pending.limits.timeout
            if buffer.framing.expects_continue:
                pending.sent_continue = self.send_continue(conn.sock)
        return False

    @staticmethod
    def send_continue(sock: socket.socket) -> bool:
        try:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # 25 bytes into an empty send buffer: never blocks
        except OSError:
            return False
        return True

    def hand_over(self, conn: Any, pending: Pending) -> None:
        """Let gunicorn parse the request from what arrived; what is missing it reads under the same deadline."""
        conn.data_ready = True  # no wait for a first byte in gunicorn's handle()
        conn.init()
        message = timeout_message(pending.waiting_for, pending.limits)
        conn.parser.unreader = DeadlineUnreader(conn.sock, bytes(pending.buffer.data), pending.deadline, message)

    def handle_request(self, req: Any, conn: Any) -> bool:
        body = getattr(req, "body", None)
        if body is not None:
            body.reader = CheckedBodyReader(body.reader)
        pending = getattr(conn, "pending", None)
        if pending is not None and pending.sent_continue:
            req._expected_100_continue = False  # sent while the body was awaited; gunicorn would send it again
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        status, message = protocol_error(exc)
        ip = addr[0] if addr else ""
        if status == 500:  # a bug, not the client's doing: the traceback goes to the log
            self.log.exception("Error handling request from ip=%s", ip)
        else:
            self.log.warning("Invalid request from ip=%s: %s", ip, message if isinstance(exc, ApiError) else exc)
        try:
            util.write_nonblock(client, json_error_response(status, message))
        except OSError as write_error:
            self.log.debug("Failed to send error message: %s", write_error)

    def start_closing(self, conn: Any, pending: Pending) -> Any:
        """Say we are done sending, then wait in the poller, not here, for the client to close (or LINGER_SECONDS)."""
        pending.waiting_for = "close"
        pending.deadline = time.monotonic() + LINGER_SECONDS
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
        except OSError:
            return CLOSE
        return CLOSE if self.drained(conn.sock) else LINGER

    @staticmethod
    def drained(sock: socket.socket) -> bool:
        """Read what the client still sends, without blocking: True once it closed, failed or sent too much."""
        total = 0
        while total < LINGER_BYTES:
            try:
                data = sock.recv(RECV_SIZE)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not data:
                return True
            total += len(data)
        return True

    # --- on the worker's main thread ------------------------------------------------------------------------------

    def finish_request(self, conn: Any, fs: Any) -> None:
        result = None if fs.cancelled() or fs.exception() is not None else fs.result()
        if result is CLOSE or (result is LINGER and not self.alive):
            self.nr_conns -= 1
            util.close(conn.sock)
        elif result is LINGER:
            self.pending_conns.append(conn)
            self.poller.register(conn.sock, EVENT_READ, partial(self.on_closing_socket_readable, conn))
        else:
            super().finish_request(conn, fs)

    def on_closing_socket_readable(self, conn: Any, _sock: Any) -> None:
        if self.drained(conn.sock):
            self.drop(conn)

    def murder_pending(self) -> None:
        """Drop connections past their deadline (all of them when stopping); those cut mid-request are answered 408."""
        now = time.monotonic()
        for conn in [c for c in self.pending_conns if not self.alive or c.pending.deadline <= now]:
            pending = conn.pending
            if self.alive and pending.waiting_for != "close" and pending.buffer.data:
                message = timeout_message(pending.waiting_for, pending.limits)
                self.log.warning("Invalid request from ip=%s: %s", conn.client[0], message)
                with contextlib.suppress(OSError):
                    conn.sock.send(json_error_response(408, message))
            self.drop(conn)

    def drop(self, conn: Any) -> None:
        self.pending_conns.remove(conn)
        with contextlib.suppress(KeyError, ValueError, OSError):  # a closed socket may be gone from the poller
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        util.close(conn.sock)
