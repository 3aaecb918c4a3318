"""A lost audio frame rebuilt from the FEC copy that the next packet carries (media/opus_fec.py):
speech encoded as a browser does under loss (in-band FEC on), packets dropped on the way."""

from __future__ import annotations

import array
import ctypes
import random
import statistics
import subprocess
from pathlib import Path

import av
import pytest

from media import opus_fec
from media.oggopus import filler_packets
from media.pcm import PcmChunk
from media.recorder import ParticipantRecorder, Segment
from tests.rtc import audio_kept, flite, opus_packets

SAID = "A hash map keeps its keys in buckets chosen by the key's hash, so a lookup is quick."
_SET_INBAND_FEC, _SET_PACKET_LOSS_PERC, _SET_BITRATE = 4012, 4014, 4002


def browser_packets(wav: Path, fec: bool) -> tuple[list[bytes], array.array[int]]:
    """20 ms Opus packets of `wav` (48 kHz mono), encoded the way a browser's voice encoder is
    set up once the receiver reports loss (32 kbit/s, FEC on, 10 % expected loss); and the
    samples they were made from."""
    raw = subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(wav),
            "-ar",
            "48000",
            "-ac",
            "1",
            "-f",
            "s16le",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    samples = array.array("h", raw)
    lib = opus_fec.libopus()
    error = ctypes.c_int()
    encoder = ctypes.c_void_p(lib.opus_encoder_create(48_000, 1, 2048, ctypes.byref(error)))
    assert error.value == 0
    for request, value in (
        (_SET_BITRATE, 32_000),
        (_SET_INBAND_FEC, int(fec)),
        (_SET_PACKET_LOSS_PERC, 10 if fec else 0),
    ):
        lib.opus_encoder_ctl(encoder, ctypes.c_int(request), ctypes.c_int32(value))
    packets = []
    out = ctypes.create_string_buffer(1500)
    for at in range(0, len(samples) - 960, 960):
        frame = (ctypes.c_int16 * 960)(*samples[at : at + 960])
        size = lib.opus_encode(encoder, frame, 960, out, 1500)
        packets.append(out.raw[:size])
    lib.opus_encoder_destroy(encoder)
    return packets, samples


def record(
    tmp_path: Path, packets: list[bytes], lost: set[int]
) -> tuple[ParticipantRecorder, Segment, list[PcmChunk]]:
    seen: list[Segment] = []
    pcm: list[PcmChunk] = []

    class Sink:
        def push(self, chunk: PcmChunk) -> None:
            pcm.append(chunk)

    recorder = ParticipantRecorder(
        1, "candidate", lambda i: tmp_path / f"c-{i}.opus", seen.append, pcm_sink=Sink()
    )
    for n, packet in enumerate(packets):
        if n not in lost:
            recorder.on_packet(5000 + n * 960, packet, 1_000_000.0 + n * 0.02)
    recorder.end_segment()
    return recorder, seen[-1], pcm


