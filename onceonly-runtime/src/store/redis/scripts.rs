//! The Lua scripts behind every multi-step primitive of the Redis store.
//!
//! Each script touches exactly one key (`KEYS[1]`), so it runs atomically on the node that owns
//! that key, except `ADD_COUNTERS`, whose keys share a hash tag (one slot), and the document
//! scripts, whose keys share the store's document hash tag. Numbers travel as decimal strings;
//! Lua holds them as doubles, which is exact for every value the engine uses (unix
//! milliseconds, counters, sequence numbers are far below 2^53), and `%.0f` writes them back
//! without an exponent. Deadlines are the engine's and are compared with the `now` argument,
//! never with Redis's clock; the `PEXPIRE`s are only garbage collection, relative and generous
//! (see `gc_ttl_ms`).
//!
//! Every hash keeps in its `exp` field the engine time after which it may be deleted; a lock (a
//! string) starts with it. That is all the purge script needs to know.

use std::sync::LazyLock;

use ::redis::Script;

/// Claim-if-expired, after `SET NX` found the key taken. `KEYS[1]`: the lock, a string
/// `"EXP FIRST LOCK_ID\nMETADATA"` (see `lock_value`). `ARGV`: now, the new value, GC TTL.
/// Returns nil when claimed, or `{first, exp}` of the live lock.
pub(super) static CLAIM_LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held then
  local exp, first = string.match(held, '^(%d+) (%d+) ')
  if tonumber(exp) > tonumber(ARGV[1]) then return {first, exp} end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return false
",
    )
});

/// Compare-and-delete of a lock. `KEYS[1]`: the lock. `ARGV`: now, `'1'` to delete only the lock
/// whose id is `ARGV[3]` or `'0'` for any lock. Returns 1 when a live lock went away.
pub(super) static RELEASE_LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local exp, id = string.match(held, '^(%d+) %d+ (%S*)')
if ARGV[2] == '1' and id ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(exp) > tonumber(ARGV[1]) then return 1 end
return 0
",
    )
});

/// Compare-and-swap of a lease record. `KEYS[1]`: the record hash (`rev`, `val`, `exp`).
/// `ARGV`: expected revision (`''`: the key must be absent), record JSON, purge at, GC TTL,
/// channel, the key to publish. Returns the new revision, or nil on a mismatch.
///
/// A revision is `max(previous + 1, Redis time in microseconds)`: it grows with every write and
/// a record that was purged and created again starts above every revision of its previous
/// life (which ended at least a retention period earlier), so a writer still holding an old
/// revision can never match by accident.
pub(super) static PUT_RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[1], 'rev')
if (ARGV[1] == '' and cur) or (ARGV[1] ~= '' and cur ~= ARGV[1]) then return false end
local t = redis.call('TIME')
local rev = tonumber(t[1]) * 1000000 + tonumber(t[2])
if cur and tonumber(cur) >= rev then rev = tonumber(cur) + 1 end
rev = string.format('%.0f', rev)
redis.call('HSET', KEYS[1], 'rev', rev, 'val', ARGV[2], 'exp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return rev
",
    )
});

/// Several windowed counters, all or nothing. `KEYS`: the counters (hashes `v`, `exp`), which
/// share a hash tag. `ARGV[1]`: now; then per key: delta, limit (`''`: none), new window end,
/// GC TTL. Every new value is computed first (a key may come twice); one refusal returns
/// `{0, value}` before anything is written, otherwise all are written and the answer is
/// `{1, first key's new value}`.
pub(super) static ADD_COUNTERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local vals, ends, lives = {}, {}, {}
local first = 0
for i = 1, #KEYS do
  local a, k = 1 + (i - 1) * 4, KEYS[i]
  local v, e, live = vals[k], ends[k], lives[k]
  if v == nil then
    local c = redis.call('HMGET', k, 'v', 'exp')
    live = c[2] and tonumber(c[2]) > now
    if live then v, e = tonumber(c[1]), c[2] else v, e = 0, ARGV[a + 3] end
  end
  local delta = tonumber(ARGV[a + 1])
  local nv = v + delta
  if delta >= 0 then
    if ARGV[a + 2] ~= '' and nv > tonumber(ARGV[a + 2]) then return {0, string.format('%.0f', v)} end
  elseif nv < 0 then
    nv = 0
  end
  vals[k], ends[k], lives[k] = nv, e, live
  if i == 1 then first = nv end
