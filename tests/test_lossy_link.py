"""An answer over a bad mobile link: the candidate (a real aiortc peer sending flite speech) sits
behind a link that loses 10 % of its packets each way (netem's `loss 10%`, emulated by
tests/wire.py where the kernel has no sch_netem); the server in its own namespace still records
the whole answer on an unbroken timeline (a lost frame is rebuilt from the next packet's FEC
copy where it has one, the rest filled with silence where it happened) and transcribes it.

Needs root (network namespaces).
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from rooms.bank import bundled_banks
from rooms.models import Answer
from tests import netns
from tests.netns import Lab
from tests.network_calls import answer_question_1, prepare_database, start_service, wait_for_row
from tests.rtc import audio_kept, decode_to_pcm, flite, wav_seconds
from tests.seed import seed_interview
from tests.wer import wer
from tests.wire import Profile

_SKIP = netns.skip_reason()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

FIRST = next(b for b in bundled_banks() if b.id == "python-backend").questions[0]
SPOKEN = " ".join(FIRST.expected_answer.split(". ")[:2])
LEAD_IN_S = 3.0
"""Silence before the answer, as a person pauses after the call connects: at 10 % loss the
DTLS handshake can lose a flight and take a retransmission (1-2 s) to finish on the server's
side, and what is sent before that is dropped (seen once in CI: the first 2 s of a 15.4 s
answer). The test is about what happens to the answer, not to the first second of the call."""


def with_lead_in(wav: Path, seconds: float) -> Path:
    """`wav` with `seconds` of silence before it."""
    padded = wav.with_name(f"padded-{wav.name}")
    with wave.open(str(wav), "rb") as source, wave.open(str(padded), "wb") as out:
        out.setparams(source.getparams())
        silence = int(source.getframerate() * seconds) * source.getsampwidth()
        out.writeframes(b"\0" * silence * source.getnchannels())
        out.writeframes(source.readframes(source.getnframes()))
    return padded


@pytest.fixture
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        made.close()


def test_an_answer_over_a_link_that_loses_ten_percent(lab: Lab, tmp_path: Path) -> None:
    profile = Profile(loss=10)
    server = lab.add_host("srv")
    cand = lab.add_host("cand", wire=lab.emulated(profile, tmp_path / "wire.log"))
    database = prepare_database(tmp_path / "db")
    seeded = seed_interview(database)
    service = start_service(lab, server, database, tmp_path)
    speech = flite(tmp_path / "answer.wav", SPOKEN)
    spoken_s = wav_seconds(speech)
    wav = with_lead_in(speech, LEAD_IN_S)
    sent_s = wav_seconds(wav)

    answer_question_1(server, cand, service, seeded, wav)
    answer = wait_for_row(
        database, Answer, seeded.interview_id, 90, lambda a: a.position == 1 and a.engine
    )

    [segment] = service.recordings(seeded.interview_id, "candidate")
    kept_s, timeline_s = audio_kept(segment)
    decoded_s = len(decode_to_pcm(segment)) / 2 / 16_000
    error = wer(SPOKEN, answer.text)
    print(
        f"\n{profile.describe()}: {kept_s:.1f} s of {timeline_s:.1f} s kept "
        f"({100 * kept_s / timeline_s:.1f} %), the answer was {spoken_s:.1f} s; WER {error:.2f}"
    )
    print(f"transcript: {answer.text}")
    # The timeline is whole: the recording holds the whole answer (lost packets are filled
    # where they were lost, not skipped; at most the lead-in's start is missing), and ffmpeg
    # plays all of it.
    assert spoken_s - 1.0 <= timeline_s <= sent_s + 3.0, (timeline_s, spoken_s, sent_s)
    assert abs(decoded_s - timeline_s) < 0.5
    # A tenth is lost on the way, and most of it is rebuilt from the FEC copy in the packet after
    # a lost one (the candidate encodes as a browser does under loss): without that, about 90 %.
    assert 0.94 <= kept_s / timeline_s <= 1.0, (kept_s, timeline_s)
    assert error < 0.6, answer.text
