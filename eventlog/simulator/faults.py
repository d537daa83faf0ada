"""Network faults the simulator's own server can't play: a port nobody listens on, a server that
accepts connections and never answers. Both on loopback, for the reliability tests and the curious.

    async with silent_server() as url:      # TCP accepted, not a byte back, ever
        ...
    url = refused_url()                     # connect() is refused at once
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

__all__ = ["silent_server", "refused_url"]


@contextlib.asynccontextmanager
async def silent_server(host: str = "127.0.0.1") -> AsyncIterator[str]:
    """An http:// base URL whose server accepts every connection, reads what it is sent, and never
    answers."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.close()
        for w in writers:
            w.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


def refused_url(host: str = "127.0.0.1") -> str:
    """An http:// base URL on a loopback port that was free a moment ago: connecting is refused."""
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    return f"http://{host}:{port}"
