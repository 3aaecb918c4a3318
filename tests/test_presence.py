"""Presence changes carry the room as it is after them (signaling/presence.py): on Redis the
write, the read and the broadcast are one script, so however changes on several nodes
interleave, the last broadcast each node gets is the room as it is."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from bus.events import MalformedMessage, PresenceChanged, decode_room, encode
from bus.pubsub import MemoryBus, RedisBus
from signaling.presence import MemoryPresence, RedisPresence, live


async def test_each_broadcast_carries_the_room_after_its_change(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    bus = RedisBus(client)
    heard: list[dict[str, Any]] = []
    got = asyncio.Event()

    async def handler(message: dict[str, Any]) -> None:
        heard.append(message)
        got.set()

    await bus.subscribe("p2pi:room:1", handler)
    presence = RedisPresence(client)
    # An entry left by a node that died long ago: neither returned nor broadcast, and deleted.
    stale = {"role": "recruiter", "ready": False, "since": 1.0, "expires": time.time() - 5}
    await client.hset("p2pi:presence:p2pi:room:1", "gone", json.dumps(stale))
    joined = encode(PresenceChanged("a", "candidate", 1))
    entries = await presence.change(
        "p2pi:room:1",
        "a",
        {"role": "candidate", "ready": False, "since": 2.0},
        "p2pi:room:1",
        joined,
    )
    assert entries == {"a": {"role": "candidate", "ready": False, "since": 2.0}}
    await asyncio.wait_for(got.wait(), 5)
    message = decode_room(heard[-1])
    assert isinstance(message, PresenceChanged) and message.joined == "candidate"
    assert message.peers is not None and live(message.peers) == entries
    assert await client.hkeys("p2pi:presence:p2pi:room:1") == [b"a"]
    # Leaving: the broadcast carries the room without the page.
    got.clear()
    assert (
        await presence.change("p2pi:room:1", "a", None, "p2pi:room:1", encode(PresenceChanged("a")))
        == {}
    )
    await asyncio.wait_for(got.wait(), 5)
    assert decode_room(heard[-1]).peers == {}  # type: ignore[union-attr]
    await bus.close()
    await client.aclose()


async def test_interleaved_changes_on_two_nodes_are_broadcast_in_order(redis_url: str) -> None:
    """Two nodes, each with its own Redis connections, change one room at once (joins, readies,
    leaves), 300 changes in all. Each node's broadcasts, replayed in the order received, give
    exactly the entries each one carries; and the last one is the room as it is in Redis."""
    clients = [aioredis.from_url(redis_url) for _ in range(2)]
    buses = [RedisBus(c) for c in clients]
    stores = [RedisPresence(c) for c in clients]
    made: dict[str, tuple[str, dict[str, Any] | None]] = {}
    replayed: list[dict[str, Any]] = [{}, {}]
    counts = [0, 0]
    wrong: list[str] = []

    def listener(node: int) -> Any:
        async def handler(message: dict[str, Any]) -> None:
            decoded = decode_room(message)
            assert isinstance(decoded, PresenceChanged) and decoded.peers is not None
            peer, info = made[message["change"]]
            if info is None:
                replayed[node].pop(peer, None)
            else:
                replayed[node][peer] = info
            if live(decoded.peers) != replayed[node]:
                wrong.append(f"node {node}, change {message['change']}")
            counts[node] += 1

        return handler

    for node, bus in enumerate(buses):
        await bus.subscribe("p2pi:room:7", listener(node))
    chance = random.Random(3)

    async def churn(node: int) -> None:
        for n in range(150):
            peer = f"n{chance.randrange(2)}-{chance.randrange(4)}"
            info = (
                None
                if chance.random() < 0.3
                else {"role": "candidate", "ready": n % 2 == 0, "since": n}
            )
            made[f"{node}/{n}"] = (peer, info)
            message = {**encode(PresenceChanged(peer)), "change": f"{node}/{n}"}
            await stores[node].change("p2pi:room:7", peer, info, "p2pi:room:7", message)

    await asyncio.gather(churn(0), churn(1))
    deadline = time.monotonic() + 10
    while counts != [300, 300] and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    assert counts == [300, 300]
    assert wrong == []
    truth = await stores[0].peers("p2pi:room:7")
    assert truth  # some pages are still there
    assert replayed[0] == truth and replayed[1] == truth
    for bus in buses:
        await bus.close()
    for client in clients:
        await client.aclose()


async def test_a_burst_of_changes_goes_in_few_pipelines_each_answered_in_order(
    redis_url: str,
) -> None:
    """400 changes asked for at once on one node (a reconnect storm): they reach Redis in
    pipelines of at most MAX_BATCH, yet each is answered with its room as it was right after
    it, in the order asked, and each room's broadcasts arrive in that order too."""
    client = aioredis.from_url(redis_url)
    bus = RedisBus(client)
    presence = RedisPresence(client)
    pipelines = 0
    make_pipeline = client.pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return make_pipeline(*args, **kwargs)

    client.pipeline = counting  # type: ignore[method-assign]
    rooms = [f"p2pi:room:burst{r}" for r in range(20)]
    heard: dict[str, list[dict[str, Any]]] = {room: [] for room in rooms}

    def listener(room: str) -> Any:
        async def handler(message: dict[str, Any]) -> None:
            heard[room].append(message)

        return handler

    for room in rooms:
        await bus.subscribe(room, listener(room))
    chance = random.Random(5)
    asked: list[tuple[str, str, dict[str, Any] | None]] = []
    for n in range(400):
        room = rooms[chance.randrange(len(rooms))]
        info = None if chance.random() < 0.25 else {"role": "candidate", "ready": False, "since": n}
        asked.append((room, f"p{chance.randrange(5)}", info))
    answers = await asyncio.gather(
        *(
            presence.change(room, peer, info, room, {**encode(PresenceChanged(peer)), "n": n})
            for n, (room, peer, info) in enumerate(asked)
        )
    )
    assert 2 <= pipelines <= 4  # 400 changes, at most 200 a pipeline
    expected: dict[str, dict[str, Any]] = {room: {} for room in rooms}
    for (room, peer, info), answer in zip(asked, answers, strict=True):
        if info is None:
            expected[room].pop(peer, None)
        else:
            expected[room][peer] = info
        assert answer == expected[room]
    deadline = time.monotonic() + 10
    while sum(map(len, heard.values())) < 400 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    for room in rooms:
        numbers = [message["n"] for message in heard[room]]
        assert numbers == [n for n, (r, _, _) in enumerate(asked) if r == room]
    await bus.close()
    await client.aclose()


