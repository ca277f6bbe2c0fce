"""A real Redis Cluster for tests: three primaries of ``redis-server`` on loopback, no replicas.

Each node is a ``RedisServer`` with cluster mode on and its node table in a folder of its
own; the slots are split evenly and the nodes introduced to each other with ``CLUSTER
MEET``, as ``redis-cli --cluster create`` would, without needing ``redis-cli``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from mock_server.testing import RedisServer, free_port

SLOTS = 16_384


def _cluster_node(folder: Path, index: int, bus: int) -> list[str]:
    """A node's arguments: cluster mode, its node table, a second to call a node failed.

    The cluster bus gets a free port of its own: by default it is the node's port + 10000,
    which is past 65535 for a free port drawn from the top of the range.
    """
    table = str(folder / f"nodes-{index}.conf")
    return [
        "--cluster-enabled", "yes",
        "--cluster-config-file", table,
        "--cluster-port", str(bus),
        "--cluster-node-timeout", "1000",
    ]  # fmt: skip


def _cluster(client: redis.Redis, *arguments: object) -> Any:
    """``CLUSTER …`` on one node, its answer unparsed."""
    return client.execute_command("CLUSTER", *arguments)  # type: ignore[no-untyped-call]


class RedisCluster:
    """Three cluster-mode ``redis-server`` processes serving every slot between them."""

    def __init__(self, primaries: int = 3) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="redis-cluster-")
        folder = Path(self._folder.name)
        self._buses = [free_port() for _ in range(primaries)]
        self.nodes = [
            RedisServer(arguments=_cluster_node(folder, i, bus))
            for i, bus in enumerate(self._buses)
        ]

    @property
    def url(self) -> str:
        """The first node's URL (any node is an entry point to the cluster)."""
        return self.nodes[0].url

    def start(self, timeout: float = 20.0) -> str:
        """Start the nodes, share the slots, and wait until every node says the cluster is ok."""
        for node in self.nodes:
            node.start()
        clients = [redis.Redis(port=node.port) for node in self.nodes]
        share = SLOTS // len(self.nodes)
        for i, client in enumerate(clients):
            last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            _cluster(client, "ADDSLOTSRANGE", i * share, last)
        for node, bus in zip(self.nodes[1:], self._buses[1:], strict=True):
            _cluster(clients[0], "MEET", "127.0.0.1", node.port, bus)
        deadline = time.monotonic() + timeout
        while not all(b"cluster_state:ok" in _cluster(c, "INFO") for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        for client in clients:
            client.close()
        return self.url

    def stop(self) -> None:
        """Stop every node and remove their node tables."""
        for node in self.nodes:
            node.stop()
        self._folder.cleanup()

    def __enter__(self) -> RedisCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
