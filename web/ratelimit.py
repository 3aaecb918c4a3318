"""Fixed-window rate limits for sign-in, password-setup and invitation requests, per node or
shared in Redis.

Sign-in counts every attempt before it is checked (so a burst of parallel guesses is counted
too) and takes back the count of one that succeeded: only failures add up.
"""

from __future__ import annotations

import time
from typing import Protocol

import redis.asyncio as aioredis


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: int) -> float | None:
        """Count one attempt; None if allowed, else seconds until the window resets."""
        ...

    async def undo(self, key: str) -> None:
        """Take back one counted attempt (it succeeded)."""
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

    async def undo(self, key: str) -> None:
        window = self._windows.get(key)
        if window is not None and window[1] > 0:
            self._windows[key] = (window[0], window[1] - 1)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


# DECR only a counter that exists: a missing one would come back as -1 without an expiry.
_UNDO = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"


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

    async def undo(self, key: str) -> None:
        await self._client.eval(_UNDO, 1, self._prefix + key)  # type: ignore[misc]

    async def reset(self, key: str) -> None:
        await self._client.delete(self._prefix + key)
