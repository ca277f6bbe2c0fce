"""An answer leaves the mock in one write: its head and its body together.

uvicorn writes the head and the body apart; two writes are two system calls and, on
loopback, two packets the client wakes for (a fifth of the mock's create rate under load).
The mock's own HTTP protocol is driven here over a real socket pair on a real event loop,
with the writes reaching the socket's transport counted.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from mock_server import Settings, create_app
from mock_server.http.protocol import http_protocol
from tests.conftest import ACME_KEY, SUCCEEDED_RENDER

REQUEST = (
    f"GET /v1/renders/{SUCCEEDED_RENDER} HTTP/1.1\r\nHost: mock\r\n"
    f"Authorization: Bearer {ACME_KEY}\r\n\r\n"
).encode()


def _writes_per_answer(requests: int) -> list[int]:
    """The writes the socket's transport received for each of ``requests`` answers in turn."""
    settings = Settings()
    app = create_app(settings)
    config = uvicorn.Config(app, http=http_protocol(settings), lifespan="off", log_level="error")
    config.load()

    async def exchange() -> list[int]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        protocol: Any = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={}
        )
        await loop.connect_accepted_socket(lambda: protocol, ours)
        transport: Any = protocol.transport
        socket_transport = getattr(transport, "_transport", transport)
        writes: list[bytes] = []
        plain_write = socket_transport.write

        def counted(data: bytes) -> None:
            writes.append(bytes(data))
            plain_write(data)

        socket_transport.write = counted
        counts = []
        for _ in range(requests):
            before = len(writes)
            await loop.sock_sendall(theirs, REQUEST)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                answer += await loop.sock_recv(theirs, 65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            counts.append(len(writes) - before)
        transport.close()
        theirs.close()
        await app.state.store.aclose()
        return counts

    return asyncio.run(exchange())


def test_each_answer_is_one_write_head_and_body_together() -> None:
    assert _writes_per_answer(3) == [1, 1, 1]
