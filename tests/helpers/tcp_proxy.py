"""A loopback TCP proxy that can lose one reply: the network failure a client's retry meets.

proxy = await LossyProxy.start(server_port)   # listens on 127.0.0.1:<proxy.port>
proxy.lose_reply_to(b"EVALSHA")               # the next request holding these bytes
                                              # reaches the server, which runs it; its
                                              # reply is dropped with the connection
proxy.before(b"EVALSHA", flush_scripts)       # call this first (the server changes
                                              # between two requests of the client)
await proxy.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["LossyProxy"]


class LossyProxy:
    """Forwards every connection to `127.0.0.1:<target_port>`; see the module docstring."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.replies_lost = 0
        self._marker: bytes | None = None
        self._before: tuple[bytes, Callable[[], object]] | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, target_port: int) -> LossyProxy:
        proxy = cls(target_port)
        proxy._server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def lose_reply_to(self, marker: bytes) -> None:
        self._marker = marker

    def before(self, marker: bytes, action: Callable[[], object]) -> None:
        """Call `action` (once) just before the next request holding `marker` is passed on."""
        self._before = (marker, action)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._forward(client_r, client_w)
        finally:
            self._connections.discard(task)

    async def _forward(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        doomed = asyncio.Event()  # set when this connection's next reply is to be lost

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self._before is not None and self._before[0] in data:
                    action, self._before = self._before[1], None
                    action()
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    doomed.set()
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if doomed.is_set():
                    self.replies_lost += 1
                    return  # the server ran the request; its client never hears of it
                client_w.write(data)
                await client_w.drain()

        pipes = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._pipes.discard(pipe)
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def close(self) -> None:
        """Stop listening and close every connection (each closed before this returns)."""
        if self._server is not None:
            self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
