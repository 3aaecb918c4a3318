"""The signaling fuzz campaign: malformed, oversized, out-of-order and foreign-room messages.

Two parts: a hypothesis corpus in lockstep against the in-process app (both databases), and
the campaign proper: 100,000 mutations of captured traffic against a real `serve` process
while two live calls relay beside it (0 crashes, 0 tracebacks, the calls keep relaying,
memory bounded; the count and the rate are printed).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.settings import Settings
from signaling import protocol
from tests.conftest import Mailbox, start_server
from tests.fuzz import Mutator
from tests.helpers import create_interview_now, register
from tests.test_candidate_and_presence import join_consents, next_of

CAMPAIGN_MESSAGES = 100_000
"""Frames the campaign sends (the issue asks for at least 100,000)."""


@pytest.fixture(name="settings")
def lenient_settings(settings: Settings) -> Settings:
    """The lockstep test keeps a never-joined socket open for its whole run and sends as fast
    as it can: no join deadline, no message rate in the way."""
    return replace(settings, ws_join_deadline_s=600, ws_messages_per_s=1_000_000)


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


# The campaign -----------------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


async def _captured_sdp() -> tuple[str, str, str]:
    """A real aiortc offer (audio and video, with its candidates), its answer, and a
    data-channel-only offer like a page's connectivity probe."""
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    prober = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offerer.addTransceiver("audio", direction="sendrecv")
        offerer.addTransceiver("video", direction="sendrecv")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(
            RTCSessionDescription(offerer.localDescription.sdp, "offer")
        )
        await answerer.setLocalDescription(await answerer.createAnswer())
        prober.createDataChannel("probe")
        await prober.setLocalDescription(await prober.createOffer())
        return (
            offerer.localDescription.sdp,
            answerer.localDescription.sdp,
            prober.localDescription.sdp,
        )
    finally:
        for pc in (offerer, answerer, prober):
            await pc.close()


def _candidates(sdp: str) -> list[dict[str, Any]]:
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp).group(1)  # type: ignore[union-attr]
    return [
        {"candidate": line[2:], "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": ufrag}
        for line in sdp.split("\r\n")
        if line.startswith("a=candidate:")
    ]


class Browser:
    """One person's cookies against the server process (helpers take it like a TestClient)."""

    def __init__(self, url: str) -> None:
        self.http = aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True))

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.http.post(path, **kwargs)

    def ws_connect(self, path: str, **kwargs: Any) -> Any:
        return self.http.ws_connect(path, **kwargs)


class LiveCall:
    """A recruiter and a candidate in a call, relaying offers and answers the whole time."""

    def __init__(self, name: str, recruiter: Any, candidate: Any) -> None:
        self.name, self.recruiter, self.candidate = name, recruiter, candidate
        self.relayed = 0
        self.latencies: list[float] = []
        self.candidate_peer = ""
        self.recruiter_peer = ""

    async def expect(self, ws: Any, kind: str, sdp: str, sender: str) -> None:
        """The next message that is not presence must be exactly this one."""
        while True:
            message = json.loads((await ws.receive(timeout=10)).data)
            if message["type"] == "presence":
                continue
            assert (message["type"], message.get("sdp"), message.get("from")) == (
                kind,
                sdp,
                sender,
            ), (self.name, message)
            return

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            offer = f"v=0 {self.name} {self.relayed}"
            await self.candidate.send_json({"type": "offer", "sdp": offer, "connection": "live"})
            await self.expect(self.recruiter, "offer", offer, self.candidate_peer)
            answer = f"v=0 re {self.name} {self.relayed}"
            await self.recruiter.send_json(
                {"type": "answer", "sdp": answer, "connection": "live", "re": "live"}
            )
            await self.expect(self.candidate, "answer", answer, self.recruiter_peer)
            self.latencies.append(time.perf_counter() - started)
            self.relayed += 1
            await asyncio.sleep(0.02)


Reply = tuple[str, str | None]
"""A reply's type and, for an error, its code."""