end
for i = 1, #KEYS do
  local a, k = 1 + (i - 1) * 4, KEYS[i]
  if vals[k] ~= nil then
    local nv = string.format('%.0f', vals[k])
    if lives[k] then
      redis.call('HSET', k, 'v', nv)
    else
      redis.call('HSET', k, 'v', nv, 'exp', ends[k])
      redis.call('PEXPIRE', k, ARGV[a + 4])
    end
    vals[k] = nil
  end
end
return {1, string.format('%.0f', first)}
",
    )
});

/// Capped log append. `KEYS[1]`: the log hash: `first` and `last` sequence numbers, `exp`,
/// `bytes` (the entries' total JSON size), and per entry `e<seq>` (its JSON). An entry with a
/// topic also has `t<seq>` (the topic) and its links in the topic's list, `p<seq>` / `n<seq>`
/// (the topic's previous and next entries); the topic has `h:<topic>` / `z:<topic>` (its
/// oldest and newest entries) and `c:<topic>` (its count). Everything of one log is in one
/// hash: one key per operation, whatever the topics.
///
/// `ARGV`: entry JSON, `'1'` if it has a topic, the topic, most entries, most bytes, now,
/// expires at, GC TTL. Returns the entry's sequence number. The oldest entries go until the
/// log is within both caps, the newest always stays. An expired log loses its entries but keeps
/// counting from its last sequence number.
pub(super) static APPEND_LOG: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function n(x) return string.format('%.0f', x) end
local log = KEYS[1]
local m = redis.call('HMGET', log, 'first', 'last', 'exp', 'bytes')
local last = tonumber(m[2]) or 0
local first = last + 1
local bytes = 0
if m[3] and tonumber(m[3]) > tonumber(ARGV[6]) then
  first = tonumber(m[1])
  bytes = tonumber(m[4])
  if not bytes then
    -- A log written before sizes were kept: count its entries once.
    bytes = 0
    for q = first, last do
      bytes = bytes + redis.call('HSTRLEN', log, 'e' .. n(q))
    end
  end
elseif m[2] then
  redis.call('DEL', log)
end
local seq = n(last + 1)
redis.call('HSET', log, 'e' .. seq, ARGV[1])
bytes = bytes + string.len(ARGV[1])
if ARGV[2] == '1' then
  local t = ARGV[3]
  local tail = redis.call('HGET', log, 'z:' .. t)
  if tail then
    redis.call('HSET', log, 'n' .. tail, seq, 'p' .. seq, tail)
  else
    redis.call('HSET', log, 'h:' .. t, seq)
  end
  redis.call('HSET', log, 't' .. seq, t, 'z:' .. t, seq)
  redis.call('HINCRBY', log, 'c:' .. t, 1)
end
local cap, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
while first < last + 1 and (last + 1 - first + 1 > cap or bytes > max_bytes) do
  local f = n(first)
  bytes = bytes - redis.call('HSTRLEN', log, 'e' .. f)
  local t = redis.call('HGET', log, 't' .. f)
  if t then
    local nx = redis.call('HGET', log, 'n' .. f)
    if nx then
      redis.call('HSET', log, 'h:' .. t, nx)
      redis.call('HDEL', log, 'p' .. nx)
      redis.call('HINCRBY', log, 'c:' .. t, -1)
    else
      redis.call('HDEL', log, 'h:' .. t, 'z:' .. t, 'c:' .. t)
    end
  end
  redis.call('HDEL', log, 'e' .. f, 't' .. f, 'n' .. f)
  first = first + 1
end
redis.call('HSET', log, 'first', n(first), 'last', seq, 'exp', ARGV[7], 'bytes', n(bytes))
redis.call('PEXPIRE', log, ARGV[8])
return seq
",
    )
});

