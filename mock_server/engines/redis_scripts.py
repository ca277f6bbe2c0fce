"""The Lua scripts that make each of the Redis engine's writes one atomic step.

Every script touches only keys of one project (they share the project's hash tag, so on
Redis Cluster they live in one slot), names them all in ``KEYS``, and gives every key it
writes the sandbox's idle expiry (the last ``ARGV``), so a sandbox nobody uses goes away.
"""

from __future__ import annotations

_EXPIRE = """
local function expire(ttl, ...)
  for _, key in ipairs({...}) do redis.call('PEXPIRE', key, ttl) end
end
"""

_RECORD = (
    _EXPIRE
    + """
-- Count an event of a render, add a click for a link view, and keep it first among the
-- render's recent events (newline-separated JSON, at most `cap` of them).
local function record(counts, recent, clicks, render, kind, share, event, cap, ttl)
  redis.call('HINCRBY', counts, render .. '|' .. kind, 1)
  if kind == 'viewed' and share ~= '' then
    redis.call('HINCRBY', counts, render .. '|opens', 1)
    redis.call('HINCRBY', clicks, share, 1)
  end
  local joined = event
  local old = redis.call('HGET', recent, render)
  if old then
    joined = event .. '\\n' .. old
    local at, kept = 0, 1
    while true do
      local nl = string.find(joined, '\\n', at + 1, true)
      if not nl then break end
      if kept == cap then joined = string.sub(joined, 1, nl - 1) break end
      kept, at = kept + 1, nl
    end
  end
  redis.call('HSET', recent, render, joined)
  expire(ttl, counts, recent, clicks)
end
"""
)

ADD_PROJECT = (
    _EXPIRE
    + """
-- KEYS: meta. ARGV: project, key digest, ttl. 0 when the id is taken.
if redis.call('HSETNX', KEYS[1], 'project', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'key', ARGV[2])
expire(ARGV[3], KEYS[1])
return 1
"""
)

PLANT_PROJECT = (
    _EXPIRE
    + """
-- KEYS: meta, renders. ARGV: project, key digest, ttl, then render id and render pairs.
-- The project and its renders at once (0 when the id is taken): none without the other.
if redis.call('HSETNX', KEYS[1], 'project', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'key', ARGV[2])
for at = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[at], ARGV[at + 1]) end
expire(ARGV[3], KEYS[1], KEYS[2])
return 1
"""
)

CLEAR_PROJECT = """
-- KEYS: meta, then every other key of the project (tokens last). ARGV: delete (0/1).
-- Returns the token digests the project held, for the caller to unlink their index.
local tokens = redis.call('SMEMBERS', KEYS[#KEYS])
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
local drop = {'clock', 'seq'}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 6) == 'fault:' then table.insert(drop, field) end
end
redis.call('HDEL', KEYS[1], unpack(drop))
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'deleted', '1') end
return tokens
"""

ADD_RENDER = (
    _EXPIRE
    + """
-- KEYS: renders, idempotency, idempotency order. ARGV: id, render, key digest or '',
-- keys kept, ttl, renders kept. Returns the render the key already made, or nothing (kept
-- the new one), or 'full' (kept nothing: the project holds all the renders it may).
local digest = ARGV[3]
if digest ~= '' then
  local existing = redis.call('HGET', KEYS[2], digest)
  if existing then
    local render = redis.call('HGET', KEYS[1], existing)
    if render then return render end
  end
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return 'full' end
if digest ~= '' then
  redis.call('HSET', KEYS[2], digest, ARGV[1])
  redis.call('RPUSH', KEYS[3], digest)
  if redis.call('LLEN', KEYS[3]) > tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[2], redis.call('LPOP', KEYS[3]))
  end
  expire(ARGV[5], KEYS[2], KEYS[3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
expire(ARGV[5], KEYS[1])
return false
"""
)

ADD_SHARE = (
    _RECORD
    + """
-- KEYS: meta, shares, order, tokens, counts, recent, clicks.
-- ARGV: id, share, render id, created (ms), token digest, event, recent kept, ttl.
-- Numbers the share in its project and returns the number.
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
-- The number goes into the record too (the share is a JSON object): every read has it.
redis.call('HSET', KEYS[2], ARGV[1], string.sub(ARGV[2], 1, -2) .. ',"seq":' .. seq .. '}')
local member = string.format('%s|%015d|%012d|%s', ARGV[3], tonumber(ARGV[4]), seq, ARGV[1])
redis.call('ZADD', KEYS[3], 0, member)
redis.call('SADD', KEYS[4], ARGV[5])
expire(ARGV[8], KEYS[1], KEYS[2], KEYS[3], KEYS[4])
record(KEYS[5], KEYS[6], KEYS[7], ARGV[3], 'share_created', ARGV[1], ARGV[6],
       tonumber(ARGV[7]), ARGV[8])
return seq
"""
)