async def test_changes_fail_clearly_when_redis_is_unreachable() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    presence = RedisPresence(client)
    results = await asyncio.gather(
        *(
            presence.change("r", f"p{n}", {"role": "candidate"}, "r", encode(PresenceChanged("p")))
            for n in range(3)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, aioredis.ConnectionError) for r in results), results
    await client.aclose()


async def test_on_one_node_the_broadcast_carries_the_room_too() -> None:
    bus = MemoryBus()
    heard: list[dict[str, Any]] = []

    async def handler(message: dict[str, Any]) -> None:
        heard.append(message)

    await bus.subscribe("room", handler)
    presence = MemoryPresence(bus)
    await presence.change("room", "a", {"role": "recruiter"}, "room", encode(PresenceChanged("a")))
    await presence.change("room", "b", {"role": "candidate"}, "room", encode(PresenceChanged("b")))
    assert decode_room(heard[-1]).peers == {"a": {"role": "recruiter"}, "b": {"role": "candidate"}}  # type: ignore[union-attr]
    await presence.change("room", "a", None, "room", encode(PresenceChanged("a")))
    assert decode_room(heard[-1]).peers == {"b": {"role": "candidate"}}  # type: ignore[union-attr]


@pytest.mark.parametrize("peers", [[], "x", {"a": 1}, {"a": [1]}])
def test_a_broadcast_with_unreadable_entries_is_refused(peers: Any) -> None:
    with pytest.raises(MalformedMessage):
        decode_room({"kind": "presence", "from": "a", "peers": peers})


def test_a_broadcast_without_entries_is_read_as_from_an_older_node() -> None:
    assert decode_room({"kind": "presence", "from": "a"}) == PresenceChanged("a")