/// A page of a log, read in one snapshot. `KEYS[1]`: the log. `ARGV`: `'1'` to read one topic,
/// the topic, `'1'` newest first or `'0'` oldest first, offset, limit, now. Returns
/// `{total, seq, entry, seq, entry, ...}`. A topic's page walks its links from one end.
pub(super) static READ_LOG: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function n(x) return string.format('%.0f', x) end
local log = KEYS[1]
local m = redis.call('HMGET', log, 'first', 'last', 'exp')
if not m[3] or tonumber(m[3]) <= tonumber(ARGV[6]) then return {0} end
local newest, offset, limit = ARGV[3] == '1', tonumber(ARGV[4]), tonumber(ARGV[5])
if ARGV[1] == '1' then
  local t = ARGV[2]
  local out = {tonumber(redis.call('HGET', log, 'c:' .. t)) or 0}
  local seq, link = redis.call('HGET', log, 'h:' .. t), 'n'
  if newest then seq, link = redis.call('HGET', log, 'z:' .. t), 'p' end
  local i = 0
  while seq and i < offset + limit do
    if i >= offset then
      out[#out + 1] = seq
      out[#out + 1] = redis.call('HGET', log, 'e' .. seq)
    end
    i = i + 1
    seq = redis.call('HGET', log, link .. seq)
  end
  return out
end
local first, last = tonumber(m[1]), tonumber(m[2])
local out = {last - first + 1}
local step, seq = 1, first + offset
if newest then step, seq = -1, last - offset end
for _ = 1, limit do
  if seq < first or seq > last then break end
  out[#out + 1] = n(seq)
  out[#out + 1] = redis.call('HGET', log, 'e' .. n(seq))
  seq = seq + step
end
return out
",
    )
});

/// Writes a document and its index entry together. `KEYS`: the index (a sorted set, every
/// score 0), the document (a string, without TTL). `ARGV`: the document's key, its JSON.
pub(super) static PUT_DOC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
",
    )
});

/// Deletes a document and its index entry together. `KEYS`: the index, the document. `ARGV`:
/// the document's key. Returns 1 when the document existed.
pub(super) static DELETE_DOC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
",
    )
});

/// The documents whose key starts with a prefix, in byte order, from one snapshot. `KEYS[1]`:
/// the index. `ARGV`: what every document's Redis key starts with (the documents share the
/// index's hash tag, so they live on its node), the prefix, the limit. Returns
/// `{key, json, key, json, ...}`.
///
/// Keys are UTF-8, in which the byte 0xFF never occurs: every key starting with the prefix sorts
/// below `prefix .. '\255'`, and every other key at or above the prefix sorts above it. An
/// index entry without its document is skipped, and the next entry takes its place.
pub(super) static LIST_DOCS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lo, hi = '[' .. ARGV[2], '(' .. ARGV[2] .. '\255'
local want, offset, out = tonumber(ARGV[3]), 0, {}
while want > 0 do
  local keys = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi, 'LIMIT', offset, want)
  if #keys == 0 then break end
  offset = offset + #keys
  for _, k in ipairs(keys) do
    local v = redis.call('GET', ARGV[1] .. k)
    if v then
      out[#out + 1] = k
      out[#out + 1] = v
      want = want - 1
    end
  end
end
return out
",
    )
});

/// Deletes a key of the store whose deadline is past. `KEYS[1]`: the key. `ARGV`: now.
/// Returns 1 when it went away. A key of another shape under the prefix is left alone: so are
/// documents (strings holding a JSON object, so no leading deadline) and their index (a sorted
/// set), which never expire.
pub(super) static PURGE_KEY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local kind, exp = redis.call('TYPE', KEYS[1]).ok, nil
if kind == 'string' then
  exp = string.match(redis.call('GET', KEYS[1]), '^(%d+) ')
elseif kind == 'hash' then
  exp = redis.call('HGET', KEYS[1], 'exp')
end
if exp and tonumber(exp) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});
