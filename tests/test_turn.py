"""A real TURN relay (Debian's coturn, use-auth-secret): the service's time-limited credentials
open allocations over UDP, TCP and TLS and nothing else does; with ICE_TRANSPORT_POLICY=relay a
page's recording connection and the server's peer both go through the relay; the connectivity
probe a candidate's page makes before Join is answered and comes up."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aioice import turn
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from service.settings import Settings
from signaling.ice import TURN_CREDENTIAL_TTL_S, turn_credentials
from tests.conftest import Mailbox, csrf_of
from tests.helpers import create_interview_now, register
from tests.rtc import SpeakingPeer, espeak
from tests.test_candidate_and_presence import join_consents, next_of
from tests.turn import TurnServer
from web.app import create_app
from web.keys import JOURNAL, MEDIA


class _Quiet:
    """What a relayed datagram endpoint needs on top of TURN (nothing is sent over it here)."""

    def connection_made(self, transport: Any) -> None:
        pass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pass

    def error_received(self, exc: Exception) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass


def _client_tls(server: TurnServer) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server.cert))
    return context


async def allocate(server: TurnServer, transport: str, username: str, password: str) -> Any:
    """A relay allocation on the server; returns its TurnTransport (close it)."""
    port = server.tls_port if transport == "tls" else server.port
    relayed, _ = await asyncio.wait_for(
        turn.create_turn_endpoint(
            _Quiet,
            server_addr=(server.address, port),
            username=username,
            password=password,
            ssl=_client_tls(server) if transport == "tls" else None,
            transport="udp" if transport == "udp" else "tcp",
        ),
        timeout=10,
    )
    return relayed


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_the_services_credentials_open_a_relay_over_each_transport(
    turn_server: TurnServer, transport: str
) -> None:
    username, password = turn_credentials(turn_server.secret, "peer1")
    relayed = await allocate(turn_server, transport, username, password)
    try:
        address = relayed.get_extra_info("sockname")
        assert address[0] == turn_server.address and 40000 <= address[1] <= 49999
    finally:
        relayed.close()
    assert any("peer1" in line for line in turn_server.allocations())


async def test_credentials_of_another_secret_or_past_their_time_are_refused(
    turn_server: TurnServer,
) -> None:
    wrong = turn_credentials("not-the-secret", "peer1")
    expired = turn_credentials(
        turn_server.secret, "peer1", now=time.time() - 2 * TURN_CREDENTIAL_TTL_S
    )
    for username, password in (wrong, expired):
        with pytest.raises((ConnectionError, turn.stun.TransactionFailed)):  # type: ignore[attr-defined]
            await allocate(turn_server, "udp", username, password)
    assert turn_server.allocations() == []


async def joined_candidate(client, make_client, mailbox: Mailbox, email: str):  # type: ignore[no-untyped-def]
    """An interview in its plan stage, the candidate's socket joined: (id, ws, joined message)."""
    await register(client, mailbox, email)
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    assert (await join_consents(candidate, link, ["recording", "ai_analysis"]))[0] == 200
    token = await csrf_of(client, f"/interviews/{interview_id}")
    await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": token})
    ws = await candidate.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]})
    return interview_id, ws, await next_of(ws, "joined")


def configuration(joined: dict[str, Any]) -> RTCConfiguration:
    """What a page makes of its joined message."""
    return RTCConfiguration(
        iceServers=[RTCIceServer(**server) for server in joined["ice_servers"]],
        iceTransportPolicy=RTCIceTransportPolicy(joined["ice_transport_policy"]),
    )


def relay_settings(settings: Settings, server: TurnServer) -> Settings:
    return replace(
        settings,
        ice_servers=server.ice_servers(["udp"]),
        turn_secret=server.secret,
        ice_transport_policy="relay",
    )


async def test_relay_only_the_recording_goes_through_coturn(
    aiohttp_client, mailbox: Mailbox, settings: Settings, turn_server: TurnServer, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(relay_settings(settings, turn_server)))
    interview_id, ws, joined = await joined_candidate(
        client, lambda: aiohttp_client(client.server), mailbox, "relay@example.com"
    )
    assert joined["ice_transport_policy"] == "relay"
    [server] = joined["ice_servers"]
    assert server["username"].endswith(":" + joined["peer"]) and server["credential"]
    # The server's own peer also uses the relay, with credentials of its own.
    assert client.app[MEDIA].ice_transport_policy == RTCIceTransportPolicy.RELAY
    assert client.app[MEDIA].ice_servers[0].username.endswith(":server")

    peer = SpeakingPeer(
        ws, espeak(tmp_path / "relay.wav", "Through the relay, please."), configuration(joined)
    )
    await peer.start()
    assert "typ host" not in peer.pc.localDescription.sdp
    await peer.wait(limit=20)
    pair = dict(peer.pc.getTransceivers()[0].sender.transport.transport._connection._nominated)
    await peer.close()
    await ws.close()
    await asyncio.sleep(0.3)
    await client.app[JOURNAL].flush()
    [selected] = pair.values()
    assert selected.local_candidate.type == "relay" and selected.remote_candidate.type == "relay"
    users = {line.split("user <", 1)[1].split(">", 1)[0] for line in turn_server.allocations()}
    assert any(u.endswith(":server") for u in users) and any(
        u.endswith(":" + joined["peer"]) for u in users
    ), users
    folder = settings.recordings_dir / f"interview-{interview_id}"
    [recorded] = list(folder.glob("candidate-*.opus"))
    assert recorded.stat().st_size > 4000


async def test_the_connectivity_probe_is_answered_and_comes_up(
    client, make_client, mailbox: Mailbox, settings: Settings
) -> None:
    """What the candidate's page does before Join: a data channel to the server's peer; nothing
    is recorded, and the probe is gone when the page leaves."""
    await register(client, mailbox, "probe@example.com")
    _, link = await create_interview_now(client)
    candidate = await make_client()
    ws = await candidate.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]})
    joined = await next_of(ws, "joined")
    assert joined["ice_transport_policy"] == "all"

    pc = RTCPeerConnection(configuration(joined))
    channel = pc.createDataChannel("probe")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_json({"type": "probe-offer", "sdp": pc.localDescription.sdp})
    answer = await next_of(ws, "probe-answer")
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await asyncio.wait_for(opened.wait(), 10)
    assert pc.connectionState == "connected"
    assert client.app[MEDIA].probes == 1 and client.app[MEDIA].connections == 0

    # Audio is not a probe: refused, the connection stays up.
    await ws.send_json({"type": "probe-offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"})
    refused = await next_of(ws, "error")
    assert refused["code"] == "bad_sdp" and "no media" in refused["message"]
    await pc.close()
    await ws.close()
    for _ in range(50):
        if client.app[MEDIA].probes == 0:
            break
        await asyncio.sleep(0.05)
    assert client.app[MEDIA].probes == 0
