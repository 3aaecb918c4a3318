"""Thousands of malformed, oversized, out-of-order and foreign-room messages against the hub."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling import protocol
from tests.conftest import Mailbox
from tests.helpers import create_interview_now, register
from tests.test_candidate_and_presence import join_consents, next_of

TYPES = [
    "join",
    "ready",
    "offer",
    "answer",
    "ice",
    "restart",
    "ping",
    "joined",
    "presence",
    "error",
    "",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
fields = st.dictionaries(
    st.sampled_from(["sdp", "to", "candidate", "role", "token", "interview", "x", "sdpMid"]),
    json_values | st.text(max_size=200),
    max_size=4,
)
typed = st.builds(
    lambda t, f: json.dumps({"type": t, **f}), st.sampled_from(TYPES) | st.text(max_size=12), fields
)
garbage = st.text(max_size=300) | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
non_objects = json_values.map(json.dumps)
oversized = st.integers(
    min_value=protocol.MAX_MESSAGE_BYTES, max_value=protocol.MAX_MESSAGE_BYTES * 3
).map(lambda n: json.dumps({"type": "offer", "sdp": "v" * n}))
messages = st.one_of(typed, typed, typed, garbage, non_objects, oversized)


def corpus(count: int) -> list[str]:
    """A reproducible list of `count` generated frames."""
    found: list[str] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(messages)
    def collect(message: str) -> None:
        found.append(message)

    collect()
    return found


def expected_error(raw: str) -> str | None:
    try:
        protocol.parse(raw)
    except protocol.ProtocolError as exc:
        return exc.code
    return None


async def drain_until_pong(ws, pongs: int = 1) -> list[dict]:
    """Everything the server sent up to the pong that answers our marker ping.

    `pongs` is 2 when the frame just sent was itself a valid ping.
    """
    await ws.send_str('{"type":"ping"}')
    seen = []
    while True:
        message = json.loads((await ws.receive(timeout=5)).data)
        if message["type"] == "pong":
            pongs -= 1
            if pongs == 0:
                return seen
            continue
        seen.append(message)


def is_ping(raw: str) -> bool:
    try:
        return isinstance(protocol.parse(raw), protocol.Ping)
    except protocol.ProtocolError:
        return False


async def test_the_hub_survives_a_fuzzed_corpus_and_other_rooms_are_untouched(
    client, make_client, mailbox: Mailbox
) -> None:
    # Room A: a real recruiter and candidate who must not notice anything.
    await register(client, mailbox, "fuzz@example.com")
    room_a, link_a = await create_interview_now(client)
    room_b, link_b = await create_interview_now(client, name="Fuzzy", email="fuzzy@example.com")
    candidate = await make_client()
    assert (await join_consents(candidate, link_a, ["recording", "ai_analysis"]))[0] == 200
    recruiter_ws = await client.ws_connect("/ws")
    await recruiter_ws.send_json({"type": "join", "role": "recruiter", "interview": room_a})
    recruiter_peer = (await next_of(recruiter_ws, "joined"))["peer"]
    candidate_ws = await candidate.ws_connect("/ws")
    await candidate_ws.send_json(
        {"type": "join", "role": "candidate", "token": link_a.rsplit("/", 1)[1]}
    )
    await next_of(candidate_ws, "joined")
    await drain_until_pong(recruiter_ws)

    # The fuzzer sits in room B, plus one connection that never joins (out of order).
    attacker = await make_client()
    fuzz_ws = await attacker.ws_connect("/ws")
    await fuzz_ws.send_json(
        {"type": "join", "role": "candidate", "token": link_b.rsplit("/", 1)[1]}
    )
    await next_of(fuzz_ws, "joined")
    loose_ws = await attacker.ws_connect("/ws")

    frames = corpus(1500)
    # Foreign-room messages: addressed to room A's recruiter by peer id.
    frames += [json.dumps({"type": "offer", "sdp": "v=0", "to": recruiter_peer})] * 50
    frames += [json.dumps({"type": "ice", "candidate": None, "to": recruiter_peer})] * 50
    frames += [json.dumps({"type": "join", "role": "recruiter", "interview": room_a})] * 20
    errors = 0
    for raw in frames:
        await fuzz_ws.send_str(raw)
        pongs = 2 if is_ping(raw) else 1
        replies = [r for r in await drain_until_pong(fuzz_ws, pongs) if r["type"] != "presence"]
        code = expected_error(raw)
        if code is not None:
            assert [r["type"] for r in replies] == ["error"], (raw[:200], replies)
            assert replies[0]["code"] == code and replies[0]["message"]
            errors += 1
        else:
            # Valid frames in the wrong place are refused too (a second join, a foreign ready...).
            assert all(r["type"] == "error" for r in replies), (raw[:200], replies)
        # Out of order: nothing but ping works before join.
        await loose_ws.send_str(raw)
        loose = await drain_until_pong(loose_ws, pongs)
        kind = json.loads(raw)["type"] if code is None else None
        if kind not in (None, "ping", "join"):
            assert [r.get("code") for r in loose] == ["not_joined"]
        assert all(r["type"] == "error" for r in loose)  # a loose socket never joins a room
    assert errors > 1000
    # A binary frame is refused with an error too, and the socket stays up.
    await fuzz_ws.send_bytes(b"\x00\x01")
    assert [r["code"] for r in await drain_until_pong(fuzz_ws)] == ["bad_message"]

    # Room A saw nothing from room B, and still relays between its own two people.
    assert await drain_until_pong(recruiter_ws) == []
    await candidate_ws.send_json({"type": "offer", "sdp": "v=0 real"})
    relayed = await next_of(recruiter_ws, "offer")
    assert relayed["sdp"] == "v=0 real"
    assert not fuzz_ws.closed and not recruiter_ws.closed


async def test_a_frame_over_one_mebibyte_closes_only_that_socket(client, mailbox: Mailbox) -> None:
    await register(client, mailbox, "big@example.com")
    ws = await client.ws_connect("/ws")
    await ws.send_str("x" * (protocol.MAX_FRAME_BYTES + 10))
    message = await ws.receive(timeout=5)
    assert ws.closed or message.type.name in ("CLOSE", "CLOSED", "CLOSING")
    other = await client.ws_connect("/ws")
    assert await drain_until_pong(other) == []
