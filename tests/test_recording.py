"""Server-side recording with real aiortc peers sending espeak-ng speech."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from rooms.db import make_engine, make_sessionmaker
from rooms.models import Interview, Recording
from rooms.recordings import cuts, question_window, segments
from tests.conftest import Mailbox, csrf_of
from tests.helpers import create_interview_now, register
from tests.rtc import SpeakingPeer, decode_to_pcm, espeak, probe_seconds, rms, wav_seconds
from tests.test_candidate_and_presence import join_consents, next_of
from web.keys import JOURNAL

ANSWER = (
    "A generator is a function that yields values lazily. It keeps its state between calls, "
    "so it can stream a large file line by line without loading it into memory."
)


async def in_call(client, make_client, mailbox: Mailbox, email: str):  # type: ignore[no-untyped-def]
    await register(client, mailbox, email)
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    assert (await join_consents(candidate, link, ["recording", "ai_analysis"]))[0] == 200
    token = await csrf_of(client, f"/interviews/{interview_id}")
    await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": token})
    ws = await candidate.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]})
    await next_of(ws, "joined")
    return interview_id, link, token, candidate, ws


async def rows(settings, interview_id: int) -> list[Recording]:  # type: ignore[no-untyped-def]
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        found = await segments(session, interview_id, "candidate")
    await engine.dispose()
    return found


async def test_candidate_speech_is_recorded_with_its_duration_and_questions_cut(
    client, make_client, mailbox: Mailbox, settings, tmp_path: Path
) -> None:
    interview_id, _, token, _, ws = await in_call(client, make_client, mailbox, "rec@example.com")
    wav = espeak(tmp_path / "answer.wav", ANSWER)
    sent = wav_seconds(wav)
    peer = SpeakingPeer(ws, wav)
    await peer.start()
    # The server's answer asks for in-band FEC, so a browser adds a copy of each frame to the
    # next packet once it sees loss (the recorder rebuilds lost frames from it).
    opus = re.search(r"a=rtpmap:(\d+) opus/48000", peer.pc.remoteDescription.sdp)
    assert opus is not None
    assert re.search(rf"a=fmtp:{opus[1]} .*useinbandfec=1", peer.pc.remoteDescription.sdp)
    # The technical part starts while the candidate talks: question 1 shows about 1 s into the
    # recording (its file appears with the first sample, once ICE and DTLS are through), question
    # 2 near the end, so question 1's cut holds most of the answer.
    folder = settings.recordings_dir / f"interview-{interview_id}"
    deadline = time.monotonic() + 10
    while not list(folder.glob("candidate-*.opus")) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    shown = time.time()
    await client.post(
        f"/api/interviews/{interview_id}/technical", json={}, headers={"X-CSRF-Token": token}
    )
    answered = time.time()
    await asyncio.sleep(max(0.5, sent - 2.5))
    await client.post(
        f"/api/interviews/{interview_id}/question",
        json={"position": 2},
        headers={"X-CSRF-Token": token},
    )
    await peer.wait(limit=sent + 10)
    await asyncio.sleep(0.3)
    await peer.close()
    await ws.close()
    await asyncio.sleep(0.3)
    await client.app[JOURNAL].flush()

    [recording] = await rows(settings, interview_id)
    path = settings.recordings_dir / recording.path
    assert path.exists() and recording.closed_at is not None
    assert abs(recording.duration_s - sent) / sent < 0.02, (recording.duration_s, sent)
    assert abs(probe_seconds(path) - sent) / sent < 0.02
    pcm = decode_to_pcm(path)
    assert rms(pcm) > 300  # speech, not silence

    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        interview = await session.get(Interview, interview_id)
        window = await question_window(session, interview, 1)
        found = await segments(session, interview_id, "candidate")
    await engine.dispose()
    assert window is not None
    [cut] = cuts(found, *window)
    # The cut starts where the question showed (while the request ran), on the recording's clock.
    origin = recording.started_at.timestamp()
    assert shown - origin - 0.05 <= cut.start_s <= answered - origin + 0.05
    assert 0.5 < cut.start_s < 2.5 and cut.end_s - cut.start_s > sent - 5
    start, end = int(cut.start_s * 16000) * 2, int(cut.end_s * 16000) * 2
    assert rms(pcm[start:end]) > 300


async def test_a_reconnect_starts_a_new_segment_with_the_gap_recorded(
    client, make_client, mailbox: Mailbox, settings, tmp_path: Path
) -> None:
    interview_id, link, _, candidate, ws = await in_call(
        client, make_client, mailbox, "gap@example.com"
    )
    wav = espeak(tmp_path / "part.wav", "First part of my answer.")
    first = SpeakingPeer(ws, wav)
    await first.start()
    await first.wait(limit=15)
    await first.close()
    await ws.close()  # the page reloads
    await asyncio.sleep(1.0)
    ws = await candidate.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]})
    await next_of(ws, "joined")
    second = SpeakingPeer(ws, wav)
    await second.start()
    await second.wait(limit=15)
    await second.close()
    await ws.close()
    await asyncio.sleep(0.3)
    await client.app[JOURNAL].flush()
    found = await rows(settings, interview_id)
    assert [r.segment for r in found] == [0, 1]
    assert found[0].gap_before_s is None
    assert 0.8 < found[1].gap_before_s < 5
    assert found[1].started_at > found[0].started_at
    for r in found:
        assert abs(r.duration_s - wav_seconds(wav)) / wav_seconds(wav) < 0.05
        assert (settings.recordings_dir / r.path).exists()


async def test_recording_is_refused_before_the_interview_or_without_consents(
    client, make_client, mailbox: Mailbox, tmp_path: Path
) -> None:
    await register(client, mailbox, "norec@example.com")
    interview_id, link = await create_interview_now(client)
    candidate = await make_client()
    ws = await candidate.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]})
    await next_of(ws, "joined")
    await ws.send_json({"type": "media-offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"})
    error = await next_of(ws, "error")
    assert error["code"] == "not_allowed"
    await ws.send_str(json.dumps({"type": "media-offer", "sdp": ""}))
    assert (await next_of(ws, "error"))["code"] == "bad_message"
