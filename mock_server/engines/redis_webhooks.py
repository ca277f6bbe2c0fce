"""The Redis webhook ledger: subscriptions, the delivery log and the schedule, shared by workers.

Keys (beside the project's others, with its hash tag, so each script stays in one slot)::

    P:{p:ID}:hooks           hash    subscription id -> subscription (secret sealed)
    P:{p:ID}:deliveries      hash    delivery id -> delivery, with its attempts
    P:{p:ID}:delivery-order  zset    delivery id -> created (ms): the log's order and cap
    P:{p:ID}:due             zset    "d:ID" delivery, "r:ID" render -> due (project ms)
    P:{p:ID}:leased          zset    "d:ID" -> when its lease ends (real ms)
    P:hooks:wake             zset    project id -> when to look at it next (real ms)

A claim is one script: it hands each due delivery to one process only, under a lease, so
every attempt is made once whichever worker claims it; a worker that dies mid-attempt
leaves a lease that runs out, and the delivery is claimed again (receivers de-duplicate on
the delivery id, as the contract tells them). The wake index is one key of its own, touched
only by single-key commands and scripts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from mock_server.engines.interface import Claimed, Limits
from mock_server.engines.redis_codec import instant, millis
from mock_server.model.clock import real_now
from mock_server.model.webhooks import Attempt, Delivery, Subscription

if TYPE_CHECKING:
    from mock_server.engines.redis import RedisEngine

HOOK_PARTS = ("hooks", "deliveries", "delivery-order", "due", "leased")
"""The project keys this ledger writes (the engine clears and renews them with the rest)."""

_EXPIRE = """
local function expire(ttl, ...)
  for _, key in ipairs({...}) do redis.call('PEXPIRE', key, ttl) end
end
"""

PUT_SUBSCRIPTION = (
    _EXPIRE
    + """
-- KEYS: hooks. ARGV: id, subscription, cap, ttl. 0 when a new one would pass the cap.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
   and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
expire(ARGV[4], KEYS[1])
return 1
"""
)

SCHEDULE = (
    _EXPIRE
    + """
-- KEYS: deliveries, order, due, leased. ARGV: cap, ttl, n, then n times (id, delivery,
-- created ms, due ms or ''), then (render id, due ms) pairs. The log keeps the newest `cap`.
local cap, n = tonumber(ARGV[1]), tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  local id = ARGV[i]
  redis.call('HSET', KEYS[1], id, ARGV[i + 1])
  if not redis.call('ZSCORE', KEYS[2], id) then redis.call('ZADD', KEYS[2], ARGV[i + 2], id) end
  if ARGV[i + 3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[i + 3], 'd:' .. id) end
  i = i + 4
end
while i < #ARGV do
  redis.call('ZADD', KEYS[3], ARGV[i + 1], 'r:' .. ARGV[i])
  i = i + 2
