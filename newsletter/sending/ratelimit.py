"""The sending rate, shared by every worker: a token bucket (per second) plus optional hourly and
daily caps.

Where the bucket lives:
- in Redis when REDIS_URL is set (one Lua script call per booking);
- in the database (`send_rate_buckets`, one short transaction per booking) when there is no Redis,
  as in the embedded mode, and while Redis does not answer;
- when neither answers, each process keeps a bucket of its own at 1/FALLBACK_SHARE of the rate and
  caps, so a few workers cut off together still stay within the whole rate.

`reserve(n)` never blocks: it books up to n messages and says how long to wait before sending
them. Booking a few at a time (a twentieth of a second's worth) spares a round trip per message at
high rates and changes nothing at low ones.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Mapping, NamedTuple

import redis
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from newsletter.models.sending import SendRateBucket

log = logging.getLogger(__name__)

REDIS_RETRY_AFTER = 5.0  # seconds without asking Redis (or the database) after it failed to answer
FALLBACK_SHARE = 4  # a process cut off from every shared bucket sends at most this fraction of the rate
HOUR, DAY = 3600, 86400

# KEYS: bucket, hour counter, day counter. ARGV: rate/s, burst, now (s), wanted, hour cap, day cap,
# seconds left in the hour, seconds left in the day. Returns {granted, wait in ms as a string}.
# Caps are fixed windows: once one is used up, nothing is granted and the wait is until the next
# window, so no token is booked that cannot be used.
_RESERVE = """
local rate, burst, now, granted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local caps = {{KEYS[2], tonumber(ARGV[5]), tonumber(ARGV[7])}, {KEYS[3], tonumber(ARGV[6]), tonumber(ARGV[8])}}
for _, cap in ipairs(caps) do
  if cap[2] > 0 then
    local left = cap[2] - tonumber(redis.call('GET', cap[1]) or '0')
    if left <= 0 then return {0, tostring(cap[3] * 1000)} end
    granted = math.min(granted, left)
  end
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate) - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
for _, cap in ipairs(caps) do
  if cap[2] > 0 then
    redis.call('INCRBY', cap[1], granted)
    redis.call('EXPIRE', cap[1], cap[3] + 60)
  end
