"""Rate limits: failed sign-ins (growing delay) and per-tenant token buckets (API, HTTP ingest).

One interface, `LimitStore`, with two implementations: in this process's memory (one instance) or in Redis
(shared by every instance) when REDIS_URL is set.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.services.errors import TooManyRequests

FAILURE_WINDOW_S = 15 * 60
FREE_FAILURES = 5
MAX_LOCK_S = 15 * 60
TOO_MANY_SIGN_INS = 'Too many failed sign-ins. Wait a moment and try again.'
TOO_MANY_REQUESTS = 'Too many requests for this organisation; slow down.'


class LimitStore(ABC):
    """Failure counts in a sliding window, and token buckets."""

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.time  # wall time: shared between instances through Redis

    @abstractmethod
    async def failures(self, key: str) -> tuple[int, float]:
        """How many failures in the window, and when the last one was (0 when none)."""

    @abstractmethod
    async def add_failure(self, key: str) -> None: ...

    @abstractmethod
    async def clear(self, key: str) -> None: ...

    @abstractmethod
    async def take(self, key: str, *, rate: float, burst: int) -> float:
        """Take one token: 0 when allowed, else the seconds until one is available."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class MemoryLimits(LimitStore):
    def __init__(self) -> None:
        super().__init__()
        self._failures: dict[str, deque[float]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}

    def _window(self, key: str) -> deque[float]:
        stamps = self._failures.setdefault(key, deque())
        while stamps and stamps[0] <= self.clock() - FAILURE_WINDOW_S:
            stamps.popleft()
        return stamps

    async def failures(self, key: str) -> tuple[int, float]:
        stamps = self._window(key)
        return len(stamps), stamps[-1] if stamps else 0.0

    async def add_failure(self, key: str) -> None:
        self._window(key).append(self.clock())

    async def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    async def take(self, key: str, *, rate: float, burst: int) -> float:
        now = self.clock()
        tokens, updated = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - updated) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate

    async def close(self) -> None:
        """Nothing to release."""


_BUCKET = """
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RedisLimits(LimitStore):
    def __init__(self, url: str, *, prefix: str = 'gito:limits:') -> None:
        from redis.asyncio import Redis

        super().__init__()
        self._redis = Redis.from_url(url)
        self._prefix = prefix
        self._bucket = self._redis.register_script(_BUCKET)

    async def failures(self, key: str) -> tuple[int, float]:
        name = self._prefix + 'fail:' + key
        await self._redis.zremrangebyscore(name, 0, self.clock() - FAILURE_WINDOW_S)
        last = await self._redis.zrange(name, -1, -1, withscores=True)
        return int(await self._redis.zcard(name)), float(last[0][1]) if last else 0.0

    async def add_failure(self, key: str) -> None:
        name, now = self._prefix + 'fail:' + key, self.clock()
        await self._redis.zadd(name, {f'{now:.6f}-{time.perf_counter_ns()}': now})
        await self._redis.expire(name, FAILURE_WINDOW_S)

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._prefix + 'fail:' + key)

    async def take(self, key: str, *, rate: float, burst: int) -> float:
        wait = await self._bucket(keys=[self._prefix + 'bucket:' + key], args=[rate, burst, self.clock()])
        return float(wait)

    async def close(self) -> None:
        await self._redis.aclose()


def create_limits(redis_url: str | None) -> LimitStore:
    return RedisLimits(redis_url) if redis_url else MemoryLimits()


def lock_seconds(failures: int) -> float:
    """After FREE_FAILURES failures: 2, 4, 8, … seconds per further failure, at most MAX_LOCK_S."""
    if failures < FREE_FAILURES:
        return 0.0
    return float(min(MAX_LOCK_S, 2 ** (failures - FREE_FAILURES + 1)))


@dataclass(frozen=True)
class BucketLimit:
    rate: float  # tokens per second
    burst: int


class SignInLimiter:
    """Per e-mail address and per client address; the same answer whether the account exists or not."""

    def __init__(self, store: LimitStore) -> None:
        self.store = store

    @staticmethod
    def keys(email: str, ip: str) -> list[str]:
        keys = [f'account:{email.strip().lower()}']
        return [*keys, f'ip:{ip}'] if ip else keys

    async def check(self, email: str, ip: str) -> None:
        wait = 0.0
        for key in self.keys(email, ip):
            count, last = await self.store.failures(key)
            wait = max(wait, last + lock_seconds(count) - self.store.clock())
        if wait > 0:
            raise TooManyRequests(TOO_MANY_SIGN_INS, retry_after=wait)

    async def failed(self, email: str, ip: str) -> None:
        for key in self.keys(email, ip):
            await self.store.add_failure(key)

    async def succeeded(self, email: str) -> None:
        """Only the account's count is cleared: signing into one's own account must not reset an address."""
        await self.store.clear(self.keys(email, '')[0])


async def take_tenant(store: LimitStore, kind: str, tenant_id: object, limit: BucketLimit) -> None:
    wait = await store.take(f'{kind}:{tenant_id}', rate=limit.rate, burst=limit.burst)
    if wait > 0:
        raise TooManyRequests(TOO_MANY_REQUESTS, retry_after=wait)
