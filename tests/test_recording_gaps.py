"""Audio lost on the way: the recorder keeps the recording in time (silence where packets never
came), counts what was lost, and marks the gaps worth seeing; the results page shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from media.oggopus import filler_packets
from media.recorder import ParticipantRecorder, Segment
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Recording
from rooms.recordings import update_segment
from tests.conftest import Mailbox
from tests.test_results import finished_interview

FRAME = filler_packets(960)[0]  # a 20 ms Opus packet (TOC only)
assert len(filler_packets(960)) == 1


def record(tmp_path: Path, lost: set[int], packets: int = 400) -> Segment:
    """`packets` 20 ms packets of which those numbered in `lost` never arrive."""
    seen: list[Segment] = []
    recorder = ParticipantRecorder(1, "candidate", lambda i: tmp_path / f"c-{i}.opus", seen.append)
    now = datetime.now(UTC).timestamp()
    for n in range(packets):
        if n not in lost:
            recorder.on_packet(1000 + n * 960, FRAME, now + n * 0.02)
    recorder.end_segment()
    return seen[-1]


def test_short_losses_are_counted_and_long_ones_marked(tmp_path: Path) -> None:
    isolated = {50, 120, 260}  # 20 ms each: concealed, counted, not marked
    burst = set(range(150, 170))  # 400 ms at 3.0 s
    # Losses 100 ms long, 200 ms apart, from 6.0 s: one stretch of bad audio, 6.0 to 6.7 s
    stutter = {n for start in (300, 315, 330) for n in range(start, start + 5)}
    segment = record(tmp_path, isolated | burst | stutter)
    assert segment.closed and abs(segment.duration_s - 8.0) < 0.01  # still in time
    assert abs(segment.lost_s - 0.02 * len(isolated | burst | stutter)) < 0.001
    assert segment.gaps == [(3.0, 0.4), (6.0, 0.7)]


def test_a_clean_recording_has_no_gaps(tmp_path: Path) -> None:
    segment = record(tmp_path, set())
    assert segment.lost_s == 0 and segment.gaps == []


async def test_the_results_page_marks_the_gaps(client, mailbox: Mailbox, settings) -> None:
    interview_id = await finished_interview(client, mailbox, settings)
    page = await (await client.get(f"/interviews/{interview_id}/results")).text()
    assert "gap-timeline" not in page and "Lost on the way" not in page
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine).begin() as session:
        recording = (await session.execute(Recording.__table__.select())).first()
        assert recording is not None
        await update_segment(session, recording.id, 3.0, None, 0.6, [(1.5, 0.6)])
    await engine.dispose()
    page = await (await client.get(f"/interviews/{interview_id}/results")).text()
    assert 'class="gap" data-left="50.000" data-width="20.000"' in page
    assert "Lost on the way: 0.6 s of audio (20.0% of the recording)" in page
    exported = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    assert exported["recordings"][0]["lost_s"] == 0.6
    assert exported["recordings"][0]["gaps"][0]["at"] == 1.5
