"""The sending rate, shared by every worker: a token bucket (per second) plus optional hourly and
daily caps, kept in Redis. Without Redis (embedded mode, or while Redis restarts) each process
falls back to its own bucket, which is exact when one worker sends, as in embedded mode.

`reserve(n)` never blocks: it books up to n messages and says how long to wait before sending
them. Booking a few at a time (a twentieth of a second's worth) spares a Redis round trip per
message at high rates and changes nothing at low ones.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Mapping, NamedTuple

import redis

log = logging.getLogger(__name__)

REDIS_RETRY_AFTER = 5.0  # seconds without asking Redis after it failed to answer

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


class LocalBucket:
    """One process's token bucket and caps: the fallback when no Redis answers."""

    def __init__(self, rate: float, per_hour: int, per_day: int):
        self.rate, self.burst = rate, max(1.0, rate)
        self.caps = {3600: per_hour, 86400: per_day}
        self.used: dict[int, tuple[int, int]] = {}  # window length -> (window number, messages booked)
        self.tokens, self.at = self.burst, time.time()
        self.lock = threading.Lock()

    def _used(self, window: int, now: float) -> int:
        number, count = self.used.get(window, (-1, 0))
        return count if number == int(now // window) else 0

    def reserve(self, wanted: int, now: float) -> Grant:
        with self.lock:
            granted = wanted
            for window, cap in self.caps.items():
                if cap:
                    left = cap - self._used(window, now)
                    if left <= 0:
                        return Grant(0, window - now % window)
                    granted = min(granted, left)
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate) - granted
            self.at = now
            for window in self.caps:
                self.used[window] = (int(now // window), self._used(window, now) + granted)
            return Grant(granted, max(0.0, -self.tokens / self.rate))


class SendRateLimiter:
    """The shared limit for all workers (SEND_RATE_PER_SECOND, SEND_RATE_PER_HOUR, SEND_RATE_PER_DAY)."""

    def __init__(self, config: Mapping, name: str = "send-rate"):
        self.rate = float(config["SEND_RATE_PER_SECOND"])
        self.per_hour = int(config.get("SEND_RATE_PER_HOUR") or 0)
        self.per_day = int(config.get("SEND_RATE_PER_DAY") or 0)
        self.name = name
        self.local = LocalBucket(self.rate, self.per_hour, self.per_day) if self.rate > 0 else None
        self.redis = None
        self.redis_down_until = 0.0
        if config.get("REDIS_URL") and self.rate > 0:
            self.redis = redis.Redis.from_url(config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=2)
            self.script = self.redis.register_script(_RESERVE)

    def reserve(self, wanted: int = 1) -> Grant:
        """Book up to `wanted` messages (never more than a twentieth of a second's worth)."""
        if self.local is None:  # SEND_RATE_PER_SECOND=0: no limit
            return Grant(wanted, 0.0)
        wanted = max(1, min(wanted, int(self.rate / 20)))
        now = time.time()
        if self.redis is not None and now >= self.redis_down_until:
            hour, day = int(now // 3600), int(now // 86400)
            keys = [f"{self.name}:bucket", f"{self.name}:hour:{hour}", f"{self.name}:day:{day}"]
            args = [self.rate, max(1.0, self.rate), f"{now:.6f}", wanted, self.per_hour, self.per_day,
                    3600 - now % 3600, 86400 - now % 86400]
            try:
                granted, wait_ms = self.script(keys=keys, args=args)
                return Grant(int(granted), float(wait_ms) / 1000)
            except redis.RedisError as exc:
                self.redis_down_until = now + REDIS_RETRY_AFTER
                log.warning("rate limit storage unreachable, limiting this process alone: %s", exc)
        return self.local.reserve(wanted, now)
