"""Offers into the server's aiortc peer: truncated, huge, wrong codecs, no audio, 100 m-lines
and random mangling. Each is answered (Opus only) or refused with MediaError, nothing else;
a refused offer leaves no connection behind."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection

from media.peer import MediaError, MediaServer
from media.storage import LocalStorage
from signaling import protocol
from tests.conftest import Mailbox
from tests.fuzz import SDP_LINES, mutate_sdp
from tests.test_candidate_and_presence import next_of
from tests.test_recording import in_call


async def real_offer(*kinds: str) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in kinds:
        pc.addTransceiver(kind, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def offers(audio: str, video_only: str, both: str, rng: random.Random) -> list[tuple[str, str]]:
    head, _, body = audio.partition("m=audio")
    cases = [
        ("valid", audio),
        ("audio and video", both),
        ("no audio", video_only),
        ("100 m-lines", head + ("m=audio" + body) * 100),
        ("5 m-lines", head + ("m=audio" + body) * 5),
        ("wrong codecs", audio.replace("opus/48000/2", "speex/48000/2")),
        ("only PCMU", audio.replace("opus/48000/2", "x/1").replace("G722/8000", "y/1")),
        ("empty", ""),
        ("not sdp", "hello"),
        ("huge", audio + "a=x-filler:" + "z" * (protocol.MAX_SDP_CHARS - len(audio) - 20) + "\r\n"),
        ("many candidates", audio + "".join(f"{line}\r\n" for line in SDP_LINES * 40)),
        ("lf only", audio.replace("\r\n", "\n")),
        ("no ice", "\r\n".join(x for x in audio.split("\r\n") if not x.startswith("a=ice"))),
        ("no fingerprint", "\r\n".join(x for x in audio.split("\r\n") if "fingerprint" not in x)),
        ("bad setup", audio.replace("a=setup:actpass", "a=setup:holdconn")),
        ("nul", audio.replace("opus", "op\x00us")),
    ]
    cases += [(f"truncated at {cut}", audio[:cut]) for cut in range(0, len(audio), 23)]
    cases += [(f"mutation {i}", mutate_sdp(rng, audio)) for i in range(120)]
    return cases


async def test_the_server_peer_answers_or_refuses_every_offer(tmp_path: Path) -> None:
    media = MediaServer(LocalStorage(tmp_path), [], on_segment=lambda *args: None)
    audio = await real_offer("audio")
    video = await real_offer("video")
    both = await real_offer("audio", "video")
    baseline_tasks = len(asyncio.all_tasks())
    answered, refused, slowest = 0, 0, 0.0
    cases = offers(audio, video, both, random.Random(13))
    for name, sdp in cases:
        started = time.perf_counter()
        try:
            answer = await media.accept("page", 1, "candidate", sdp, client_address="127.0.0.1")
        except MediaError as exc:
            refused += 1
            assert str(exc) and len(str(exc)) < 300, name
            assert media.connections == 0, name  # nothing left behind
        else:
            answered += 1
            assert answer.startswith("v=0"), name
            assert "opus/48000" in answer and "PCMU" not in answer, name
            video = answer.partition("m=video")[2]
            assert not video or "a=inactive" in video.partition("m=")[0], name
            await media.close("page")
        slowest = max(slowest, time.perf_counter() - started)
    await media.close_all()
    await asyncio.sleep(0.5)
    print(
        f"\nSDP fuzz: {len(cases)} offers, {answered} answered, {refused} refused, 0 other "
        f"errors; slowest {slowest * 1000:.0f} ms"
    )
    assert answered >= 2 and refused >= 20
    assert slowest < 5
    assert len(asyncio.all_tasks()) <= baseline_tasks + 2  # aiortc's tasks ended with the peers
    assert media.connections == 0


async def test_bad_offers_through_the_hub_are_refused_and_the_call_goes_on(
    client, make_client, mailbox: Mailbox
) -> None:
    _, _, _, _, ws = await in_call(client, make_client, mailbox, "sdp@example.com")
    audio = await real_offer("audio")
    head, _, body = audio.partition("m=audio")
    for sdp in [head + ("m=audio" + body) * 100, audio[:200], await real_offer("video")]:
        await ws.send_json({"type": "media-offer", "sdp": sdp[: protocol.MAX_SDP_CHARS]})
        error = await next_of(ws, "error")
        assert error["code"] in ("bad_sdp", "bad_message"), error
    await ws.send_json({"type": "media-offer", "sdp": audio})
    answer = await next_of(ws, "media-answer")
    assert "opus/48000" in answer["sdp"]
