"""Cutting a byte stream into newline-delimited lines, however it arrives.

The Companies House stream is one endless HTTP body. TCP and the chunked
encoding cut it wherever they like: a line may span several chunks, a chunk
may hold many lines, and a connection may end in the middle of a line. The
splitter keeps the unfinished tail between `feed` calls and never yields it
until its newline arrives, so a half event is never appended; the resumed
connection re-sends it whole.

A line longer than the cap is not buffered without bound (a broken upstream
sending megabytes with no newline would otherwise eat memory): once the tail
passes the cap the splitter keeps only an excerpt and counts the rest, then
reports it as `Oversized` when its newline finally comes.

Blank lines (a bare `\\n`, or `\\r\\n`) are the stream's heartbeats: they are
counted, not yielded.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["LineSplitter", "Oversized", "DEFAULT_MAX_LINE", "EXCERPT_BYTES"]

DEFAULT_MAX_LINE = 1 << 20  # 1 MiB: a company profile is a few KiB
EXCERPT_BYTES = 200


class Oversized(NamedTuple):
    """A line over the cap: its first bytes and its full length (without the newline)."""

    excerpt: bytes
    length: int


class LineSplitter:
    """Incremental NDJSON splitter; `feed` returns the lines completed by a chunk."""

    __slots__ = ("max_line", "heartbeats", "_parts", "_held", "_skipping", "_excerpt")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self.heartbeats = 0
        # The unfinished line as a list of pieces: joining once at the newline keeps a long
        # line arriving in many small chunks linear, not quadratic.
        self._parts: list[bytes] = []
        self._held = 0
        self._skipping = False  # inside an oversized line whose bytes are counted, not kept
        self._excerpt = b""

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held (or, for an oversized one, counted) so far."""
        return self._held

    def feed(self, chunk: bytes) -> list[bytes | Oversized]:
        """Complete lines (without their newline) in order; heartbeats are dropped and counted."""
        out: list[bytes | Oversized] = []
        cut = chunk.find(b"\n")
        if cut < 0:
            self._hold(chunk)
            return out
        if self._held:
            if self._skipping:
                out.append(Oversized(self._excerpt, self._held + cut))
            else:
                self._parts.append(chunk[:cut])
                self._emit(b"".join(self._parts), out)
            self._reset()
            lines = chunk[cut + 1:].split(b"\n")
        else:
            lines = chunk.split(b"\n")
        self._hold(lines.pop())
        for line in lines:
            self._emit(line, out)
        return out

    def _emit(self, line: bytes, out: list[bytes | Oversized]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line or line.isspace():
            self.heartbeats += 1
        elif len(line) > self.max_line:
            out.append(Oversized(line[:EXCERPT_BYTES], len(line)))
        else:
            out.append(line)

    def _hold(self, piece: bytes) -> None:
        if not piece:
            return
        self._held += len(piece)
        if self._skipping:
            return
        self._parts.append(piece)
        if self._held > self.max_line + 1:  # + 1: room for a trailing \r
            self._excerpt = b"".join(self._parts)[:EXCERPT_BYTES]
            self._parts = []
            self._skipping = True

    def _reset(self) -> None:
        self._parts = []
        self._held = 0
        self._skipping = False
        self._excerpt = b""

    def discard(self) -> int:
        """Forget an unfinished line (the connection ended); returns how many bytes it had."""
        lost = self._held
        self._reset()
        return lost
