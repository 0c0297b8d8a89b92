"""Whether the bytes received on a connection hold a whole HTTP/1 request: what lets `chatbot serve` keep slow clients
out of its worker threads.

A worker thread takes a connection only once this says its request has arrived (see app/worker.py), so a client that
sends its request a byte at a time, or a head and no body, waits in the worker's poller instead of holding one of its
few threads. This is not a parser: whatever it cannot frame (a malformed or oversized head, a body over the limit, an
unknown transfer coding) counts as ready, and gunicorn's own parser then answers it, reading anything missing under a
deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_LIMIT = 64 * 1024  # a longer head is handed to the parser, whose own limits answer 414 or 431
CHUNK_LINE_LIMIT = 8 * 1024  # a longer chunk-size line is malformed: the parser answers 400
HEX_DIGITS = b"0123456789abcdefABCDEF"


@dataclass(frozen=True)
class Framing:
    """How much body to wait for after the head: `length` bytes, or a chunked body up to its last chunk."""

    length: int = 0
    chunked: bool = False
    expects_continue: bool = False  # the client waits for "100 Continue" before it sends the body

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0


def body_framing(head: bytes, body_limit: int) -> Framing:
    """The body a head announces, or no body to wait for when its framing is the parser's business (bad or too big)."""
    lengths: list[bytes] = []
    codings: list[bytes] = []
    expects_continue = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            lengths.append(value.strip())
        elif name == b"transfer-encoding":
            codings.append(value.strip().lower())
        elif name == b"expect":
            expects_continue = value.strip().lower() == b"100-continue"
    if codings:
        return Framing(chunked=codings == [b"chunked"] and not lengths, expects_continue=expects_continue)
    if len(lengths) != 1 or not lengths[0].isdigit() or int(lengths[0]) > body_limit:
        return Framing()  # none, ambiguous or over the limit: answered (400, 413) without waiting for the body
    return Framing(length=int(lengths[0]), expects_continue=expects_continue)


def chunked_end(data: bytes | bytearray, start: int) -> tuple[bool, int]:
    """Walk a chunked body from `start`, the first byte of a chunk-size line.

    (True, _) once the last chunk and its trailers have arrived, or the framing is malformed; else (False, the start
    of the first chunk still incomplete), where the next call resumes instead of walking the whole body again.
    """
    pos = start
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return len(data) - pos > CHUNK_LINE_LIMIT, pos
        size = bytes(data[pos:line_end]).split(b";", 1)[0].rstrip(b" \t")
        if not size or size.strip(HEX_DIGITS):
            return True, pos
        length = int(size, 16)
        if length == 0:
            return data.find(b"\r\n\r\n", line_end) >= 0, pos
        if line_end + 2 + length + 2 > len(data):
            return False, pos
        pos = line_end + 2 + length + 2


class RequestBuffer:
    """The bytes of one request as they arrive, and whether a worker thread can take it now."""

    def __init__(self, body_limit: int) -> None:
        self.data = bytearray()
        self.body_limit = body_limit
        self.head_end: int | None = None  # index just past the blank line that ends the head
        self.framing = Framing()
        self._resume = 0  # where the search for the end of the head, then for the last chunk, goes on

    def add(self, data: bytes) -> None:
        self.data += data

    def head_complete(self) -> bool:
        if self.head_end is None:
            end = self.data.find(b"\r\n\r\n", max(0, self._resume - 3))
            if end < 0:
                self._resume = len(self.data)
                return False
            self.head_end = self._resume = end + 4
            self.framing = body_framing(bytes(self.data[:end]), self.body_limit)
        return True

    def ready(self) -> bool:
        """True once the request is whole, or once waiting longer would not help (oversized, malformed)."""
        if not self.head_complete():
            return len(self.data) > HEAD_LIMIT
        received = len(self.data) - self.head_end
        if not self.framing.chunked:
            return received >= self.framing.length
        if received > 2 * self.body_limit:  # room for the chunk framing; the app answers 413 past the limit
            return True
        done, self._resume = chunked_end(self.data, self._resume)
        return done
