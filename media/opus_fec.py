"""A lost Opus frame rebuilt from the in-band FEC copy that the next packet carries.

A browser told `useinbandfec=1` (the server's answer says so) that sees loss in the receiver
reports adds to each SILK or hybrid packet a low-bitrate copy of the frame before it (LBRR,
RFC 6716 section 4.2.4). When a packet is missing and the next one arrives with that copy, the
recorder asks libopus to decode the copy (`decode_fec`) and stores it re-encoded as an ordinary
Opus packet, so the file stays plain Ogg Opus and its player needs nothing special.

PyAV does not expose `decode_fec`, so libopus is called through ctypes: the system's
libopus.so.0 (Debian's libopus0, which ffmpeg and browsers bring) or else the copy inside PyAV's
wheel. Without either, a lost frame stays silence as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RATE = 48_000
_VOIP = 2048
_OK = 0
_SET_BITRATE = 4002
_RESET_STATE = 4028
_BITRATE = 32_000
_MAX_PACKET = 1500
_MS = {0: 10, 1: 20, 2: 40, 3: 60}  # SILK-only configs 0-11, by config % 4
_CELT_FRAME = (120, 240, 480, 960)


def frame_samples(toc: int) -> int:
    """Samples (48 kHz) of each frame of a packet with this TOC byte."""
    config = toc >> 3
    if config < 12:
        return _MS[config % 4] * 48
    if config < 16:
        return (10, 20)[config % 2] * 48
    return _CELT_FRAME[config % 4]


def _first_frame(packet: bytes) -> bytes:
    """The first frame's bytes of a packet with one or two frames; b"" for code 3 (RFC 6716
    section 3.2), which browsers do not send for speech."""
    code = packet[0] & 3
    if code in (0, 1):
        return packet[1:]
    if code == 2 and len(packet) >= 2:
        size, start = packet[1], 2
        if size >= 252:
            if len(packet) < 3:
                return b""
            size, start = size + 4 * packet[2], 3
        return packet[start : start + size]
    return b""


def has_lbrr(packet: bytes) -> bool:
    """Whether the packet carries an FEC copy of the frame before it.

    The SILK layer starts with each channel's voice-activity flags (one per 20 ms SILK frame)
    and then its LBRR flag, coded at probability 1/2 each, so they are the first bits of the
    first frame. CELT-only packets never carry one.
    """
    if len(packet) < 2:
        return False
    toc = packet[0]
    if toc >> 3 >= 16:
        return False
    frame = _first_frame(packet)
    if not frame:
        return False
    silk_frames = max(1, frame_samples(toc) // 960)
    lbrr = (frame[0] >> (7 - silk_frames)) & 1
    if toc & 0x4:  # stereo: the side channel's flags follow the mid channel's
        lbrr |= (frame[0] >> (6 - 2 * silk_frames)) & 1
    return bool(lbrr)


_INT, _I32, _PTR = ctypes.c_int, ctypes.c_int32, ctypes.c_void_p
_PCM, _BYTES, _ERROR = ctypes.POINTER(ctypes.c_int16), ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    # name: (result, arguments), as in opus.h
    "opus_decoder_create": (_PTR, [_I32, _INT, _ERROR]),
    "opus_decode": (_INT, [_PTR, _BYTES, _I32, _PCM, _INT, _INT]),
    "opus_decoder_destroy": (None, [_PTR]),
    "opus_encoder_create": (_PTR, [_I32, _INT, _INT, _ERROR]),
    "opus_encode": (_I32, [_PTR, _PCM, _INT, _BYTES, _I32]),
    "opus_encoder_destroy": (None, [_PTR]),
}


def _load() -> Any:
    names = [ctypes.util.find_library("opus")]
    try:
        import av

        names += [
            str(p)
            for p in sorted((Path(av.__file__).parent.parent / "av.libs").glob("libopus*.so*"))
        ]
    except ImportError:
        pass
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        for function, (restype, argtypes) in _SIGNATURES.items():
            getattr(lib, function).restype = restype
            getattr(lib, function).argtypes = argtypes
        return lib
    return None


_LIB: Any = None
_LOOKED = False


def libopus() -> Any:
    """libopus through ctypes, or None when neither copy loads (looked up once)."""
    global _LIB, _LOOKED
    if not _LOOKED:
        _LOOKED = True
        _LIB = _load()
        if _LIB is None:
            log.warning("libopus not found: lost audio frames are not rebuilt from FEC")
    return _LIB


class FecRepair:
    """One participant's decoder and encoder for rebuilding lost frames (mono, 48 kHz)."""

    def __init__(self) -> None:
        self._lib = libopus()
        self._decoder: int | None = None
        self._encoder: int | None = None
        if self._lib is None:
            return
        error = ctypes.c_int()
        self._decoder = self._lib.opus_decoder_create(RATE, 1, ctypes.byref(error))
        if error.value != _OK:
            self._decoder = None
            return
        self._encoder = self._lib.opus_encoder_create(RATE, 1, _VOIP, ctypes.byref(error))
        if error.value != _OK:
            self._encoder = None
            return
        self._lib.opus_encoder_ctl(
            ctypes.c_void_p(self._encoder), ctypes.c_int(_SET_BITRATE), ctypes.c_int32(_BITRATE)
        )

    @property
    def available(self) -> bool:
        return self._decoder is not None and self._encoder is not None

    def rebuild(self, previous: bytes | None, current: bytes) -> bytes | None:
        """An Opus packet for the frame just before `current` (`frame_samples(current[0])`
        samples), decoded from the FEC copy `current` carries; None when it carries none."""
        if not self.available or not has_lbrr(current):
            return None
        frame = frame_samples(current[0])
        lib = self._lib
        lib.opus_decoder_ctl(ctypes.c_void_p(self._decoder), ctypes.c_int(_RESET_STATE))
        lib.opus_encoder_ctl(ctypes.c_void_p(self._encoder), ctypes.c_int(_RESET_STATE))
        if previous and len(previous) > 1:
            # Decoding the packet before the loss first gives the decoder the state the FEC
            # copy is predicted from, and encoding it gives the encoder its look-ahead.
            warm = self._decode(previous, 5760, fec=False)
            if warm is not None and len(warm) in (120, 240, 480, 960, 1920, 2880):
                self._encode(warm)
        pcm = self._decode(current, frame, fec=True)
        if pcm is None or len(pcm) != frame:
            return None
        return self._encode(pcm)

    def _decode(self, packet: bytes, frame: int, *, fec: bool) -> Any:
        pcm = (ctypes.c_int16 * frame)()
        count = self._lib.opus_decode(
            ctypes.c_void_p(self._decoder), packet, len(packet), pcm, frame, int(fec)
        )
        return pcm[:count] if count > 0 else None

    def _encode(self, samples: list[int]) -> bytes | None:
        pcm = (ctypes.c_int16 * len(samples))(*samples)
        out = ctypes.create_string_buffer(_MAX_PACKET)
        size = self._lib.opus_encode(
            ctypes.c_void_p(self._encoder), pcm, len(samples), out, _MAX_PACKET
        )
        return out.raw[:size] if size > 1 else None

    def close(self) -> None:
        if self._lib is None:
            return
        if self._decoder is not None:
            self._lib.opus_decoder_destroy(self._decoder)
        if self._encoder is not None:
            self._lib.opus_encoder_destroy(self._encoder)
        self._decoder = self._encoder = None

    def __del__(self) -> None:
        self.close()
