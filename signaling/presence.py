"""Who is in which room, visible to every node: a dict in memory, or a Redis hash per room."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import redis.asyncio as aioredis

# A node refreshes its peers' entries more often than this; a crashed node's peers vanish after it.
PRESENCE_TTL_S = 30.0


class PresenceStore(Protocol):
    """Per room, a map of peer id to what that peer shows (role, ready)."""

    async def put(self, room: str, peer: str, info: dict[str, Any]) -> None: ...

    async def put_many(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Several (room, peer, info) entries in one go (a node refreshing all its pages)."""
        ...

    async def put_and_peers(
        self, room: str, peer: str, info: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """`put`, then `peers` of the room, in one round trip (a page joining)."""
        ...

    async def remove(self, room: str, peer: str) -> None: ...

    async def peers(self, room: str) -> dict[str, dict[str, Any]]: ...


class MemoryPresence:
    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, dict[str, Any]]] = {}

    async def put(self, room: str, peer: str, info: dict[str, Any]) -> None:
        self._rooms.setdefault(room, {})[peer] = dict(info)

    async def put_many(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        for room, peer, info in entries:
            await self.put(room, peer, info)

    async def put_and_peers(
        self, room: str, peer: str, info: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        await self.put(room, peer, info)
        return await self.peers(room)

    async def remove(self, room: str, peer: str) -> None:
        peers = self._rooms.get(room)
        if peers is not None:
            peers.pop(peer, None)
            if not peers:
                del self._rooms[room]

    async def peers(self, room: str) -> dict[str, dict[str, Any]]:
        return {peer: dict(info) for peer, info in self._rooms.get(room, {}).items()}


class RedisPresence:
    """Entries carry their own expiry, since Redis 7.0 hashes cannot expire single fields."""

    def __init__(self, client: aioredis.Redis, prefix: str = "p2pi:presence:") -> None:
        self._client = client
        self._prefix = prefix

    async def put(self, room: str, peer: str, info: dict[str, Any]) -> None:
        await self.put_many([(room, peer, info)])

    async def put_many(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        expires = time.time() + PRESENCE_TTL_S
        async with self._client.pipeline(transaction=False) as pipe:
            for room, peer, info in entries:
                key = self._prefix + room
                pipe.hset(key, peer, json.dumps({**info, "expires": expires}))
                pipe.expire(key, int(PRESENCE_TTL_S * 4))
            await pipe.execute()

    async def put_and_peers(
        self, room: str, peer: str, info: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        key = self._prefix + room
        entry = json.dumps({**info, "expires": time.time() + PRESENCE_TTL_S})
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(key, peer, entry)
            pipe.expire(key, int(PRESENCE_TTL_S * 4))
            pipe.hgetall(key)
            raw = (await pipe.execute())[-1]
        return await self._live(room, raw)

    async def remove(self, room: str, peer: str) -> None:
        await self._client.hdel(self._prefix + room, peer)

    async def peers(self, room: str) -> dict[str, dict[str, Any]]:
        return await self._live(room, await self._client.hgetall(self._prefix + room))

    async def _live(self, room: str, raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
        """The room's entries that have not expired; expired ones are deleted."""
        now = time.time()
        result: dict[str, dict[str, Any]] = {}
        stale: list[Any] = []
        for peer, value in raw.items():
            info = json.loads(value)
            if info.pop("expires", 0) < now:
                stale.append(peer)
                continue
            result[peer.decode() if isinstance(peer, bytes) else peer] = info
        if stale:
            await self._client.hdel(self._prefix + room, *stale)
        return result
