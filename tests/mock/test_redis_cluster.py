"""Redis Cluster: the mock refuses one at start, saying why, and its keys are laid out for one.

The first test runs ``craftkit-mock`` against a real three-primary cluster of ``redis-server``
processes (before it refused, it died of a ``MovedError`` traceback). The second watches
every command a whole sandbox's life sends to a standalone Redis (``MONITOR``) and asks Redis
which keys each one names (``COMMAND GETKEYS``): each names keys of one cluster slot, but for
the multi-key commands a cluster client splits by slot itself.
"""

from __future__ import annotations

import codecs
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from redis.crc import key_slot

from mock_server.testing import MockProcess, RedisServer, Sandbox, WebhookReceiver
from tests.support.redis_cluster import RedisCluster

SECRET = "6a" * 32

pytestmark = pytest.mark.slow

SPLIT_BY_CLUSTER_CLIENTS = {"DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "MSET"}
"""Multi-key commands redis-py's cluster client sends slot by slot."""


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one process", "workers"])
def test_a_cluster_node_as_the_store_is_refused_at_start_saying_what_to_use(
    workers: list[str],
) -> None:
    with RedisCluster() as cluster:
        started = subprocess.run(
            [sys.executable, "-m", "mock_server", "--port", "0", *workers, "--store", cluster.url],
            env={"CRAFTKIT_MOCK_TOKEN_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert started.returncode == 2, started.stdout + started.stderr
    said = " ".join(started.stderr.split())
    assert "Traceback" not in said
    for words in (f"Redis at {cluster.url} is a node of a Redis Cluster", "standalone Redis"):
        assert words in said, said


def _monitored(port: int, action: Callable[[], None]) -> list[list[bytes]]:
    """Every command Redis received while ``action`` ran, each as its arguments."""
    end = f"craftkit-monitor-end-{uuid.uuid4().hex}"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as watcher:
        watcher.sendall(b"MONITOR\r\n")
        received = b""
        while b"\r\n" not in received:
            received += watcher.recv(65536)
        assert received.startswith(b"+OK\r\n"), received
        received = received[len(b"+OK\r\n") :]
        with redis.Redis(port=port) as client:
            client.ping()  # MONITOR is in force once this connection's ping is seen
            action()
            client.echo(end)
        while end.encode() not in received:
            chunk = watcher.recv(1 << 20)
            assert chunk, "the monitor connection closed"
            received += chunk
    commands = []
    for line in received.split(b"\r\n"):
        quoted = re.findall(rb'"((?:[^"\\]|\\.)*)"', line)
        if quoted:
            commands.append([codecs.escape_decode(part)[0] for part in quoted])
    return commands


def _slots_of_each_command(
    port: int, commands: list[list[bytes]]
) -> Iterator[tuple[str, set[int]]]:
    """Each keyed command's name and the slots of the keys Redis says it names."""
    with redis.Redis(port=port) as client:
        for command in commands:
            name = command[0].decode().upper()
            try:
                keys = client.command_getkeys(*command)
            except redis.ResponseError:
                continue  # no key arguments (PING, INFO, SCRIPT LOAD, ...)
            yield name, {key_slot(key if isinstance(key, bytes) else key.encode()) for key in keys}


def test_every_command_a_sandbox_sends_names_keys_of_one_slot() -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}"
    env = {"CRAFTKIT_MOCK_TOKEN_SECRET": SECRET, "CRAFTKIT_MOCK_STORE_PREFIX": prefix}
    with (
        RedisServer() as server,
        MockProcess("--store", server.url, env=env) as url,
        WebhookReceiver("cluster-secret") as receiver,
    ):

        def a_sandbox_life() -> None:
            box = Sandbox.create(url)
            box.subscribe(
                receiver.url, "cluster-secret", events=["document.share_created", "document.viewed"]
            )
            api = httpx.Client(base_url=f"{url}/v1", headers=box.headers, timeout=10)
            with api:
                share = api.post(f"/renders/{box.render_id}/shares", json={}).json()
                assert httpx.get(share["shareUrl"]).status_code == 200
                emailed = api.post(f"/renders/{box.render_id}/email", json={"to": "a@example.com"})
                assert emailed.status_code == 201, emailed.text
                box.open_email(box.emails()[0]["id"])
                assert api.get(f"/renders/{box.render_id}/shares").status_code == 200
                assert api.get(f"/renders/{box.render_id}/engagement").status_code == 200
                printed = api.post(
                    f"/renders/{box.render_id}/events", json={"eventType": "printed"}
                )
                assert printed.status_code == 200, printed.text
                revoked = api.delete(f"/renders/{box.render_id}/shares/{share['id']}")
                assert revoked.status_code < 300, revoked.text
            receiver.wait_for("document.share_created", timeout=10)
            box.resend(box.deliveries()[0]["id"])
            box.advance(3600)
            box.requests()
            box.reset()
            box.delete()

        commands = _monitored(server.port, a_sandbox_life)
        seen = list(_slots_of_each_command(server.port, commands))
    scripts = [slots for name, slots in seen if name in {"EVALSHA", "EVAL"}]
    assert len(scripts) >= 10, "the monitor saw too few scripts to judge"
    crossing = {name for name, slots in seen if len(slots) > 1} - SPLIT_BY_CLUSTER_CLIENTS
    assert not crossing, f"commands naming keys of several slots: {sorted(crossing)}"