def expected_replies(raw: str | bytes, joined: bool) -> list[set[Reply]] | None:
    """What the server answers to the sender of this frame (each reply: the ones that may
    come); None: not to be sent to this socket."""
    if isinstance(raw, bytes):
        return [{("error", "bad_message")}]
    try:
        message = protocol.parse(raw)
    except protocol.ProtocolError as exc:
        return [{("error", exc.code)}]
    if isinstance(message, protocol.Ping):
        return [{("pong", None)}]
    if isinstance(message, protocol.Join):
        return [{("error", "already_joined")}] if joined else None  # a loose socket never joins
    if not joined:
        return [{("error", "not_joined")}]
    if isinstance(message, protocol.Ready):
        return [{("error", "consent_required")}]  # the fuzzing rooms' candidates never consent
    if isinstance(message, protocol.MediaOffer):
        return [{("error", "not_allowed")}]  # their interviews are not in the call
    if isinstance(message, protocol.ProbeOffer):
        return [{("probe-answer", None), ("error", "bad_sdp")}]  # aiortc decides
    return []  # relayed to the room (nobody else is in it), nothing back


async def fuzz_socket(ws: Any, frames: list[str | bytes], joined: bool, batch: int = 250) -> int:
    """Send the frames in batches, each followed by a marker ping, and check every reply."""
    sent = 0
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        expected: list[set[Reply]] = []
        for raw in chunk:
            replies = expected_replies(raw, joined)
            if replies is None:
                continue
            expected += replies
            if isinstance(raw, bytes):
                await ws.send_bytes(raw)
            else:
                await ws.send_str(raw)
            sent += 1
        await ws.send_str('{"type":"ping"}')  # the batch's marker
        expected.append({("pong", None)})
        got: list[Reply] = []
        while len(got) < len(expected):
            message = await ws.receive(timeout=30)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            data = json.loads(message.data)
            if data["type"] != "presence":
                got.append((data["type"], data.get("code")))
        if any(reply not in allowed for reply, allowed in zip(got, expected, strict=True)):
            wrong = next(
                i
                for i, pair in enumerate(zip(got, expected, strict=True))
                if pair[0] not in pair[1]
            )
            raise AssertionError(f"reply {wrong} of a batch: {got[wrong]} for {expected[wrong]}")
    return sent


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_signaling_campaign_of_100k_mutated_messages(
    db: str, smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    mailbox, smtp_port = smtp
    log = tmp_path / "server.log"
    server = start_server(
        {
            "DATABASE_URL": db,
            "DATA_DIR": str(tmp_path / "var"),
            "SECRET_KEY": "campaign",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "WS_JOIN_DEADLINE_S": "600",  # the loose sockets stay unjoined all along
            "WS_MESSAGES_PER_S": "1000000",
            "WS_PER_ADDRESS": "100",
        },
        log,
    )
    browsers: list[Browser] = []

    def browser() -> Browser:
        browsers.append(Browser(server.url))
        return browsers[-1]

    try:
        recruiter = browser()
        await register(recruiter, mailbox, "campaign@example.com")  # type: ignore[arg-type]
        rooms = [
            await create_interview_now(recruiter, name=f"Live {i}", email=f"l{i}@example.com")
            for i in range(2)
        ]  # type: ignore[arg-type]
        targets = [
            await create_interview_now(recruiter, name=f"Fuzz {i}", email=f"f{i}@example.com")
            for i in range(2)
        ]  # type: ignore[arg-type]

        # Two live calls, and the traffic they exchange captured as seeds.
        seeds: list[dict[str, Any]] = []
        calls: list[LiveCall] = []
        for index, (interview_id, link) in enumerate(rooms):
            person = browser()
            assert (await join_consents(person, link, ["recording", "ai_analysis"]))[0] == 200  # type: ignore[arg-type]
            recruiter_ws = await recruiter.ws_connect("/ws")
            join = {"type": "join", "role": "recruiter", "interview": interview_id}
            await recruiter_ws.send_json(join)
            joined = await next_of(recruiter_ws, "joined")
            candidate_ws = await person.ws_connect("/ws")
            candidate_join = {"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]}
            await candidate_ws.send_json(candidate_join)
            candidate_joined = await next_of(candidate_ws, "joined")
            await candidate_ws.send_json({"type": "ready"})
            presence = await next_of(recruiter_ws, "presence")
            call = LiveCall(f"call-{index}", recruiter_ws, candidate_ws)
            call.recruiter_peer, call.candidate_peer = joined["peer"], candidate_joined["peer"]
            calls.append(call)
            seeds += [join, candidate_join, joined, candidate_joined, presence]
        offer_sdp, answer_sdp, probe_sdp = await _captured_sdp()
        live_peer = calls[0].recruiter_peer
        seeds += [
            {"type": "ready"},
            {"type": "ping"},
            {"type": "restart", "connection": "c1", "to": live_peer},
            {"type": "offer", "sdp": offer_sdp, "connection": "c1"},
            {"type": "offer", "sdp": offer_sdp, "connection": "c1", "to": live_peer},
            {"type": "answer", "sdp": answer_sdp, "connection": "c1", "re": "c0"},
            {"type": "media-offer", "sdp": offer_sdp},
            {"type": "probe-offer", "sdp": probe_sdp},
            {"type": "network-check", "relay": "none", "server": "ok", "rtt_ms": 12.5},
            {"type": "quality", "rtt_ms": 40, "loss": 0.01, "kbps": 900, "state": "connected"},
            {"type": "error", "code": "bad_json", "message": "The message is not valid JSON."},
        ]
        seeds += [
            {"type": "ice", "candidate": c, "connection": "c1"} for c in _candidates(offer_sdp)
        ]
        seeds.append({"type": "ice", "candidate": None, "to": live_peer})

        # The fuzzing sockets: two joined to rooms of their own, two that never join.
        fuzzers: list[tuple[Any, bool]] = []
        for _, link in targets:
            ws = await browser().ws_connect("/ws")
            await ws.send_json(
                {"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]}
            )
            await next_of(ws, "joined")
            fuzzers.append((ws, True))
        fuzzers += [(await browser().ws_connect("/ws"), False) for _ in range(2)]

        mutator = Mutator(seeds, seed=13)
        per_socket = -(-CAMPAIGN_MESSAGES // len(fuzzers))
        plans: list[list[str | bytes]] = []
        for index, (_, joined) in enumerate(fuzzers):
            frames: list[str | bytes] = []
            while len(frames) < per_socket:
                frame = mutator.frame()
                if expected_replies(frame, joined) is not None:  # a loose socket never joins
                    frames.append(frame)
            for spot in range(index, per_socket, 997):
                frames[spot] = bytes([spot % 256, 0, 255])  # binary frames too
            plans.append(frames)

        rss_before = _rss_mb(server.process.pid)
        stop = asyncio.Event()
        relaying = [asyncio.create_task(call.run(stop)) for call in calls]
        started = time.perf_counter()
        counts = await asyncio.gather(
            *(
                fuzz_socket(ws, plan, joined)
                for (ws, joined), plan in zip(fuzzers, plans, strict=True)
            )
        )
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*relaying)
        sent = sum(counts)
        rss_after = _rss_mb(server.process.pid)

        # Frames over 1 MiB close only their own socket (1009); the server stays up.
        for _ in range(3):
            big = await browser().ws_connect("/ws")
            await big.send_str("x" * (protocol.MAX_FRAME_BYTES + 1))
            closing = await big.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

        # The live calls relayed all along, in order, and still do.
        latencies = sorted(x for call in calls for x in call.latencies)
        p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
        print(
            f"\nsignaling campaign: {sent} messages in {elapsed:.1f} s = {sent / elapsed:,.0f}/s; "
            f"crashes 0, tracebacks 0; live calls relayed {[c.relayed for c in calls]} round trips "
            f"(p99 {p99 * 1000:.0f} ms); server RSS {rss_before:.0f} -> {rss_after:.0f} MB"
        )
        assert sent >= CAMPAIGN_MESSAGES
        assert all(call.relayed >= 20 for call in calls)
        stop.clear()
        relaying = [asyncio.create_task(call.run(stop)) for call in calls]
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*relaying)
        for ws, _ in fuzzers:
            assert not ws.closed
        assert server.process.poll() is None  # no crash
        assert (await recruiter.get("/healthz")).status == 200
        assert rss_after - rss_before < 100, (rss_before, rss_after)
        text = log.read_text()
        assert "Traceback" not in text and " ERROR " not in text, text[-3000:]
        assert len(text.splitlines()) < 100
    finally:
        for b in browsers:
            await b.http.close()
        server.process.terminate()
        server.process.wait(timeout=15)