end
local extra = redis.call('ZCARD', KEYS[2]) - cap
if extra > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[3], 'd:' .. id)
    redis.call('ZREM', KEYS[4], 'd:' .. id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
expire(ARGV[2], KEYS[1], KEYS[2], KEYS[3], KEYS[4])
"""
)

CLAIM = """
-- KEYS: deliveries, due, leased. ARGV: now (project ms), real ms, lease ms, limit.
-- Returns the next due (ms or ''), the deliveries leased, the count claimed, the deliveries,
-- then the renders whose watch fell due.
local now, real = tonumber(ARGV[1]), tonumber(ARGV[2])
local lease, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', real)) do
  redis.call('ZREM', KEYS[3], member)
  redis.call('ZADD', KEYS[2], now, member)
end
local deliveries, renders = {}, {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  if string.sub(member, 1, 2) == 'r:' then
    redis.call('ZREM', KEYS[2], member)
    table.insert(renders, string.sub(member, 3))
  elseif #deliveries < limit then
    redis.call('ZREM', KEYS[2], member)
    local found = redis.call('HGET', KEYS[1], string.sub(member, 3))
    if found then
      redis.call('ZADD', KEYS[3], real + lease, member)
      table.insert(deliveries, found)
    end
  end
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local result = {first[2] or '', redis.call('ZCARD', KEYS[3]), #deliveries}
for _, found in ipairs(deliveries) do table.insert(result, found) end
for _, render in ipairs(renders) do table.insert(result, render) end
return result
"""

FINISH = (
    _EXPIRE
    + """
-- KEYS: deliveries, due, leased. ARGV: id, delivery, due ms or '', ttl.
-- Unless the log dropped the delivery meanwhile: store it, and schedule it if still pending.
redis.call('ZREM', KEYS[3], 'd:' .. ARGV[1])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[3], 'd:' .. ARGV[1]) end
expire(ARGV[4], KEYS[1], KEYS[2], KEYS[3])
return 1
"""
)

WAKE_ALL = """
-- KEYS: wake. ARGV: real ms. Every project's next look no later than then.
for _, project in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  redis.call('ZADD', KEYS[1], ARGV[1], project)
end
"""

SETTLE = """
-- KEYS: wake. ARGV: project, the look it was held at. Forget it unless lowered since.
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held and tonumber(held) == tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
"""


def encode_subscription(subscription: Subscription) -> bytes:
    """A subscription as JSON (its secret as sealed)."""
    return orjson.dumps(
        {
            "id": subscription.id,
            "project": subscription.project_id,
            "url": subscription.url,
            "events": list(subscription.events),
            "active": subscription.active,
            "created": millis(subscription.created_at),
            "sealed": subscription.sealed_secret.hex(),
            "nonce": subscription.seal_nonce.hex(),
        }
    )


def decode_subscription(raw: bytes) -> Subscription:
    """What ``encode_subscription`` wrote."""
    s = orjson.loads(raw)
    return Subscription(
        s["id"],
        s["project"],
        s["url"],
        tuple(s["events"]),
        s["active"],
        instant(s["created"]),
        bytes.fromhex(s["sealed"]),
        bytes.fromhex(s["nonce"]),
    )


def encode_delivery(delivery: Delivery) -> bytes:
    """A delivery and its attempts as JSON."""
    return orjson.dumps(
        {
            "id": delivery.id,
            "project": delivery.project_id,
            "sub": delivery.subscription_id,
            "event": delivery.event,
            "payload": delivery.payload.decode("utf-8"),
            "created": millis(delivery.created_at),
            "state": delivery.state,
            "next": None if delivery.next_attempt_at is None else millis(delivery.next_attempt_at),
            "attempts": [
                [millis(a.at), a.status, a.latency_ms, a.error] for a in delivery.attempts
            ],
            "round": delivery.round_start,
        }
    )


def decode_delivery(raw: bytes) -> Delivery:
    """What ``encode_delivery`` wrote."""
    d = orjson.loads(raw)
    return Delivery(
        d["id"],
        d["project"],
        d["sub"],
        d["event"],
        d["payload"].encode("utf-8"),
        instant(d["created"]),
        d["state"],
        None if d["next"] is None else instant(d["next"]),
        tuple(
            Attempt(instant(at), status, latency, error)
            for at, status, latency, error in d["attempts"]
        ),
        d["round"],
    )


class RedisWebhooks:
    """The ledger over one Redis engine's connection, keys and outage handling."""

    def __init__(self, engine: RedisEngine, limits: Limits) -> None:
        self._engine = engine
        self._limits = limits
        register = engine.client.register_script
        self._put = register(PUT_SUBSCRIPTION)
        self._schedule = register(SCHEDULE)
        self._claim = register(CLAIM)
        self._finish = register(FINISH)
        self._wake_all = register(WAKE_ALL)
        self._settle = register(SETTLE)

    def _keys(self, project_id: str, *parts: str) -> list[str]:
        return [self._engine.project_key(project_id, part) for part in parts]

    @property
    def _wake_key(self) -> str:
        return self._engine.global_key("hooks", "wake")

    async def _run(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Make the call only once the breaker lets it through (no coroutine left unawaited)."""
        with self._engine.reachable():
            return await make()

    async def put_subscription(self, subscription: Subscription) -> bool:
        """One script (the cap holds across processes)."""
        kept = await self._run(
            lambda: self._put(
                keys=self._keys(subscription.project_id, "hooks"),
                args=[
                    subscription.id,
                    encode_subscription(subscription),
                    self._limits.subscriptions,
                    self._engine.ttl_ms,
                ],
            )
        )
        return bool(kept)

    async def subscriptions(self, project_id: str) -> list[Subscription]:
        """One HGETALL (in the turn's shared pipeline), ordered by creation."""
        key = self._keys(project_id, "hooks")[0]
        (found,) = await self._engine.batched(lambda pipe: pipe.hgetall(key))
        subscriptions = [decode_subscription(raw) for raw in found.values()]
        return sorted(subscriptions, key=lambda s: (s.created_at, s.id))

    async def delete_subscription(self, project_id: str, subscription_id: str) -> bool:
        """One HDEL."""
        key = self._keys(project_id, "hooks")[0]
        return bool(await self._run(lambda: self._engine.client.hdel(key, subscription_id)))

    async def schedule(
        self, project_id: str, deliveries: list[Delivery], watches: list[tuple[str, datetime]]
    ) -> None:
        """One script."""
        args: list[Any] = [self._limits.deliveries, self._engine.ttl_ms, len(deliveries)]
        for d in deliveries:
            due = "" if d.next_attempt_at is None else millis(d.next_attempt_at)
            args += [d.id, encode_delivery(d), millis(d.created_at), due]
        for render_id, at in watches:
            args += [render_id, millis(at)]
        await self._run(
            lambda: self._schedule(
                keys=self._keys(project_id, "deliveries", "delivery-order", "due", "leased"),
                args=args,
            )
        )

    async def claim(self, project_id: str, now: datetime, lease_ms: int, limit: int) -> Claimed:
        """One script."""
        found = await self._run(
            lambda: self._claim(
                keys=self._keys(project_id, "deliveries", "due", "leased"),
                args=[millis(now), millis(real_now()), lease_ms, limit],
            )
        )
        next_raw, leased, count = found[0], int(found[1]), int(found[2])
        deliveries = [decode_delivery(raw) for raw in found[3 : 3 + count]]
        renders = [raw.decode() for raw in found[3 + count :]]
        next_due = None if next_raw in (b"", "", None) else instant(int(float(next_raw)))
        return Claimed(deliveries, renders, next_due, leased)

    async def finish(self, delivery: Delivery) -> None:
        """One script."""
        due = "" if delivery.next_attempt_at is None else millis(delivery.next_attempt_at)
        await self._run(
            lambda: self._finish(
                keys=self._keys(delivery.project_id, "deliveries", "due", "leased"),
                args=[delivery.id, encode_delivery(delivery), due, self._engine.ttl_ms],
            )
        )

    async def unwatch(self, project_id: str, render_id: str) -> bool:
        """One ZREM."""
        key = self._keys(project_id, "due")[0]
        return bool(await self._run(lambda: self._engine.client.zrem(key, f"r:{render_id}")))

    async def deliveries(self, project_id: str) -> list[Delivery]:
        """The order, newest first, then the records (one pipeline)."""
        table, order = self._keys(project_id, "deliveries", "delivery-order")
        ids: list[bytes] = await self._run(lambda: self._engine.client.zrevrange(order, 0, -1))
        if not ids:
            return []
        found = await self._run(lambda: self._engine.client.hmget(table, ids))
        return [decode_delivery(raw) for raw in found if raw is not None]

    async def delivery(self, project_id: str, delivery_id: str) -> Delivery | None:
        """One HGET."""
        key = self._keys(project_id, "deliveries")[0]
        raw = await self._run(lambda: self._engine.client.hget(key, delivery_id))
        return None if raw is None else decode_delivery(raw)

    async def wake(self, project_ids: list[str] | None, real_ms: int) -> None:
        """ZADD LT (keeps an earlier look), or one script for every project."""
        if project_ids is None:
            await self._run(lambda: self._wake_all(keys=[self._wake_key], args=[real_ms]))
        elif project_ids:
            mapping = dict.fromkeys(project_ids, real_ms)
            await self._run(lambda: self._engine.client.zadd(self._wake_key, mapping, lt=True))

    async def due_projects(self, real_ms: int, limit: int) -> list[str]:
        """One ZRANGEBYSCORE."""
        found: list[bytes] = await self._run(
            lambda: self._engine.client.zrangebyscore(
                self._wake_key, "-inf", real_ms, start=0, num=limit
            )
        )
        return [raw.decode() for raw in found]

    async def hold(self, project_id: str, real_ms: int) -> None:
        """One ZADD."""
        await self._run(lambda: self._engine.client.zadd(self._wake_key, {project_id: real_ms}))

    async def settle(self, project_id: str, held_ms: int) -> None:
        """One script on the wake index."""
        await self._run(lambda: self._settle(keys=[self._wake_key], args=[project_id, held_ms]))
