"""Fixed-window rate limits for sign-in and password-setup requests, per node or shared in Redis."""

from __future__ import annotations

import time
from typing import Protocol

import redis.asyncio as aioredis


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: int) -> float | None:
        """Count one attempt; None if allowed, else seconds until the window resets."""
        ...

    async def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: int, window_s: int) -> float | None:
        now = time.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= window_s:
            start, count = now, 0
        count += 1
        self._windows[key] = (start, count)
        if len(self._windows) > 100_000:  # bound memory under a flood of distinct keys
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window_s}
        if count > limit:
            return window_s - (now - start)
        return None

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str = "p2pi:rate:") -> None:
        self._client = client
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window_s: int) -> float | None:
        name = self._prefix + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_s, nx=True)
            pipe.ttl(name)
            count, _, ttl = await pipe.execute()
        if int(count) > limit:
            return float(max(int(ttl), 1))
        return None

    async def reset(self, key: str) -> None:
        await self._client.delete(self._prefix + key)