end
local wait = 0
if tokens < 0 then wait = -tokens / rate end
return {granted, tostring(wait * 1000)}
"""


class Grant(NamedTuple):
    """`count` messages may go after `wait` seconds; count 0 means a cap is used up until then."""

    count: int
    wait: float


@dataclass
class Limits:
    rate: float
    per_hour: int = 0
    per_day: int = 0

    @property
    def burst(self) -> float:
        return max(1.0, self.rate)


@dataclass
class BucketState:
    """A bucket's tokens at time `at`, and the messages booked in the current hour and day."""

    tokens: float
    at: float
    used: dict[int, tuple[int, int]] = field(default_factory=dict)  # window length -> (window number, booked)

    def used_in(self, window: int, now: float) -> int:
        number, count = self.used.get(window, (-1, 0))
        return count if number == int(now // window) else 0

    def book(self, limits: Limits, wanted: int, now: float) -> Grant:
        """The one token-bucket rule, wherever the state is kept (the Redis script mirrors it)."""
        granted = wanted
        for window, cap in ((HOUR, limits.per_hour), (DAY, limits.per_day)):
            if cap:
                left = cap - self.used_in(window, now)
                if left <= 0:
                    return Grant(0, window - now % window)
                granted = min(granted, left)
        self.tokens = min(limits.burst, self.tokens + max(0.0, now - self.at) * limits.rate) - granted
        self.at = now
        for window in (HOUR, DAY):
            self.used[window] = (int(now // window), self.used_in(window, now) + granted)
        return Grant(granted, max(0.0, -self.tokens / limits.rate))


class LocalBucket:
    """One process's bucket: the last resort when no shared bucket answers."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.state = BucketState(limits.burst, time.time())
        self.lock = threading.Lock()

    def reserve(self, wanted: int, now: float, per_day: int) -> Grant:
        with self.lock:
            return self.state.book(replace(self.limits, per_day=per_day), wanted, now)


class DatabaseBucket:
    """The bucket as a row of `send_rate_buckets`, booked in one short transaction that holds the
    row's lock (PostgreSQL) or the database's write lock (SQLite) from read to write."""

    def __init__(self, engine: Engine, name: str, limits: Limits):
        self.engine, self.name, self.limits = engine, name, limits
        self.table = SendRateBucket.__table__

    def reserve(self, wanted: int, now: float, per_day: int) -> Grant:
        table = self.table
        with self.engine.begin() as connection:
            # A write first: SQLite takes its write lock here, before the read, as PostgreSQL's FOR UPDATE does.
            if not connection.execute(update(table).where(table.c.name == self.name).values(name=table.c.name)).rowcount:
                self._create(connection, now)
            row = connection.execute(select(table).where(table.c.name == self.name).with_for_update()).one()
            state = BucketState(row.tokens, row.at, {HOUR: (row.hour_window, row.hour_used),
                                                     DAY: (row.day_window, row.day_used)})
            grant = state.book(replace(self.limits, per_day=per_day), wanted, now)
            (hour_window, hour_used), (day_window, day_used) = state.used[HOUR], state.used[DAY]
            connection.execute(update(table).where(table.c.name == self.name).values(
                tokens=state.tokens, at=state.at, hour_window=hour_window, hour_used=hour_used,
                day_window=day_window, day_used=day_used))
        return grant

    def _create(self, connection, now: float) -> None:
        insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(insert(self.table).values(
            name=self.name, tokens=self.limits.burst, at=now, hour_window=0, hour_used=0, day_window=0, day_used=0,
        ).on_conflict_do_nothing())


class SendRateLimiter:
    """The shared limit for all workers (SEND_RATE_PER_SECOND, SEND_RATE_PER_HOUR, SEND_RATE_PER_DAY).

    `engine` is the application's database, where the bucket lives without Redis.
    """

    def __init__(self, config: Mapping, name: str = "send-rate", engine: Engine | None = None):
        self.limits = Limits(float(config["SEND_RATE_PER_SECOND"]), int(config.get("SEND_RATE_PER_HOUR") or 0),
                             int(config.get("SEND_RATE_PER_DAY") or 0))
        self.name = name
        self.redis = self.database = self.local = None
        self.down_until: dict[str, float] = {}
        if self.limits.rate <= 0:  # SEND_RATE_PER_SECOND=0: no limit
            return
        share = Limits(self.limits.rate / FALLBACK_SHARE, -(-self.limits.per_hour // FALLBACK_SHARE))
        self.local = LocalBucket(share)
        if engine is not None:
            self.database = DatabaseBucket(engine, name, self.limits)
        if config.get("REDIS_URL"):
            self.redis = redis.Redis.from_url(config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2)
            self.script = self.redis.register_script(_RESERVE)

    def reserve(self, wanted: int = 1, day_cap: int = 0) -> Grant:
        """Book up to `wanted` messages (never more than a twentieth of a second's worth).
        `day_cap`: a daily cap for today on top of SEND_RATE_PER_DAY (the warm-up plan's)."""
        if self.local is None:
            return Grant(wanted, 0.0)
        wanted = max(1, min(wanted, int(self.limits.rate / 20)))
        now = time.time()
        per_day = min((cap for cap in (self.limits.per_day, day_cap) if cap > 0), default=0)
        if self.redis is not None and self._answers("redis", now):
            try:
                return self._reserve_in_redis(wanted, now, per_day)
            except redis.RedisError as exc:
                self._down("redis", now, exc)
        if self.database is not None and self._answers("database", now):
            try:
                return self.database.reserve(wanted, now, per_day)
            except SQLAlchemyError as exc:
                self._down("database", now, exc)
        return self.local.reserve(wanted, now, -(-per_day // FALLBACK_SHARE))

    def _reserve_in_redis(self, wanted: int, now: float, per_day: int) -> Grant:
        hour, day = int(now // HOUR), int(now // DAY)
        keys = [f"{self.name}:bucket", f"{self.name}:hour:{hour}", f"{self.name}:day:{day}"]
        args = [self.limits.rate, self.limits.burst, f"{now:.6f}", wanted, self.limits.per_hour,
                per_day, HOUR - now % HOUR, DAY - now % DAY]
        granted, wait_ms = self.script(keys=keys, args=args)
        return Grant(int(granted), float(wait_ms) / 1000)

    def _answers(self, storage: str, now: float) -> bool:
        return now >= self.down_until.get(storage, 0.0)

    def _down(self, storage: str, now: float, exc: Exception) -> None:
        self.down_until[storage] = now + REDIS_RETRY_AFTER
        log.warning("rate limit storage (%s) unreachable, trying the next one: %s", storage, exc)
