"""An Ogg Opus file writer that stores Opus packets as they arrived over RTP, without re-encoding.

Why Ogg Opus: the browser already sends Opus, so the server copies each packet into the file
(a few microseconds per packet) instead of decoding and re-encoding, the file is about 10x
smaller than FLAC, every player and ffmpeg read it, and Ogg's small pages mean a file cut off
by a crash is still playable up to its last complete page (written at least once a second).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from telemetry.metrics import RECORDED_BYTES

SAMPLE_RATE = 48_000
# Lost or missing audio is filled with TOC-only packets (a zero-length frame): decoders play
# them as concealment/silence, so the file's timeline stays equal to the wall-clock timeline.
_FILLERS = ((960, 0xF8), (480, 0xF0), (240, 0xE8), (120, 0xE0))  # CELT FB 20/10/5/2.5 ms, c=0
_CELT_MS = (2.5, 5.0, 10.0, 20.0)
_SILK_MS = (10.0, 20.0, 40.0, 60.0)
_HYBRID_MS = (10.0, 20.0)


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, no final XOR)."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ byte) & 0xFF]
    return crc


def packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 section 3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        ms = _SILK_MS[config % 4]
    elif config < 16:
        ms = _HYBRID_MS[config % 2]
    else:
        ms = _CELT_MS[config % 4]
    code = toc & 3
    frames = (
        1 if code == 0 else 2 if code in (1, 2) else (packet[1] & 0x3F if len(packet) > 1 else 0)
    )
    return int(ms * 48) * frames


def filler_packets(samples: int) -> list[bytes]:
    """TOC-only packets covering `samples` (rounded down to 2.5 ms)."""
    packets = []
    for size, toc in _FILLERS:
        count, samples = divmod(samples, size)
        packets.extend([bytes([toc])] * count)
    return packets


def _page(serial: int, sequence: int, granule: int, packets: list[bytes], flags: int) -> bytes:
    lacing = bytearray()
    for packet in packets:
        full, rest = divmod(len(packet), 255)
        lacing.extend(b"\xff" * full)
        lacing.append(rest)
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = bytearray(header + bytes(lacing) + b"".join(packets))
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return bytes(page)


class OggOpusWriter:
    """Appends Opus packets to an Ogg file, one page per `page_ms` of audio, flushed to the OS.

    A page is written with os.write as soon as it is full, so a killed process loses at most
    the packets of the page being built (`page_ms`, 1 s by default).
    """

    def __init__(
        self, path: Path, serial: int, channels: int = 1, page_ms: int = 1000, title: str = ""
    ) -> None:
        self.path = path
        self.serial = serial & 0xFFFFFFFF
        self.sequence = 0
        self.granule = 0
        self.page_samples = page_ms * 48
        self._packets: list[bytes] = []
        self._segments = 0
        self._pending_samples = 0
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        head = struct.pack("<8sBBHIhB", b"OpusHead", 1, channels, 0, SAMPLE_RATE, 0, 0)
        vendor = b"p2p-interview"
        comments = [f"TITLE={title}".encode()] if title else []
        tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor
        tags += struct.pack("<I", len(comments)) + b"".join(
            struct.pack("<I", len(c)) + c for c in comments
        )
        self._write_page([head], granule=0, flags=0x02)
        self._write_page([tags], granule=0, flags=0)

    @property
    def samples(self) -> int:
        """Audio written or pending, in 48 kHz samples."""
        return self.granule + self._pending_samples

    def write(self, packet: bytes) -> None:
        """Add one Opus packet (as carried in RTP)."""
        segments = len(packet) // 255 + 1
        if self._segments + segments > 255:
            self.flush()
        self._packets.append(packet)
        self._segments += segments
        self._pending_samples += packet_samples(packet)
        if self._pending_samples >= self.page_samples:
            self.flush()

    def write_gap(self, samples: int) -> None:
        """Fill `samples` of missing audio so later packets stay at their true time."""
        for packet in filler_packets(samples):
            self.write(packet)

    def flush(self) -> None:
        """Write the pending packets as one page."""
        if not self._packets:
            return
        self.granule += self._pending_samples
        self._write_page(self._packets, granule=self.granule, flags=0)
        self._packets, self._segments, self._pending_samples = [], 0, 0

    def close(self) -> None:
        """Write what is pending and an end-of-stream page."""
        if self._fd < 0:
            return
        self.granule += self._pending_samples
        self._write_page(self._packets, granule=self.granule, flags=0x04)
        self._packets, self._segments, self._pending_samples = [], 0, 0
        os.close(self._fd)
        self._fd = -1

    def _write_page(self, packets: list[bytes], granule: int, flags: int) -> None:
        page = _page(self.serial, self.sequence, granule, packets, flags)
        os.write(self._fd, page)
        RECORDED_BYTES.inc(len(page))
        self.sequence += 1


def written_seconds(path: Path, tail: int = 1 << 16) -> float:
    """The audio a segment file holds up to its last complete page (a file a crash cut off
    included): the granule position of its last page, in seconds."""
    with path.open("rb") as file:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(max(0, size - tail))
        data = file.read()
    at = data.rfind(b"OggS")
    while at >= 0:
        if at + 27 <= len(data):
            count = data[at + 26]
            end = at + 27 + count + sum(data[at + 27 : at + 27 + count])
            if end <= len(data):  # a whole page
                (granule,) = struct.unpack_from("<q", data, at + 6)
                return max(0, granule) / SAMPLE_RATE
        at = data.rfind(b"OggS", 0, at)
    return 0.0
