"""Who is in which room, visible to every node: a dict in memory, or a Redis hash per room.

A change (a page joins, becomes ready, leaves) is written and announced on the room's bus
channel together with the room's entries as they are right after it, so the nodes that get the
announcement need not read the room back. On Redis the write, the read and the publish are one
script: the announcements of a room's changes go out in the order the changes were made, so the
last one a node receives is the room as it is.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any, Protocol

import redis.asyncio as aioredis

from bus.pubsub import Bus

# A node refreshes its peers' entries more often than this; a crashed node's peers vanish after it.
PRESENCE_TTL_S = 30.0

Entries = dict[str, dict[str, Any]]

MAX_BATCH = 200
"""Changes sent to Redis in one pipeline, at most (the rest go in the next)."""


class PresenceStore(Protocol):
    """Per room, a map of peer id to what that peer shows (role, ready)."""

    async def change(
        self,
        room: str,
        peer: str,
        info: dict[str, Any] | None,
        channel: str,
        message: dict[str, Any],
    ) -> Entries:
        """Set `peer`'s entry to `info` (None: remove it), then publish `message` on `channel`
        with the room's entries after the change as its `peers` (expiry included: read them
        with `live`); returns the live entries."""
        ...

    async def put_many(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Several (room, peer, info) entries in one go (a node refreshing all its pages)."""
        ...

    async def peers(self, room: str) -> Entries: ...


def live(entries: Entries, now: float | None = None) -> Entries:
    """The entries that have not expired, without their expiry."""
    now = time.time() if now is None else now
    result: Entries = {}
    for peer, info in entries.items():
        if not isinstance(info, dict) or float(info.get("expires", math.inf)) < now:
            continue
        result[peer] = {k: v for k, v in info.items() if k != "expires"}
    return result


class MemoryPresence:
    """One node: entries never expire (they go when their page leaves)."""

    def __init__(self, bus: Bus) -> None:
        self._rooms: dict[str, Entries] = {}
        self._bus = bus

    async def change(
        self,
        room: str,
        peer: str,
        info: dict[str, Any] | None,
        channel: str,
        message: dict[str, Any],
    ) -> Entries:
        if info is not None:
            self._put(room, peer, info)
        else:
            peers = self._rooms.get(room)
            if peers is not None:
                peers.pop(peer, None)
                if not peers:
                    del self._rooms[room]
        entries = await self.peers(room)
        await self._bus.publish(channel, {**message, "peers": entries})
        return entries

    def _put(self, room: str, peer: str, info: dict[str, Any]) -> None:
        self._rooms.setdefault(room, {})[peer] = dict(info)

    async def put_many(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        for room, peer, info in entries:
            self._put(room, peer, info)

    async def peers(self, room: str) -> Entries:
        return {peer: dict(info) for peer, info in self._rooms.get(room, {}).items()}


# KEYS[1]: the room's hash. ARGV: peer, its entry (JSON; "" removes it), the hash's TTL, the
# channel, the message as JSON without its closing brace. Returns the hash's fields and values.
_CHANGE = """
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
local all = redis.call('HGETALL', KEYS[1])
local parts = {}
for i = 1, #all, 2 do
  parts[#parts + 1] = cjson.encode(all[i]) .. ':' .. all[i + 1]
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ',"peers":{' .. table.concat(parts, ',') .. '}}')
return all
"""


class RedisPresence:
    """Entries carry their own expiry, since Redis 7.0 hashes cannot expire single fields.

    The bus must be Redis pub/sub on the same server (web/app.py builds both from REDIS_URL):
    the change script publishes there itself.

    The changes asked for in the same turn of the event loop (a burst of joins) go to Redis in
    one pipeline: one round trip and one pooled connection for all of them instead of one each.
    Redis still runs each change's script whole, in the order the changes were asked for.
    """

    def __init__(self, client: aioredis.Redis, prefix: str = "p2pi:presence:") -> None:
        self._client = client
        self._prefix = prefix
        self._change = client.register_script(_CHANGE)
        self._waiting: list[tuple[str, list[Any], asyncio.Future[Any]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def change(
        self,
        room: str,
        peer: str,
        info: dict[str, Any] | None,
        channel: str,
        message: dict[str, Any],
    ) -> Entries:
        entry = (
            "" if info is None else json.dumps({**info, "expires": time.time() + PRESENCE_TTL_S})
        )
        head = json.dumps(message, separators=(",", ":"))
        if not head.endswith("}") or head == "{}":
            raise ValueError("a presence announcement is a non-empty JSON object")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        args = [peer, entry, int(PRESENCE_TTL_S * 4), channel, head[:-1]]
        self._waiting.append((self._prefix + room, args, future))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_changes(), name="presence-changes")
        raw = await future
        pairs = {_text(raw[i]): raw[i + 1] for i in range(0, len(raw) - 1, 2)}
        return await self._live(room, pairs)

    async def _send_changes(self) -> None:
        await asyncio.sleep(0)  # the changes of this turn of the loop go in the same pipeline
        while self._waiting:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, args, _ in batch:
                        await self._change(keys=[key], args=args, client=pipe)
                    results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # Redis unreachable: every change of the batch fails
                results = [exc] * len(batch)
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():  # its page went away meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def put_many(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        expires = time.time() + PRESENCE_TTL_S
        async with self._client.pipeline(transaction=False) as pipe:
            for room, peer, info in entries:
                key = self._prefix + room
                pipe.hset(key, peer, json.dumps({**info, "expires": expires}))
                pipe.expire(key, int(PRESENCE_TTL_S * 4))
            await pipe.execute()

    async def peers(self, room: str) -> Entries:
        raw = await self._client.hgetall(self._prefix + room)
        return await self._live(room, {_text(k): v for k, v in raw.items()})

    async def _live(self, room: str, raw: dict[str, Any]) -> Entries:
        """The room's entries that have not expired; expired ones are deleted."""
        entries = {peer: json.loads(value) for peer, value in raw.items()}
        result = live(entries)
        stale = [peer for peer in entries if peer not in result]
        if stale:
            await self._client.hdel(self._prefix + room, *stale)
        return result


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
