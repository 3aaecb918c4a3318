"""Recordings in an S3-compatible bucket (a real S3-API server: moto's standalone server):
recorded through the real recorder, played with range requests from another node, deleted,
purged; a spool left by a killed node uploaded on the next start; multipart while growing."""

from __future__ import annotations

import asyncio
import fcntl
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from media.oggopus import OggOpusWriter
from media.s3 import MIN_PART, S3Credentials, S3Location, S3Storage
from pipeline.retention import purge_recordings
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Recording
from rooms.recordings import start_segment, update_segment
from service.settings import Settings, SettingsError
from tests.conftest import Mailbox, csrf_of, free_port
from tests.rtc import SpeakingPeer, espeak, probe_seconds, wav_seconds
from tests.s3 import S3Server
from tests.seed import _seed
from tests.test_recording import in_call, rows
from tests.test_security import cookie_of
from web.app import create_app
from web.keys import JOURNAL, STORAGE


def in_bucket(settings: Settings, s3: S3Server, prefix: str = "p2pi") -> Settings:
    env = s3.env(prefix)
    return replace(
        settings,
        recordings_url=env["RECORDINGS_URL"],
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        s3_region=env["S3_REGION"],
        s3_access_key_id=env["S3_ACCESS_KEY_ID"],
        s3_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def settings(settings: Settings, s3_server: S3Server) -> Settings:
    return in_bucket(settings, s3_server)


def storage_of(s3: S3Server, spool: Path, part_size: int = MIN_PART) -> S3Storage:
    env = s3.env()
    return S3Storage(
        S3Location.parse(env["RECORDINGS_URL"]),
        spool,
        S3Credentials(
            env["S3_ENDPOINT_URL"],
            env["S3_REGION"],
            env["S3_ACCESS_KEY_ID"],
            env["S3_SECRET_ACCESS_KEY"],
        ),
        part_size=part_size,
    )


async def test_a_recording_lands_in_the_bucket_plays_on_another_node_and_is_deleted(
    client, make_client, mailbox: Mailbox, settings: Settings, s3_server: S3Server, tmp_path: Path
) -> None:
    if settings.database_url.startswith("postgresql"):
        pytest.skip("one backend is enough here; the production shape runs on PostgreSQL")
    interview_id, _, _, _, ws = await in_call(client, make_client, mailbox, "s3@example.com")
    wav = espeak(tmp_path / "answer.wav", "My answer is kept in the bucket, not on this disk.")
    peer = SpeakingPeer(ws, wav)
    await peer.start()
    await peer.wait(limit=20)
    await asyncio.sleep(0.3)
    await peer.close()
    await ws.close()
    await asyncio.sleep(0.3)
    await client.app[JOURNAL].flush()
    await client.app[STORAGE].idle()

    [recording] = await rows(settings, interview_id)
    assert recording.path == f"interview-{interview_id}/candidate-000.opus"
    key = f"p2pi/{recording.path}"
    assert s3_server.keys() == [key]
    assert not (settings.recordings_dir / recording.path).exists()  # the spool is gone
    stored = s3_server.get(key)
    copy = tmp_path / "copy.opus"
    copy.write_bytes(stored)
    assert abs(probe_seconds(copy) - wav_seconds(wav)) < 0.5

    # Node B: its own disk, the same database; the recruiter's browser goes there.
    node_b = await make_client(replace(settings, data_dir=tmp_path / "node-b"))
    node_b.session.cookie_jar.update_cookies(
        {"p2pi_session": cookie_of(client)}, response_url=node_b.make_url("/")
    )
    url = f"/interviews/{interview_id}/recordings/{recording.id}"
    part = await node_b.get(url, headers={"Range": "bytes=100-299"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(stored)}"
    assert await part.read() == stored[100:300]
    tail = await node_b.get(url, headers={"Range": "bytes=-50"})
    assert tail.status == 206 and await tail.read() == stored[-50:]
    whole = await node_b.get(url)
    assert whole.status == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert await whole.read() == stored
    assert (await node_b.get(url, headers={"Range": f"bytes={len(stored)}-"})).status == 416
    head = await node_b.head(url)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(stored))
    assert await (await client.get(url)).read() == stored  # and on node A, from the bucket

    # Another recruiter sees nothing of it on either node.
    stranger = await make_client(replace(settings, data_dir=tmp_path / "node-c"))
    from tests.helpers import register

    await register(stranger, mailbox, "stranger@example.com")
    assert (await stranger.get(url)).status == 404

    token = await csrf_of(node_b, f"/interviews/{interview_id}/results")
    deleted = await node_b.post(f"/interviews/{interview_id}/delete", data={"csrf_token": token})
    assert deleted.status == 200 and str(deleted.url).endswith("/interviews")
    assert s3_server.keys() == []
    assert (await node_b.get(url)).status == 404


async def test_retention_purges_old_recordings_from_the_bucket(
    client, mailbox: Mailbox, settings: Settings, s3_server: S3Server
) -> None:
    from tests.helpers import create_interview_now, register

    await register(client, mailbox, "purge@example.com")
    interview_id, _ = await create_interview_now(client)
    storage = client.app[STORAGE]
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    for segment, age in ((0, 40), (1, 1)):
        path = storage.segment_path(interview_id, "candidate", segment)
        writer = OggOpusWriter(path, serial=segment)
        writer.write_gap(48000)
        writer.close()
        storage.segment_changed(path, closed=True)
        started = datetime.now(UTC) - timedelta(days=age)
        async with sessions.begin() as session:
            row = await start_segment(
                session, interview_id, "candidate", storage.relative(path), started
            )
            await update_segment(session, row.id, 1.0, started + timedelta(seconds=1))
    await storage.idle()
    prefix = f"p2pi/interview-{interview_id}/"
    assert s3_server.keys() == [f"{prefix}candidate-000.opus", f"{prefix}candidate-001.opus"]
    assert await purge_recordings(sessions, storage, days=30) == 1
    assert s3_server.keys() == [f"{prefix}candidate-001.opus"]
    async with sessions() as session:
        assert [r.segment for r in await session.scalars(select(Recording))] == [1]
    await engine.dispose()


async def test_a_spool_left_by_a_killed_node_is_uploaded_on_the_next_start(
    aiohttp_client, settings: Settings, s3_server: S3Server
) -> None:
    seeded = await _seed(
        settings.database_url, "spool@example.com", "a long pass", "python-backend"
    )
    spool, kept = settings.recordings_dir, f"interview-{seeded.interview_id}/candidate-002.opus"
    # What SIGKILL leaves: pages written up to the kill, no end-of-stream page, the segment's
    # row (the journal writes it as the segment opens), and a multipart upload nobody completes.
    crashed = spool / kept
    writer = OggOpusWriter(crashed, serial=3)
    for _ in range(4):
        writer.write_gap(48000)
        writer.flush()
    os.close(writer._fd)
    left = crashed.read_bytes()
    engine = make_engine(settings.database_url)
    began = datetime.now(UTC)
    async with make_sessionmaker(engine).begin() as session:
        await start_segment(session, seeded.interview_id, "candidate", kept, began)
        # The candidate came back on another node 10 s after this one began: the row's last
        # report (none here) is older than what the file holds, so the gap looks longer.
        after = f"interview-{seeded.interview_id}/candidate-003.opus"
        await start_segment(
            session, seeded.interview_id, "candidate", after, began + timedelta(seconds=10)
        )
    s3_server.client().create_multipart_upload(Bucket=s3_server.bucket, Key=f"p2pi/{kept}")
    # A segment of an interview deleted while the node was down (no row): not uploaded.
    gone = spool / "interview-999" / "candidate-000.opus"
    OggOpusWriter(gone, serial=5).close()
    # A segment another process on this spool folder is still recording (it holds the lock).
    live = spool / "interview-42" / "recruiter-000.opus"
    OggOpusWriter(live, serial=4).flush()
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        node = await aiohttp_client(create_app(settings))
        await node.app[STORAGE].idle()
        assert s3_server.keys() == [f"p2pi/{kept}"]
        assert s3_server.get(f"p2pi/{kept}") == left
        assert not crashed.exists() and not gone.exists() and live.exists()
        assert s3_server.unfinished_uploads() == []
        # The row now says what the file holds (4 s), and the next segment its true gap.
        async with make_sessionmaker(engine)() as session:
            rows = list(await session.scalars(select(Recording).order_by(Recording.segment)))
        assert [r.segment for r in rows] == [0, 1]
        assert rows[0].duration_s == 4.0 and rows[0].closed_at is not None
        assert rows[1].gap_before_s == pytest.approx(6.0, abs=0.01)
    finally:
        os.close(holder)
        await engine.dispose()


async def test_a_growing_segment_goes_up_in_parts_while_it_is_recorded(
    s3_server: S3Server, tmp_path: Path
) -> None:
    storage = storage_of(s3_server, tmp_path / "spool")
    await storage.start()
    path = storage.segment_path(7, "candidate", 0)
    data = os.urandom(2 * MIN_PART + 12345)
    with path.open("wb") as file:
        file.write(data[: MIN_PART + 10])
        file.flush()
        storage.segment_changed(path, closed=False)
        for _ in range(100):  # the first part goes up while the file is still open
            if s3_server.unfinished_uploads():
                break
            await asyncio.sleep(0.05)
        assert s3_server.unfinished_uploads() == ["p2pi/interview-7/candidate-000.opus"]
        assert s3_server.keys() == []
        file.write(data[MIN_PART + 10 :])
    storage.segment_changed(path, closed=True)
    await storage.idle()
    assert s3_server.get("p2pi/interview-7/candidate-000.opus") == data
    assert s3_server.unfinished_uploads() == [] and not path.exists()
    chunks = [c async for c in storage.read("interview-7/candidate-000.opus", MIN_PART - 5, 20)]
    assert b"".join(chunks) == data[MIN_PART - 5 : MIN_PART + 15]
    await storage.close()


async def test_storage_out_of_reach_answers_503_and_deletes_nothing(
    client, mailbox: Mailbox, settings: Settings, make_client, tmp_path: Path
) -> None:
    from tests.test_results import finished_interview

    if settings.database_url.startswith("postgresql"):
        pytest.skip("the database plays no part in this; the client's retries take seconds")
    # finished_interview leaves its file in node A's spool; node B looks in the bucket.
    interview_id = await finished_interview(client, mailbox, settings)
    away = replace(
        settings, data_dir=tmp_path / "away", s3_endpoint_url=f"http://127.0.0.1:{free_port()}"
    )
    node = await make_client(away)
    node.session.cookie_jar.update_cookies(
        {"p2pi_session": cookie_of(client)}, response_url=node.make_url("/")
    )
    exported = await (await node.get(f"/api/interviews/{interview_id}/result")).json()
    url = f"/interviews/{interview_id}/recordings/{exported['recordings'][0]['id']}"
    assert (await node.get(url)).status == 503
    token = await csrf_of(node, f"/interviews/{interview_id}/results")
    response = await node.post(f"/interviews/{interview_id}/delete", data={"csrf_token": token})
    assert response.status == 503
    assert "nothing was deleted" in await response.text()
    assert (await node.get(f"/interviews/{interview_id}/results")).status == 200


def test_recordings_url_is_checked() -> None:
    assert Settings.from_env({"RECORDINGS_URL": "s3://bucket/pre/fix"}).recordings_url
    assert S3Location.parse("s3://bucket/pre/fix/") == S3Location("bucket", "pre/fix/")
    for bad in ("http://bucket", "s3://", "s3://UPPER", "/var/recordings"):
        with pytest.raises(SettingsError, match="RECORDINGS_URL"):
            Settings.from_env({"RECORDINGS_URL": bad})
