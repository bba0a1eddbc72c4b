"""The sending rate, shared by every worker: a token bucket (per second) plus optional hourly and
daily caps, kept in Redis. Without Redis (embedded mode, or while Redis restarts) each process
falls back to its own bucket, which is exact when one worker sends, as in embedded mode.

`reserve()` never blocks: it books one message and says how long to wait before sending it.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Mapping

import redis

log = logging.getLogger(__name__)

REDIS_RETRY_AFTER = 5.0  # seconds without asking Redis after it failed to answer

# KEYS: bucket, hour counter, day counter. ARGV: rate/s, burst, now (s), hour cap, day cap,
# seconds left in the hour, seconds left in the day.
# Returns {wait in ms as a string, 1 when a cap stopped us}. Caps are fixed windows: a cap that is
# reached makes the caller wait for the next window instead of booking a token it cannot use.
_RESERVE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local caps = {{KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[6])}, {KEYS[3], tonumber(ARGV[5]), tonumber(ARGV[7])}}
for _, cap in ipairs(caps) do
  if cap[2] > 0 and tonumber(redis.call('GET', cap[1]) or '0') >= cap[2] then
    return {tostring(cap[3] * 1000), 1}
  end
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate) - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
for _, cap in ipairs(caps) do
  if cap[2] > 0 then
    redis.call('INCR', cap[1])
    redis.call('EXPIRE', cap[1], cap[3] + 60)
  end
end
local wait = 0
if tokens < 0 then wait = -tokens / rate end
return {tostring(wait * 1000), 0}
"""


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

    def reserve(self, now: float) -> tuple[float, bool]:
        with self.lock:
            for window, cap in self.caps.items():
                if cap and self._used(window, now) >= cap:
                    return window - now % window, True
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate) - 1
            self.at = now
            for window in self.caps:
                self.used[window] = (int(now // window), self._used(window, now) + 1)
            return max(0.0, -self.tokens / self.rate), False


class SendRateLimiter:
    """The shared limit: `reserve()` returns (seconds to wait, whether an hourly/daily cap is reached)."""

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

    def reserve(self) -> tuple[float, bool]:
        """Book one message; (seconds to wait before sending it, True if a cap says "not now")."""
        if self.local is None:  # SEND_RATE_PER_SECOND=0: no limit
            return 0.0, False
        now = time.time()
        if self.redis is not None and now >= self.redis_down_until:
            hour, day = int(now // 3600), int(now // 86400)
            keys = [f"{self.name}:bucket", f"{self.name}:hour:{hour}", f"{self.name}:day:{day}"]
            args = [self.rate, max(1.0, self.rate), f"{now:.6f}", self.per_hour, self.per_day,
                    3600 - now % 3600, 86400 - now % 86400]
            try:
                wait_ms, capped = self.script(keys=keys, args=args)
                return float(wait_ms) / 1000, bool(capped)
            except redis.RedisError as exc:
                self.redis_down_until = now + REDIS_RETRY_AFTER
                log.warning("rate limit storage unreachable, limiting this process alone: %s", exc)
        return self.local.reserve(now)