REVOKE_SHARE = (
    _RECORD
    + """
-- KEYS: shares, revoked, counts, recent, clicks.
-- ARGV: share id, render id, revocation, event, recent kept, ttl. 1 for the one winner.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
expire(ARGV[6], KEYS[2])
record(KEYS[3], KEYS[4], KEYS[5], ARGV[2], 'share_revoked', ARGV[1], ARGV[4],
       tonumber(ARGV[5]), ARGV[6])
return 1
"""
)

RECORD_EVENT = (
    _RECORD
    + """
-- KEYS: counts, recent, clicks. ARGV: render id, type, share id or '', event, kept, ttl.
record(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6])
return 1
"""
)

RECORD_RECIPIENT_EVENT = (
    _RECORD
    + """
-- KEYS: last counted, counts, recent, clicks.
-- ARGV: de-duplication key, now (ms), window (ms), keys kept, render id, type, share id
-- or '', event, recent kept, ttl. 1 when counted, 0 when within the window of the last.
local key, now, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local last = redis.call('ZSCORE', KEYS[1], key)
if last and now - tonumber(last) < window then return 0 end
redis.call('ZADD', KEYS[1], now, key)
local cap = tonumber(ARGV[4])
if redis.call('ZCARD', KEYS[1]) > cap then
  -- Entries whose window has passed change nothing; then the oldest go.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local size = redis.call('ZCARD', KEYS[1])
  if size > cap then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - cap - 1) end
end
expire(ARGV[10], KEYS[1])
record(KEYS[2], KEYS[3], KEYS[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]), ARGV[10])
return 1
"""
)

LIST_SHARES = """
-- KEYS: renders, order, shares, revoked, clicks. ARGV: render id, the last order member of
-- the slice before ('' for the first), the slice's size.
-- One slice of the render's shares, newest first, so no call holds Redis for long: for each
-- share its order member, the share, its revocation (or false) and its clicks (or false),
-- then 1 when more shares follow the slice (so the caller asks again only then).
-- Nothing when the render does not exist (checked with the first slice).
local render, after, size = ARGV[1], ARGV[2], tonumber(ARGV[3])
local upper = '[' .. render .. '|\255'
if after == '' then
  if redis.call('HEXISTS', KEYS[1], render) == 0 then return false end
else
  upper = '(' .. after
end
local lower = '[' .. render .. '|'
local members = redis.call('ZREVRANGEBYLEX', KEYS[2], upper, lower, 'LIMIT', 0, size + 1)
local more = #members > size
if more then members[#members] = nil end
if #members == 0 then return {} end
local ids = {}
-- Anchored: an unanchored '([^|]+)$' is tried from every position (most of the time).
for at = 1, #members do ids[at] = string.match(members[at], '^[^|]*|[^|]*|[^|]*|(.*)$') end
local shares = redis.call('HMGET', KEYS[3], unpack(ids))
local revoked = redis.call('HMGET', KEYS[4], unpack(ids))
local clicks = redis.call('HMGET', KEYS[5], unpack(ids))
local rows = {}
for at = 1, #ids do
  local n = #rows
  rows[n + 1] = members[at]
  rows[n + 2] = shares[at]
  rows[n + 3] = revoked[at]
  rows[n + 4] = clicks[at]
end
if more then rows[#rows + 1] = 1 end
return rows
"""

ADMIT = (
    _EXPIRE
    + """
-- KEYS: the client's window. ARGV: now (ms), limit, a unique member, ttl.
-- -1 when admitted; else the milliseconds until the oldest request leaves the minute.
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
-- Requests "after" now (its clock was moved back) and a minute or more before it are gone.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return 60000 - (now - tonumber(oldest[2]))
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
expire(ARGV[4], KEYS[1])
return -1
"""
)

KEEP_LATEST = (
    _EXPIRE
    + """
-- KEYS: a list. ARGV: entry, kept, ttl ('' for none), 'newest-first' or 'oldest-first'.
if ARGV[4] == 'newest-first' then
  redis.call('LPUSH', KEYS[1], ARGV[1])
  redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
else
  redis.call('RPUSH', KEYS[1], ARGV[1])
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
end
if ARGV[3] ~= '' then expire(ARGV[3], KEYS[1]) end
return 1
"""
)

REFRESH = (
    _EXPIRE
    + """
-- KEYS: every key of a project (tokens last). ARGV: ttl. Returns the key digest and the
-- token digests, whose index entries live elsewhere and are refreshed by the caller.
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[1]) end
local tokens = redis.call('SMEMBERS', KEYS[#KEYS])
table.insert(tokens, 1, redis.call('HGET', KEYS[1], 'key') or '')
return tokens
"""
)
