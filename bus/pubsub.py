"""The message bus between server nodes: in memory on one node, Redis pub/sub across several."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Bus(Protocol):
    """Publish JSON-able dicts to named channels; subscribers get every message, theirs too."""

    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    async def subscribe(self, channel: str, handler: Handler) -> None: ...

    async def unsubscribe(self, channel: str, handler: Handler) -> None: ...

    async def close(self) -> None: ...


class MemoryBus:
    """One process: delivery is a direct call to each handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                await handler(message)
            except Exception:
                log.exception("bus handler failed on %s", channel)

    async def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers[channel].append(handler)

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[channel]

    async def close(self) -> None:
        self._handlers.clear()


class RedisBus:
    """Several nodes: one Redis pub/sub connection per node, fanned out to local handlers."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._client.publish(channel, json.dumps(message, separators=(",", ":")))

    async def subscribe(self, channel: str, handler: Handler) -> None:
        async with self._lock:
            first = channel not in self._handlers
            self._handlers[channel].append(handler)
            if first:
                await self._pubsub.subscribe(channel)
            if self._reader is None:
                # A fresh context: the first subscriber's (its interview on log lines) is not
                # every message's.
                self._reader = asyncio.create_task(
                    self._read(), name="redis-bus-reader", context=contextvars.Context()
                )

    async def unsubscribe(self, channel: str, handler: Handler) -> None:
        async with self._lock:
            handlers = self._handlers.get(channel)
            if handlers and handler in handlers:
                handlers.remove(handler)
            if handlers is not None and not handlers:
                del self._handlers[channel]
                await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis bus read failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is None:
                if not self._handlers:
                    await asyncio.sleep(0.05)
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            try:
                payload = json.loads(message["data"])
            except (TypeError, ValueError):
                log.warning("dropping a non-JSON bus message on %s", channel)
                continue
            for handler in list(self._handlers.get(channel, ())):
                try:
                    await handler(payload)
                except Exception:
                    log.exception("bus handler failed on %s", channel)

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()
