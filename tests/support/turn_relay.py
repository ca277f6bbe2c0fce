"""A TCP relay to Redis on loopback that counts round trips: the client's turns to speak.

Each time the client writes after Redis answered (or first) on a connection is one round
trip, however many commands that write pipelines.
"""

from __future__ import annotations

import socket
import threading


class TurnCountingRelay:
    """A TCP relay to Redis that counts the client's turns across all its connections."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.turns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self._upstream))
            last = ["server"]  # who sent last on this connection
            for source, sink, side in ((client, server, "client"), (server, client, "server")):
                threading.Thread(
                    target=self._pump, args=(source, sink, side, last), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, side: str, last: list[str]) -> None:
        while True:
            try:
                data = source.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                for end in (source, sink):
                    end.close()
                return
            with self._lock:
                if side == "client" and last[0] != "client":
                    self.turns += 1
                last[0] = side
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()
