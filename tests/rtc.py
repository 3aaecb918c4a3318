"""A real aiortc client peer that sends a WAV file to the server's recorder over signaling."""

from __future__ import annotations

import asyncio
import fractions
import json
import re
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.contrib.media import MediaPlayer
from av import AudioResampler, CodecContext


def espeak(path: Path, text: str, voice: str = "en-us", speed: int = 150) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return path


def flite(path: Path, text: str, voice: str = "slt") -> Path:
    """Speech by Debian's flite: more natural than espeak-ng (Whisper hears it better)."""
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    return path


def festival_ru(path: Path, text: str) -> Path:
    """Russian speech by Debian's festival with festvox-ru (voice msu_ru_nsh_clunits, 16 kHz).
    Its letter-to-sound rules give up (writing an empty file) on a dash, a symbol or leading
    punctuation: dashes are read as the pauses they stand for, symbols left out."""
    source = path.with_suffix(".txt")
    said = re.sub(r"\s+[—–-]+\s+|^\s*[—–-]+\s*", ", ", text)
    said = re.sub(r"[^\w\s.,!?;:()'-]", " ", re.sub(r"(\d)[.,](\d)", r"\1 \2", said))

    source.write_text(" ".join(said.split()).lstrip(" ,.;:!?-"), encoding="utf-8")
    subprocess.run(
        ["text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", str(source), "-o", str(path)],
        check=True,
        capture_output=True,
    )
    if path.stat().st_size == 0:
        raise RuntimeError(f"festival wrote no speech for {text[:60]!r}")
    return path


def wav_seconds(path: Path) -> float:

    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def decode_to_pcm(path: Path, rate: int = 16_000) -> bytes:
    """The file decoded by ffmpeg to mono s16 PCM (also proves it is playable)."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-",
        ],
        capture_output=True,
        check=True,
    )
    assert result.stderr == b"", result.stderr
    return result.stdout


def probe_seconds(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip())


def opus_packets(path: Path) -> Iterator[bytes]:
    """The Opus packets of a recorded segment (Ogg Opus), headers left out."""
    data = path.read_bytes()
    packet = b""
    at = 0
    while at + 27 <= len(data) and data[at : at + 4] == b"OggS":
        count = data[at + 26]
        lacing = data[at + 27 : at + 27 + count]
        at += 27 + count
        for size in lacing:
            packet += data[at : at + size]
            at += size
            if size < 255:
                if not packet.startswith((b"OpusHead", b"OpusTags")):
                    yield packet
                packet = b""


def audio_kept(path: Path) -> tuple[float, float]:
    """(seconds of audio that arrived, seconds on the file's timeline) of a recorded segment:
    the recorder fills what was lost with TOC-only packets, so the timeline stays whole and the
    gaps are where those are (a frame rebuilt from FEC counts as arrived)."""
    from media.oggopus import packet_samples

    real = total = 0
    for packet in opus_packets(path):
        samples = packet_samples(packet)
        total += samples
        if len(packet) > 1:
            real += samples
    return real / 48_000, total / 48_000


def rms(pcm: bytes) -> float:
    import array

    samples = array.array("h", pcm)
    if not samples:
        return 0.0
    return (sum(s * s for s in samples) / len(samples)) ** 0.5


class BrowserVoiceEncoder(OpusEncoder):
    """Opus encoded as a browser's voice encoder sends it once the receiver reports loss: mono,
    32 kbit/s, the VoIP mode, in-band FEC on with 10 % expected loss (aiortc's own encoder sends
    96 kbit/s stereo music mode, which never carries FEC)."""

    def __init__(self) -> None:
        super().__init__()
        self.codec = CodecContext.create("libopus", "w")
        self.codec.bit_rate = 32_000
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.options = {"application": "voip", "fec": "1", "packet_loss": "10"}
        self.codec.sample_rate = 48_000
        self.codec.time_base = fractions.Fraction(1, 48_000)
        self.resampler = AudioResampler(format="s16", layout="mono", rate=48_000, frame_size=960)


class SpeakingPeer:
    """Joins the room over a WebSocket and streams `wav` to the server in real time
    (`browser_voice`: encoded as a browser would, see BrowserVoiceEncoder)."""

    def __init__(  # type: ignore[no-untyped-def]
        self,
        ws,
        wav: Path,
        configuration: RTCConfiguration | None = None,
        browser_voice: bool = False,
    ) -> None:
        self.ws = ws
        self.wav = wav
        self.pc = RTCPeerConnection(configuration or RTCConfiguration(iceServers=[]))
        self.player = MediaPlayer(str(wav))
        self.finished = asyncio.Event()
        self.browser_voice = browser_voice

    async def start(self) -> None:
        track = self.player.audio
        sender = self.pc.addTrack(track)
        if self.browser_voice:
            # aiortc 1.x makes its encoder on the first frame unless one is there already.
            sender._RTCRtpSender__encoder = BrowserVoiceEncoder()

        @track.on("ended")
        def ended() -> None:
            self.finished.set()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.ws.send_json({"type": "media-offer", "sdp": self.pc.localDescription.sdp})
        while True:
            message = json.loads((await self.ws.receive(timeout=10)).data)
            if message["type"] == "media-answer":
                break
            if message["type"] == "error":
                raise RuntimeError(message)
        await self.pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))

    async def wait(self, limit: float) -> None:
        await asyncio.wait_for(self.finished.wait(), limit)

    async def close(self) -> None:
        await self.pc.close()
