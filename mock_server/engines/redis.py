"""The Redis engine: many mock processes, on any number of machines, acting as one mock.

Key layout (``P`` is the prefix, ``CRAFTKIT_MOCK_STORE_PREFIX``, so several mocks can share
one Redis; ``{p:ID}`` is the hash tag that puts all of one project's keys in one slot)::

    P:{p:ID}:meta        hash    project, key digest, deleted, own clock, fault:*, seq
    P:{p:ID}:renders     hash    render id -> render
    P:{p:ID}:idem        hash    idempotency-key digest -> render id   (+ :idem-order list)
    P:{p:ID}:shares      hash    share id -> share          (+ :revoked hash, :clicks hash)
    P:{p:ID}:order       zset    "render|created ms|seq|share" (lexical: a render's shares)
    P:{p:ID}:tokens      set     token digests of the project's shares
    P:{p:ID}:dedup       zset    (share|render, type, address) -> last counted (ms)
    P:{p:ID}:counts      hash    "render|type" -> n, "render|opens" -> n
    P:{p:ID}:recent      hash    render id -> newest events (newline-separated)
    P:{p:ID}:outbox      list    kept mail, oldest first (capped)
    P:{p:ID}:journal     list    answered requests, newest first (capped)
    P:{p:ID}:rate        zset    the project's requests in the last minute
    P:{p:ID}:hooks …     webhooks: subscriptions, deliveries, schedule (``redis_webhooks``)
    P:key:DIGEST         string  project id of an API key
    P:tok:DIGEST         string  "project share" of a share token
    P:projects           zset    project id -> last used (ms), to list and prune projects
    P:shared             hash    the shared clock and fault:*
    P:journal            list    answered requests of no project (capped)
    P:{ip:ADDRESS}:rate  zset    an address's requests in the last minute
    P:seq                string  the mock-wide mail order
    P:claim:NAME         string  a mock-wide fact every process must agree on
    P:hooks:wake         zset    project id -> when its webhook work is due (real ms)

Every write is one Lua script or one MULTI transaction over keys of one project, so it is
atomic across processes and names keys of one cluster slot (though this engine's client
talks to one server: it refuses a Redis Cluster node at start). Every key
carries the sandbox idle expiry, renewed by writes and, for keys only read, by a refresh a
process makes at most every quarter of the idle time per project.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from mock_server.engines import redis_codec as codec
from mock_server.engines import redis_scripts
from mock_server.engines.interface import (
    CapacityReached,
    EngagementView,
    JournalEntry,
    Limits,
    OutboxEntry,
    SharedState,
    StoredProject,
    StoreUnavailable,
    UnsupportedStore,
)
from mock_server.engines.redis_webhooks import HOOK_PARTS, RedisWebhooks
from mock_server.model import rules
from mock_server.model.clock import ClockState
from mock_server.model.records import (
    EVENT_TYPES,
    EngagementEvent,
    Project,
    Render,
    SentEmail,
    Share,
)

_PROJECT_PARTS = (
    "meta",
    "renders",
    "idem",
    "idem-order",
    "shares",
    "revoked",
    "order",
    "clicks",
    "dedup",
    "counts",
    "recent",
    "outbox",
    "journal",
    "rate",
    *HOOK_PARTS,
    "tokens",
)
"""A project's keys; ``tokens`` stays last (the clear and refresh scripts read it there)."""

_FAULT = "fault:"
_MINUTE_MS = 60_000
TIMEOUT_SECONDS = 2.0
"""How long one Redis call may take before the request is answered with the outage."""
POOL_SIZE = 64
"""Connections to Redis per mock process."""
POOL_WAIT_SECONDS = 30.0
"""How long a request waits for a free connection: a busy pool is capacity, not an outage."""
LIST_SLICE = 100
"""Shares one list script reads: a few milliseconds of Redis's one thread at most."""
QUICK_PROBE_SECONDS = 0.25
"""How long a request's own ping may take while the breaker is open (see ``Breaker``)."""
PROBE_GAP_SECONDS = 0.05
"""After a request's ping failed, requests fail at once for this long before one pings again."""
DECODED_SHARES = 65_536
"""Decoded shares a process keeps (the whole cache is dropped when full)."""