def frame_levels(path: Path) -> list[float]:
    """RMS of each 20 ms of a recorded file, decoded as any player would."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        decoded = array.array("h")
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                decoded.frombytes(bytes(out.planes[0])[: out.samples * 2])
    return [level(decoded[at : at + 960]) for at in range(0, len(decoded) - 960 + 1, 960)]


def level(samples: array.array[int]) -> float:
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if opus_fec.libopus() is None:
        pytest.fail("libopus is missing: install libopus0 (ffmpeg brings it)")
    return flite(tmp_path_factory.mktemp("fec") / "said.wav", SAID)


def test_lost_frames_are_rebuilt_from_the_next_packets_fec_copy(
    tmp_path: Path, speech: Path
) -> None:
    packets, samples = browser_packets(speech, fec=True)
    assert sum(map(opus_fec.has_lbrr, packets)) > len(packets) / 2  # speech carries copies
    chance = random.Random(7)
    # 10 % of packets lost one at a time (never two in a row, never the first or last)
    lost = {n for n in range(2, len(packets) - 2, 3) if chance.random() < 0.3}
    recorder, segment, pcm = record(tmp_path, packets, lost)
    covered = {n for n in lost if opus_fec.has_lbrr(packets[n + 1])}
    assert len(covered) >= len(lost) / 2
    assert recorder.rebuilt_samples == 960 * len(covered)
    assert recorder.lost_samples == 960 * (len(lost) - len(covered))
    assert abs(segment.lost_s - 0.02 * (len(lost) - len(covered))) < 0.001
    real, total = audio_kept(segment.path)
    assert total == pytest.approx(len(packets) * 0.02)
    assert real == pytest.approx((len(packets) - len(lost) + len(covered)) * 0.02)
    # The transcriber was given the rebuilt audio too, and in time: 16 kHz, 320 samples a frame
    # (less the resampler's few samples of delay).
    assert abs(sum(len(c.samples) for c in pcm) - 2 * 320 * len(packets)) < 2 * 320
    # What a player hears in the rebuilt frames is the speech said there, not silence: about as
    # loud as the original for most (an FEC copy is coarse, weakest where a word starts).
    heard = frame_levels(segment.path)
    original = [level(samples[n * 960 : n * 960 + 960]) for n in range(len(packets))]
    loud = [n for n in covered if original[n] > 1000]
    assert len(loud) >= 5
    assert statistics.median(heard[n] / original[n] for n in loud) > 0.5
    assert all(heard[n] > original[n] / 20 for n in loud)
    silent = [n for n in lost - covered if original[n] > 1000]
    assert all(heard[n] < original[n] / 20 for n in silent)


def test_without_fec_a_lost_frame_stays_silence(tmp_path: Path, speech: Path) -> None:
    packets, _ = browser_packets(speech, fec=False)
    assert not any(map(opus_fec.has_lbrr, packets))
    lost = set(range(10, len(packets) - 2, 10))
    recorder, segment, _ = record(tmp_path, packets, lost)
    assert recorder.rebuilt_samples == 0 and recorder.lost_samples == 960 * len(lost)
    fillers = [p for p in opus_packets(segment.path) if len(p) == 1]
    assert len(fillers) == len(lost)


def test_a_longer_loss_rebuilds_only_the_frame_before_the_packet(
    tmp_path: Path, speech: Path
) -> None:
    packets, _ = browser_packets(speech, fec=True)
    start = next(n for n in range(20, len(packets)) if opus_fec.has_lbrr(packets[n + 3]))
    recorder, segment, _ = record(tmp_path, packets, {start, start + 1, start + 2})
    assert recorder.rebuilt_samples == 960 and recorder.lost_samples == 2 * 960
    kinds = [len(p) > 1 for p in opus_packets(segment.path)][start : start + 3]
    assert kinds == [False, False, True]  # silence first, the rebuilt frame last, in time


def test_packets_without_a_copy_are_not_mistaken_for_ones_with_one() -> None:
    assert not opus_fec.has_lbrr(b"")
    assert not opus_fec.has_lbrr(filler_packets(960)[0])  # TOC only
    assert not opus_fec.has_lbrr(bytes([0xFC, 0xFF, 0xFF]))  # CELT-only (config 31)
    assert not opus_fec.has_lbrr(bytes([0x4B, 0x01]))  # SILK, code 3: not parsed
    assert opus_fec.has_lbrr(bytes([0x48, 0x40]))  # SILK WB 20 ms mono: VAD 0, LBRR 1
    assert not opus_fec.has_lbrr(bytes([0x48, 0x80]))  # VAD 1, LBRR 0
    assert opus_fec.has_lbrr(bytes([0x4C, 0x10]))  # stereo: the side channel's LBRR flag
    assert opus_fec.frame_samples(0x48) == 960 and opus_fec.frame_samples(0x50) == 1920