def safe_url(url: str) -> str:
    """The store's URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    netloc = f"{user}{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


_PROBING: contextvars.ContextVar[bool] = contextvars.ContextVar("probing", default=False)
"""Set for ``ping``: it goes to Redis even while the breaker holds requests back."""


class Breaker:
    """Fails fast while Redis is known to be down, until a ping finds it back.

    The first failure opens it; from then on requests are answered at once, and only
    ``ping`` (``/health``, and the store's keeper a few times a second) goes to Redis, which
    closes it again. So an outage costs the requests in flight one timeout at most, and the
    requests after them nothing.

    A request that meets the open breaker does not wait for the keeper, though: with many
    processes, ``/health`` may have been answered green by another one. It sends one quick
    ping of its own (``QUICK_PROBE_SECONDS`` at most), which the requests arriving meanwhile
    wait for, so the first requests after Redis is back are served by every process; while
    Redis stays down those pings are spaced ``PROBE_GAP_SECONDS`` apart.
    """

    def __init__(self) -> None:
        self._reason: str | None = None
        self._probe: asyncio.Future[None] | None = None
        self._probed_at = 0.0

    def check(self) -> None:
        """Raise ``StoreUnavailable`` while Redis is known to be down (a ping goes through)."""
        if self._reason is not None and not _PROBING.get():
            raise StoreUnavailable(f"{self._reason}; checked again every moment")

    async def admit(self, ping: Callable[[], Awaitable[None]]) -> None:
        """Before a request's call: while open, one quick ping (shared) decides, then ``check``."""
        if self._reason is not None and not _PROBING.get():
            if self._probe is None and time.monotonic() - self._probed_at >= PROBE_GAP_SECONDS:
                self._probe = asyncio.ensure_future(self._quick_probe(ping))
            if self._probe is not None:
                await asyncio.shield(self._probe)
        self.check()

    async def _quick_probe(self, ping: Callable[[], Awaitable[None]]) -> None:
        token = _PROBING.set(True)
        try:
            async with asyncio.timeout(QUICK_PROBE_SECONDS):  # unlike wait_for, keeps a cancel
                await ping()
            self.reset()
        except (StoreUnavailable, TimeoutError):
            pass  # still down: check() answers the outage
        finally:
            _PROBING.reset(token)
            self._probed_at = time.monotonic()
            self._probe = None

    def trip(self, reason: str) -> None:
        """Redis just failed: answer at once until a ping finds it back."""
        self._reason = reason

    def reset(self) -> None:
        """Redis answered a ping: requests go to it again."""
        self._reason = None


class _TimeoutTripsBreaker:
    """Mixed into the pool's connection class: a timeout trips the breaker where it happens.

    redis-py hands the connection back to the pool (waking a request queued for one) before
    the timeout reaches the engine; tripped only there, the breaker would still be closed
    for that request, which would then spend a whole timeout of its own. Only timeouts trip
    here: they are never retried, so each is certain to be the outage; a connection error
    may be a stale connection that the retry on a fresh one mends.
    """

    breaker: Breaker

    async def connect(self, *args: Any, **options: Any) -> Any:
        """Connect, tripping the breaker on a timeout."""
        try:
            return await super().connect(*args, **options)  # type: ignore[misc]
        except redis_errors.TimeoutError:
            self.breaker.trip("TimeoutError")
            raise

    async def read_response(self, *args: Any, **options: Any) -> Any:
        """Read an answer, tripping the breaker on a timeout."""
        try:
            return await super().read_response(*args, **options)  # type: ignore[misc]
        except redis_errors.TimeoutError:
            self.breaker.trip("TimeoutError")
            raise


class _GuardedPool(aioredis.BlockingConnectionPool):
    """The pool, with the breaker checked before a request waits for a connection.

    And again once it has one, before the connection is (re)connected: a request that
    queued for a connection while Redis went down learns it at once instead of spending its
    own timeout on a connection attempt.
    """

    breaker: Breaker

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        plain = self.connection_class
        self.connection_class = type(f"Guarded{plain.__name__}", (_TimeoutTripsBreaker, plain), {})

    def make_connection(self) -> Any:
        """A new connection that trips this pool's breaker on a timeout."""
        connection = super().make_connection()  # type: ignore[no-untyped-call]
        connection.breaker = self.breaker
        return connection

    async def get_connection(self, *args: Any, **options: Any) -> Any:
        """A connected connection, unless Redis is known to be down."""
        self.breaker.check()
        return await super().get_connection(*args, **options)  # type: ignore[no-untyped-call]

    async def ensure_connection(self, connection: Any) -> None:
        """Connect the connection handed out (the pool releases it when this raises)."""
        self.breaker.check()
        await super().ensure_connection(connection)


BATCH_CALLS = 256
"""Callers one shared pipeline serves at most; more queued in the same turn go in another."""


class _PipelineBatch:
    """The pipelines requests queue during one turn of the event loop, sent as one.

    Sixty-four requests in flight each reading their project cost sixty-four round trips
    of redis-py's pool, packing and parsing (about 60 µs each on this machine); queued in
    the same turn they cost one. Each caller's commands stay together and in its order,
    and come back as its own answers; a command Redis refuses fails only its caller.
    Batches do not wait for one another: each goes on its own pooled connection.
    """

    def __init__(self, engine: RedisEngine) -> None:
        self._engine = engine
        self._queued: list[tuple[Callable[[Pipeline], object], asyncio.Future[list[Any]]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def add(self, fill: Callable[[Pipeline], object]) -> list[Any]:
        """Queue ``fill``'s commands for the end of this turn; their answers."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[list[Any]] = loop.create_future()
        self._queued.append((fill, answered))
        if len(self._queued) == 1:
            loop.call_soon(self._flush)
        return await answered

    def _flush(self) -> None:
        while self._queued:
            batch, self._queued = self._queued[:BATCH_CALLS], self._queued[BATCH_CALLS:]
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._in_flight.add(task)  # held until done (the loop keeps weak references)
            task.add_done_callback(self._in_flight.discard)

    async def _send(
        self, batch: list[tuple[Callable[[Pipeline], object], asyncio.Future[list[Any]]]]
    ) -> None:
        spans: list[tuple[int, int] | None] = []
        try:
            with self._engine.reachable():
                async with self._engine.client.pipeline(transaction=False) as pipe:
                    for fill, answered in batch:
                        start = len(pipe.command_stack)
                        try:
                            fill(pipe)
                        except Exception as exc:  # a caller's own mistake fails only it
                            del pipe.command_stack[start:]
                            if not answered.done():
                                answered.set_exception(exc)
                            spans.append(None)
                            continue
                        spans.append((start, len(pipe.command_stack)))
                    answers = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for _, answered in batch:
                if not answered.done():
                    answered.set_exception(
                        StoreUnavailable(str(exc)) if isinstance(exc, StoreUnavailable) else exc
                    )
            if not isinstance(exc, Exception):
                raise
            return
        for (_, answered), span in zip(batch, spans, strict=True):
            if span is None or answered.done():
                continue  # failed while filling, or its request went away meanwhile
            own = answers[span[0] : span[1]]
            refused = next((a for a in own if isinstance(a, Exception)), None)
            if refused is not None:
                answered.set_exception(refused)
            else:
                answered.set_result(own)


class RedisEngine:
    """State in Redis, shared by every mock process pointed at the same prefix."""

    def __init__(self, url: str, prefix: str, limits: Limits) -> None:
        self.description = f"Redis at {safe_url(url)}"
        self._prefix = prefix
        self._limits = limits
        self._ttl = max(1, int(limits.idle_seconds * 1000))
        self._refresh_every = min(limits.idle_seconds / 4, 3600.0)
        self._refreshed: dict[str, float] = {}
        self._projects_of_keys: dict[str, str] = {}
        """Key digest to project id, as Redis has answered it: a key never changes project
        (a deleted or expired project is told by its own record, read on every request),
        so each process asks Redis once per key, not once per request."""
        self._shares_seen: dict[tuple[bytes, bytes | None], Share] = {}
        self._standalone = False
        """Whether Redis said it is no cluster node (asked once per process)."""
        self._breaker = Breaker()
        self._batch = _PipelineBatch(self)
        # A bounded pool: a request waits for a free connection rather than fail when many
        # arrive at once. A connection idle for a second is pinged before use, and a call
        # whose connection turns out dead (Redis restarted) is sent once more on a fresh one,
        # so a restart fails no request once Redis answers. Timeouts are not retried: the
        # call may have run.
        pool = _GuardedPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=POOL_WAIT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,)),
            health_check_interval=1,
        )
        pool.breaker = self._breaker
        self._client: aioredis.Redis = aioredis.Redis.from_pool(pool)  # closed with it
        register = self._client.register_script
        self._add_project = register(redis_scripts.ADD_PROJECT)
        self._plant_project = register(redis_scripts.PLANT_PROJECT)
        self._clear_project = register(redis_scripts.CLEAR_PROJECT)
        self._add_render = register(redis_scripts.ADD_RENDER)
        self._add_share = register(redis_scripts.ADD_SHARE)
        self._revoke = register(redis_scripts.REVOKE_SHARE)
        self._record = register(redis_scripts.RECORD_EVENT)
        self._record_recipient = register(redis_scripts.RECORD_RECIPIENT_EVENT)
        self._admit = register(redis_scripts.ADMIT)
        self._list_shares = register(redis_scripts.LIST_SHARES)
        self._keep_latest = register(redis_scripts.KEEP_LATEST)
        self._refresh = register(redis_scripts.REFRESH)
        self.webhooks = RedisWebhooks(self, limits)

    # ---- what the webhook ledger shares -----------------------------------------------

    @property
    def client(self) -> aioredis.Redis:
        """The pooled client (for the webhook ledger, which runs its calls through ``run``)."""
        return self._client

    @property
    def ttl_ms(self) -> int:
        """A sandbox's idle expiry, which every key write renews."""
        return self._ttl

    def project_key(self, project_id: str, part: str) -> str:
        """One of a project's keys (its hash tag included)."""
        return self._key(project_id, part)

    def global_key(self, *parts: str) -> str:
        """A mock-wide key under the prefix."""
        return self._global(*parts)

    async def batched(self, fill: Callable[[Pipeline], object]) -> list[Any]:
        """The commands ``fill`` adds, in the event loop turn's shared pipeline."""
        answers: list[Any] = await self._pipeline(fill)
        return answers

    def reachable(self) -> contextlib.AbstractContextManager[None]:
        """Around a call to Redis: the breaker first, then failures as the one outage."""
        return self._reachable()

    # ---- keys -----------------------------------------------------------------------

    def _key(self, project_id: str, part: str) -> str:
        return f"{self._prefix}:{{p:{project_id}}}:{part}"

    def _keys(self, project_id: str, *parts: str) -> list[str]:
        return [self._key(project_id, part) for part in parts]

    def _global(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Redis's connection errors and timeouts, as the one outage the app answers.

        Each trips the breaker, so the requests that follow are answered at once.
        """
        self._breaker.check()
        try:
            yield
        except redis_errors.BusyLoadingError:
            self._breaker.trip("Redis is loading its data")
            raise StoreUnavailable("Redis is loading its data") from None
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            self._breaker.trip(type(exc).__name__)
            raise StoreUnavailable(type(exc).__name__) from None

    async def _past_breaker(self) -> None:
        await self._breaker.admit(self._ping_once)

    async def _ping_once(self) -> None:
        await self._run(self._client.ping())

    async def _run(self, call: Awaitable[Any]) -> Any:
        try:
            await self._past_breaker()
        except StoreUnavailable:
            if isinstance(call, Coroutine):
                call.close()  # never sent
            raise
        with self._reachable():
            return await call

    async def _pipeline(self, fill: Callable[[Pipeline], object], transaction: bool = False) -> Any:
        """The commands ``fill`` adds, in one round trip, shared with other requests' commands.

        A non-transactional pipeline waits for the end of the event loop's turn and goes to
        Redis with every other one queued in that turn (``_PipelineBatch``): what costs a
        busy worker is redis-py's work per round trip, not Redis. Each caller still gets its
        own answers, or its own error.
        """
        await self._past_breaker()
        if transaction:
            with self._reachable():
                async with self._client.pipeline(transaction=True) as pipe:
                    fill(pipe)
                    return await pipe.execute()
        return await self._batch.add(fill)

    async def _script_then(
        self,
        script: AsyncScript,
        keys: list[str],
        args: list[Any],
        then: Callable[[Pipeline], object],
    ) -> Any:
        """A script and the commands ``then`` adds after it, in one round trip; its answer.

        redis-py's own pipelined scripts ask ``SCRIPT EXISTS`` first, a round trip of its
        own: this sends ``EVALSHA`` directly, and on ``NOSCRIPT`` (Redis restarted, or its
        scripts were flushed) loads the script and sends the whole pipeline again. Only
        commands that may run twice belong in ``then``.
        """

        def fill(pipe: Pipeline) -> None:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            then(pipe)

        try:
            return (await self._pipeline(fill))[0]
        except redis_errors.NoScriptError:
            await self._run(self._client.script_load(script.script))
            return (await self._pipeline(fill))[0]

    # ---- lifecycle ------------------------------------------------------------------

    async def ping(self) -> None:
        """One PING over a pooled connection, whatever the breaker says; a PONG resets it.

        ``/health`` and the store's keeper ask this, so the mock learns at once that Redis is
        back, and ``/health`` is green only when a pooled round trip works.
        """
        token = _PROBING.set(True)
        try:
            await self._run(self._client.ping())
        finally:
            _PROBING.reset(token)
        self._breaker.reset()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def wipe(self) -> None:
        """Unlink every key under the prefix."""
        with self._reachable():
            batch: list[bytes] = []
            claims = self._global("claim", "").encode()
            async for key in self._client.scan_iter(match=f"{self._prefix}:*", count=1000):
                if key.startswith(claims):
                    continue
                batch.append(key)
                if len(batch) >= 1000:
                    await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                await self._client.unlink(*batch)
        self._refreshed.clear()
        self._projects_of_keys.clear()

    async def claimed(self, name: str) -> str | None:
        """GET the claim."""
        await self._refuse_a_cluster()
        found = await self._run(self._client.get(self._global("claim", name)))
        return None if found is None else str(found.decode())

    async def claim(self, name: str, value: str) -> str:
        """SET NX, then GET: whoever set it first decides (it survives ``wipe``)."""
        await self._refuse_a_cluster()
        key = self._global("claim", name)
        await self._run(self._client.set(key, value, nx=True))
        found = await self._run(self._client.get(key))
        return value if found is None else str(found.decode())

    async def _refuse_a_cluster(self) -> None:
        """``UnsupportedStore`` when Redis is a cluster node (checked once per process).

        This engine's client speaks to one server and follows no ``MOVED`` redirection, so
        on a cluster most keys would fail; the process refuses to serve, saying so, instead.
        """
        if self._standalone:
            return
        info = await self._run(self._client.info("cluster"))
        if info.get("cluster_enabled"):
            raise UnsupportedStore(
                f"{self.description} is a node of a Redis Cluster, and the mock's Redis store "
                "needs one Redis server (standalone, or a primary with replicas): it refuses "
                "to serve rather than fail on every key another node holds. Point "
                "CRAFTKIT_MOCK_STORE at a standalone Redis (the README's Redis section says why)."
            )
        self._standalone = True

    # ---- projects -------------------------------------------------------------------

    async def add_project(self, project: Project, key_digest: str) -> bool:
        """Add the project unless its id is taken (or the mock is full), then index its key.

        The count of projects is read first: across processes the cap is approximate.
        """
        if await self._run(self._client.zcard(self._global("projects"))) >= self._limits.projects:
            raise CapacityReached(f"the mock holds {self._limits.projects} projects")
        added = await self._run(
            self._add_project(
                keys=[self._key(project.id, "meta")],
                args=[codec.encode_project(project), key_digest, self._ttl],
            )
        )
        if not added:
            return False
        await self._index_project(project.id, key_digest)
        return True

    async def _index_project(self, project_id: str, key_digest: str) -> None:
        """The key's index entry and the project's place among the used ones."""
        now_ms = int(time.time() * 1000)

        def index(pipe: Pipeline) -> None:
            pipe.set(self._global("key", key_digest), project_id, px=self._ttl)
            pipe.zadd(self._global("projects"), {project_id: now_ms})

        await self._pipeline(index)
        self._refreshed[project_id] = time.monotonic()

    async def plant_project(self, project: Project, key_digest: str, renders: list[Render]) -> bool:
        """The project and its renders in one script, then its key's index entry."""
        planted = await self._run(
            self._plant_project(
                keys=self._keys(project.id, "meta", "renders"),
                args=[
                    codec.encode_project(project),
                    key_digest,
                    self._ttl,
                    *[part for r in renders for part in (r.id, codec.encode_render(r))],
                ],
            )
        )
        if not planted:
            return False
        await self._index_project(project.id, key_digest)
        return True

    async def project_id_of_key(self, key_digest: str) -> str | None:
        """The key's project id: from Redis the first time this process sees the key."""
        known = self._projects_of_keys.get(key_digest)
        if known is not None:
            return known
        found = await self._run(self._client.get(self._global("key", key_digest)))
        if found is None:
            return None
        if len(self._projects_of_keys) >= self._limits.dedup_keys:
            self._projects_of_keys.clear()  # bounded; asking Redis again is always right
        self._projects_of_keys[key_digest] = found.decode()
        return self._projects_of_keys[key_digest]

    async def project(self, project_id: str) -> StoredProject | None:
        """The project with its own clock and faults, and the shared ones (one trip)."""

        def read(pipe: Pipeline) -> None:
            pipe.hgetall(self._key(project_id, "meta"))
            pipe.hgetall(self._global("shared"))

        meta, shared = await self._pipeline(read)
        raw = meta.get(b"project")
        if raw is None:
            return None
        clock = meta.get(b"clock")
        return StoredProject(
            codec.decode_project(raw, b"deleted" in meta),
            None if clock is None else codec.decode_clock(clock),
            _faults(meta),
            _shared(shared),
        )

    async def touch(self, project_id: str) -> None:
        """Renew the project's expiry, at most every quarter of the idle time per process."""
        now = time.monotonic()
        last = self._refreshed.get(project_id)
        if last is not None and now - last < self._refresh_every:
            return
        self._refreshed[project_id] = now
        if len(self._refreshed) > self._limits.dedup_keys:
            oldest = sorted(self._refreshed, key=self._refreshed.__getitem__)
            for stale in oldest[: len(oldest) // 2]:
                del self._refreshed[stale]
        digests: list[bytes] = await self._run(
            self._refresh(keys=self._keys(project_id, *_PROJECT_PARTS), args=[self._ttl])
        )
        key_digest, tokens = digests[0], digests[1:]
        now_ms = int(time.time() * 1000)

        def renew(pipe: Pipeline) -> None:
            if key_digest:
                pipe.pexpire(self._global("key", key_digest.decode()), self._ttl)
            for token in tokens:
                pipe.pexpire(self._global("tok", token.decode()), self._ttl)
            pipe.zadd(self._global("projects"), {project_id: now_ms})
            pipe.zremrangebyscore(self._global("projects"), "-inf", now_ms - self._ttl)

        await self._pipeline(renew)

    async def project_ids(self) -> list[str]:
        """Every project used within the idle time."""
        ids: list[bytes] = await self._run(self._client.zrange(self._global("projects"), 0, -1))
        return [project_id.decode() for project_id in ids]

    async def clear_project(self, project_id: str, *, delete: bool) -> None:
        """Drop the project's contents in one script, then its tokens' index entries."""
        tokens: list[bytes] = await self._run(
            self._clear_project(
                keys=self._keys(project_id, *_PROJECT_PARTS), args=["1" if delete else "0"]
            )
        )
        if tokens:
            await self._run(self._client.unlink(*(self._global("tok", t.decode()) for t in tokens)))

    # ---- clocks and faults ----------------------------------------------------------

    async def shared(self) -> SharedState:
        """The shared clock and faults (one HGETALL)."""
        return _shared(await self._run(self._client.hgetall(self._global("shared"))))

    async def change_clock(
        self, project_id: str | None, change: Callable[[ClockState], ClockState]
    ) -> ClockState:
        """Optimistic: WATCH the clock's hash, compute, write in MULTI; again on a race."""
        key = self._global("shared") if project_id is None else self._key(project_id, "meta")
        shared = None if project_id is None else (await self.shared()).clock
        changed: ClockState | None = None

        async def attempt(pipe: Pipeline) -> None:
            nonlocal changed
            raw = await pipe.hget(key, "clock")
            current = codec.decode_clock(raw) if raw is not None else shared or ClockState()
            changed = change(current)
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.hset(key, "clock", codec.encode_clock(changed))

        with self._reachable():
            await self._client.transaction(attempt, key)
        assert changed is not None
        return changed

    async def set_faults(self, project_id: str | None, changes: dict[str, Any]) -> None:
        """HSET the switches (one command: atomic)."""
        key = self._global("shared") if project_id is None else self._key(project_id, "meta")
        if changes:
            fields = {_FAULT + name: orjson.dumps(value) for name, value in changes.items()}
            await self._run(self._client.hset(key, mapping=fields))  # type: ignore[arg-type]

    # ---- renders --------------------------------------------------------------------

    async def add_render(self, render: Render, idempotency_digest: str | None) -> Render:
        """Keep the render unless the key made one (one script)."""
        existing = await self._run(
            self._add_render(
                keys=self._keys(render.project_id, "renders", "idem", "idem-order"),
                args=[
                    render.id,
                    codec.encode_render(render),
                    idempotency_digest or "",
                    self._limits.idempotency_keys,
                    self._ttl,
                    self._limits.renders,
                ],
            )
        )
        if existing == b"full":
            raise CapacityReached(f"the project holds {self._limits.renders} renders")
        return render if existing is None else codec.decode_render(existing)

    async def render_of_key(self, project_id: str, idempotency_digest: str) -> Render | None:
        """The render the key made."""
        render_id = await self._run(
            self._client.hget(self._key(project_id, "idem"), idempotency_digest)
        )
        return None if render_id is None else await self.render(project_id, render_id.decode())

    async def render(self, project_id: str, render_id: str) -> Render | None:
        """One HGET (in the turn's shared pipeline)."""
        key = self._key(project_id, "renders")
        (raw,) = await self._pipeline(lambda pipe: pipe.hget(key, render_id))
        return None if raw is None else codec.decode_render(raw)

    async def find_render(self, render_id: str) -> Render | None:
        """Ask every project (the control API's by-id call; projects are few)."""
        project_ids = await self.project_ids()

        def ask(pipe: Pipeline) -> None:
            for project_id in project_ids:
                pipe.hget(self._key(project_id, "renders"), render_id)

        found = await self._pipeline(ask)
        raw = next((r for r in found if r is not None), None)
        return None if raw is None else codec.decode_render(raw)

    async def replace_render(self, render: Render) -> None:
        """One HSET (a render's id and project never change)."""
        await self._run(
            self._client.hset(
                self._key(render.project_id, "renders"), render.id, codec.encode_render(render)
            )
        )

    # ---- shares ---------------------------------------------------------------------

    async def add_share(self, share: Share, token_digest: str, event: EngagementEvent) -> Share:
        """Keep, number and order the share and record ``share_created``; index its token."""
        project_id = share.project_id

        def index_the_token(pipe: Pipeline) -> None:  # after the share is kept: one trip
            pipe.set(self._global("tok", token_digest), f"{project_id} {share.id}", px=self._ttl)

        sequence = await self._script_then(
            self._add_share,
            self._keys(
                project_id, "meta", "shares", "order", "tokens", "counts", "recent", "clicks"
            ),
            [
                share.id,
                codec.encode_share(share),
                share.render_id,
                codec.millis(share.created_at),
                token_digest,
                codec.encode_event(event),
                self._limits.recent_events,
                self._ttl,
            ],
            index_the_token,
        )
        return replace(share, sequence=int(sequence))

    async def _share(self, project_id: str, share_id: str) -> Share | None:
        shares, revoked = self._keys(project_id, "shares", "revoked")

        def read(pipe: Pipeline) -> None:
            pipe.hget(shares, share_id)
            pipe.hget(revoked, share_id)

        raw, revocation = await self._pipeline(read)
        return None if raw is None else codec.decode_share(raw, revocation)

    async def share_of_token(self, token_digest: str) -> Share | None:
        """The token's index entry, then the share."""
        found = await self._run(self._client.get(self._global("tok", token_digest)))
        if found is None:
            return None
        project_id, share_id = found.decode().split(" ", 1)
        return await self._share(project_id, share_id)

    async def shares(self, project_id: str, render_id: str) -> list[tuple[Share, int]] | None:
        """The render's shares, newest first, in slices (``None``: no such render).

        Each slice is one script over ``LIST_SLICE`` shares, so a long list never holds
        Redis (and every other worker) for more than a few milliseconds at a time; a share
        made meanwhile is newer than the slices still to come, so no row is read twice.
        """
        keys = self._keys(project_id, "renders", "order", "shares", "revoked", "clicks")
        rows: list[tuple[Share, int]] = []
        after = b""
        while True:
            found = await self._run(
                self._list_shares(keys=keys, args=[render_id, after, LIST_SLICE])
            )
            if found is None:
                return None
            for at in range(0, len(found) - 3, 4):
                after, raw, revocation, clicks = found[at : at + 4]
                if raw is not None:
                    rows.append((self._decoded_share(raw, revocation), int(clicks or 0)))
            if len(found) % 4 == 0:  # no "more" after the slice's rows
                return rows

    def _decoded_share(self, raw: bytes, revocation: bytes | None) -> Share:
        """A share decoded once per state: lists decode the same rows on every request."""
        key = (raw, revocation)
        share = self._shares_seen.get(key)
        if share is None:
            if len(self._shares_seen) >= DECODED_SHARES:
                self._shares_seen.clear()
            share = self._shares_seen[key] = codec.decode_share(raw, revocation)
        return share

    async def revoke_share(
        self,
        project_id: str,
        render_id: str,
        share_id: str,
        at: datetime,
        reason: str,
        event: EngagementEvent,
    ) -> Share | None:
        """Revoke once: HSETNX lets one of any number of concurrent revokes win.

        The share's render is checked first (it never changes).
        """
        share = await self._share(project_id, share_id)
        if share is None or share.render_id != render_id or share.revoked_at is not None:
            return None
        revoked = rules.revoke(share, at, reason)
        won = await self._run(
            self._revoke(
                keys=self._keys(project_id, "shares", "revoked", "counts", "recent", "clicks"),
                args=[
                    share_id,
                    render_id,
                    codec.encode_revocation(revoked),
                    codec.encode_event(event),
                    self._limits.recent_events,
                    self._ttl,
                ],
            )
        )
        return revoked if won else None

    # ---- engagement -----------------------------------------------------------------

    async def record_event(self, project_id: str, render_id: str, event: EngagementEvent) -> None:
        """One script."""
        await self._run(
            self._record(
                keys=self._keys(project_id, "counts", "recent", "clicks"),
                args=[
                    render_id,
                    event.event_type,
                    event.share_id or "",
                    codec.encode_event(event),
                    self._limits.recent_events,
                    self._ttl,
                ],
            )
        )

    async def record_recipient_event(
        self,
        project_id: str,
        render_id: str,
        event: EngagementEvent,
        dedup_key: str,
        window: timedelta,
    ) -> bool:
        """De-duplicate and count in one script."""
        counted = await self._run(
            self._record_recipient(
                keys=self._keys(project_id, "dedup", "counts", "recent", "clicks"),
                args=[
                    dedup_key,
                    codec.millis(event.created_at),
                    int(window.total_seconds() * 1000),
                    self._limits.dedup_keys,
                    render_id,
                    event.event_type,
                    event.share_id or "",
                    codec.encode_event(event),
                    self._limits.recent_events,
                    self._ttl,
                ],
            )
        )
        return bool(counted)

    async def engagement(self, project_id: str, render_id: str) -> EngagementView:
        """Counts and recent events in one trip."""
        counts_key, recent_key = self._keys(project_id, "counts", "recent")
        fields = [f"{render_id}|{name}" for name in EVENT_TYPES]

        def read(pipe: Pipeline) -> None:
            pipe.hmget(counts_key, [*fields, f"{render_id}|opens"])
            pipe.hget(recent_key, render_id)

        values, recent = await self._pipeline(read)
        counts: dict[str, int] = {
            name: int(value or 0) for name, value in zip(EVENT_TYPES, values, strict=False)
        }
        events = (
            [] if recent is None else [codec.decode_event(line) for line in recent.split(b"\n")]
        )
        return EngagementView(counts, int(values[-1] or 0), sum(counts.values()), events)

    # ---- mail -----------------------------------------------------------------------

    async def keep_email(self, project_id: str, sent: SentEmail) -> OutboxEntry:
        """Number the mail mock-wide, then append it (capped) in one script."""
        sequence = await self._run(self._client.incr(self._global("seq")))
        entry = OutboxEntry(int(sequence), project_id, sent)
        await self._keep(
            self._key(project_id, "outbox"),
            codec.encode_outbox(entry),
            self._limits.outbox,
            "oldest-first",
        )
        return entry

    async def _keep(
        self, key: str, entry: bytes, kept: int, order: str, expire: bool = True
    ) -> None:
        args = [entry, kept, self._ttl if expire else "", order]
        await self._script_then(self._keep_latest, [key], args, lambda pipe: None)

    async def emails(self, project_id: str | None) -> list[OutboxEntry]:
        """A project's outbox; or every project's, merged in sending order."""
        project_ids = [project_id] if project_id is not None else await self.project_ids()

        def read(pipe: Pipeline) -> None:
            for each in project_ids:
                pipe.lrange(self._key(each, "outbox"), 0, -1)

        lists = await self._pipeline(read)
        entries = [codec.decode_outbox(raw) for kept in lists for raw in kept]
        return entries if project_id is not None else sorted(entries, key=lambda e: e.sequence)

    # ---- the HTTP gate's state ------------------------------------------------------

    async def admit(
        self, project_id: str | None, address: str, limit: int, now: datetime
    ) -> int | None:
        """One script on the client's sorted set of request instants."""
        key = (
            self._key(project_id, "rate")
            if project_id is not None
            else self._global(f"{{ip:{address}}}", "rate")
        )
        now_ms = codec.millis(now)
        wait_ms = await self._run(
            self._admit(keys=[key], args=[now_ms, limit, f"{now_ms}:{uuid.uuid4().hex}", self._ttl])
        )
        if int(wait_ms) < 0:
            return None
        return max(1, -(-int(wait_ms) // 1000))

    async def journal_record(self, entry: JournalEntry) -> None:
        """Newest first, capped: the project's list, or the list of requests of no project."""
        if entry.project_id is None:
            key, expire = self._global("journal"), False
        else:
            key, expire = self._key(entry.project_id, "journal"), True
        await self._keep(
            key, codec.encode_journal(entry), self._limits.journal, "newest-first", expire
        )

    async def journal(self, project_id: str | None) -> list[JournalEntry]:
        """A project's; or every list merged, newest first, capped."""
        if project_id is not None:
            keys = [self._key(project_id, "journal")]
        else:
            keys = [self._global("journal")] + [
                self._key(each, "journal") for each in await self.project_ids()
            ]

        def read(pipe: Pipeline) -> None:
            for key in keys:
                pipe.lrange(key, 0, self._limits.journal - 1)

        lists = await self._pipeline(read)
        entries = [codec.decode_journal(raw) for kept in lists for raw in kept]
        if project_id is None:
            entries.sort(key=lambda e: e.recorded, reverse=True)
        return entries[: self._limits.journal]

    async def forget_rate(self, project_id: str | None) -> None:
        """Drop a project's window, or every window."""
        if project_id is not None:
            await self._run(self._client.delete(self._key(project_id, "rate")))
            return
        with self._reachable():
            patterns = (f"{self._prefix}:{{p:*}}:rate", f"{self._prefix}:{{ip:*}}:rate")
            for pattern in patterns:
                async for key in self._client.scan_iter(match=pattern, count=1000):
                    await self._client.unlink(key)


def _shared(meta: dict[bytes, bytes]) -> SharedState:
    clock = meta.get(b"clock")
    return SharedState(ClockState() if clock is None else codec.decode_clock(clock), _faults(meta))


def _faults(meta: dict[bytes, bytes]) -> dict[str, Any]:
    prefix = _FAULT.encode()
    return {
        name[len(prefix) :].decode(): orjson.loads(value)
        for name, value in meta.items()
        if name.startswith(prefix)
    }
