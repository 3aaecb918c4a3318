"""A mutation fuzzer for the signaling protocol, seeded with captured traffic.

Each generated frame starts from a real message (a join, an aiortc offer with its candidates,
an ICE candidate, a presence the server sent...) and goes through one or more mutations: kept
valid, truncated, type-confused, retyped, oversized, nested deep, sprinkled with awkward
Unicode, or its SDP and ICE fields mangled. `random.Random(seed)` makes a run reproducible.
"""

from __future__ import annotations

import copy
import json
import random
import string
from collections.abc import Callable, Iterator
from typing import Any

TYPES = [
    "join",
    "ready",
    "offer",
    "answer",
    "ice",
    "restart",
    "ping",
    "media-offer",
    "joined",
    "presence",
    "error",
    "pong",
    "event",
    "media-answer",
    "code-sync",
    "code-update",
    "code-cursor",
    "code-run",
    "code-tests",
    "",
    "JOIN",
    "offer ",
    "ping\u0000",
]
AWKWARD = [
    "\u0000",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\uff45",
    "\U0001f600",
    "\u0301",
    "\x7f",
    "\u2028",
    "é",
    "\\",
    '"',
    "</script>",
    "\r\n",
    "%00",
    "١",
    "²",
]
NUMBERS: list[Any] = [0, -1, 1, 2**31 - 1, 2**31, 2**63, 2**64 + 1, 10**30, 1.5, -0.0, 1e308]
SDP_LINES = [
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "m=audio 0 RTP/AVP 0",
    "a=rtpmap:111 speex/48000/2",
    "a=candidate:1 1 udp 2130706431 10.0.0.1 6379 typ host",
    "a=candidate:2 1 udp 2130706431 169.254.169.254 80 typ host",
    "a=candidate:3 1 udp 1 abcd.local 9 typ host",
    "a=candidate:4 1 tcp 1 127.0.0.1 5432 typ host tcptype passive",
    "a=candidate:5 99999 udp -1 999.1.1.1 99999 typ x",
    "a=fingerprint:sha-256 00",
    "a=setup:holdconn",
    "a=ice-ufrag:",
    "a=group:BUNDLE 0 1 2 3 4 5 6 7 8 9",
    "c=IN IP6 ::",
    "a=ssrc:4294967296 cname:x",
]


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice(NUMBERS)
    if kind == 3:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(20)))
    if kind == 4:
        return rng.choice(AWKWARD) * rng.randrange(1, 4)
    if kind == 5:
        return "x" * rng.choice([0, 1, 64, 65, 129, 257, 2049, 5000])
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        keys = ["type", "sdp", "to", "x", "update", "state", "awareness", "tests", "failing"]
        return {rng.choice(keys): _random_json(rng, depth + 1)}
    return {}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))


def _set(value: dict[str, Any], path: tuple[Any, ...], new: Any) -> None:
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for index in range(depth):
        value = [value] if index % 2 else {"a": value}
    return value


def mutate_sdp(rng: random.Random, sdp: str) -> str:
    lines = sdp.split("\r\n")
    choice = rng.randrange(9)
    if choice == 0 and lines:
        del lines[rng.randrange(len(lines))]
    elif choice == 1 and lines:
        lines.insert(rng.randrange(len(lines)), rng.choice(lines))
    elif choice == 2:
        rng.shuffle(lines)
    elif choice == 3:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(SDP_LINES))
    elif choice == 4:
        head, _, body = sdp.partition("m=")
        return head + ("m=" + body) * rng.choice([2, 10, 100])
    elif choice == 5:
        return sdp.replace("opus", rng.choice(["OPUS", "opus2", "", "speex"]))
    elif choice == 6:
        return sdp.replace("\r\n", "\n")
    elif choice == 7:
        return sdp.replace("m=audio", "m=video")
    else:
        return sdp[: rng.randrange(len(sdp) + 1)]
    return "\r\n".join(lines)


def mutate_candidate(rng: random.Random, candidate: dict[str, Any]) -> Any:
    choice = rng.randrange(7)
    mutated = dict(candidate)
    if choice == 0:
        mutated["candidate"] = rng.choice(SDP_LINES).removeprefix("a=")
    elif choice == 1:
        mutated["sdpMLineIndex"] = rng.choice([-1, 65, 2**64, "0", None, 0.5])
    elif choice == 2:
        mutated["sdpMid"] = rng.choice(["", "x" * 65, None, 0, "\u0000"])
    elif choice == 3:
        mutated["usernameFragment"] = "u" * rng.choice([0, 256, 257])
    elif choice == 4:
        mutated["candidate"] = "c" * rng.choice([0, 2048, 2049])
    elif choice == 5:
        mutated["extra"] = 1
    else:
        return None
    return mutated


class Mutator:
    """Frames for the signaling WebSocket: `frame()` gives the next one, as text."""

    def __init__(self, seeds: list[dict[str, Any]], seed: int = 13) -> None:
        self.seeds = seeds
        self.rng = random.Random(seed)
        self.mutations: list[Callable[[dict[str, Any]], Any]] = [
            self.keep,
            self.type_confused,
            self.retyped,
            self.field_dropped,
            self.field_added,
            self.nested_field,
            self.unicode,
            self.sdp,
            self.ice,
            self.numbers,
            self.oversized,
        ]

    def frame(self) -> str:
        rng = self.rng
        message = copy.deepcopy(rng.choice(self.seeds))
        choice = rng.random()
        if choice < 0.05:
            return "[" * rng.choice([33, 1000, 30_000, 65_000])  # raw deep nesting
        if choice < 0.08:
            return rng.choice(['{"type":"ping"', "{", "", "null", "[]", '"ping"', "1e999", "NaN"])
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            message = rng.choice(self.mutations)(message) if isinstance(message, dict) else message
        text = json.dumps(message, ensure_ascii=rng.random() < 0.7)
        if not text.isascii():
            try:
                text.encode()
            except UnicodeEncodeError:  # a lone surrogate can only travel escaped
                text = json.dumps(message)
        if choice < 0.2:
            return text[: rng.randrange(len(text) + 1)]  # truncated
        if choice < 0.25:
            position = rng.randrange(len(text) + 1)
            return text[:position] + rng.choice(AWKWARD[1:]) + text[position:]  # byte-level
        return text

    def keep(self, message: dict[str, Any]) -> Any:
        return message

    def type_confused(self, message: dict[str, Any]) -> Any:
        paths = list(_paths(message))
        if paths:
            _set(message, self.rng.choice(paths), _random_json(self.rng))
        return message

    def retyped(self, message: dict[str, Any]) -> Any:
        message["type"] = self.rng.choice(TYPES + [_random_json(self.rng)])
        return message

    def field_dropped(self, message: dict[str, Any]) -> Any:
        if message:
            del message[self.rng.choice(list(message))]
        return message

    def field_added(self, message: dict[str, Any]) -> Any:
        key = self.rng.choice(["to", "from", "connection", "re", "sdp", "candidate", "peer", "zz"])
        message[key] = _random_json(self.rng)
        return message

    def nested_field(self, message: dict[str, Any]) -> Any:
        message[self.rng.choice(list(message) or ["x"])] = _nested(self.rng.choice([31, 33, 400]))
        return message

    def unicode(self, message: dict[str, Any]) -> Any:
        for key, value in list(message.items()):
            if isinstance(value, str) and self.rng.random() < 0.7:
                spot = self.rng.randrange(len(value) + 1)
                message[key] = value[:spot] + self.rng.choice(AWKWARD) + value[spot:]
        if self.rng.random() < 0.2:
            message["type"] = f"{message.get('type', '')}\ud800"  # a lone surrogate, escaped
        return message

    def sdp(self, message: dict[str, Any]) -> Any:
        if isinstance(message.get("sdp"), str):
            message["sdp"] = mutate_sdp(self.rng, message["sdp"])
        return message

    def ice(self, message: dict[str, Any]) -> Any:
        if isinstance(message.get("candidate"), dict):
            message["candidate"] = mutate_candidate(self.rng, message["candidate"])
        return message

    def numbers(self, message: dict[str, Any]) -> Any:
        key = self.rng.choice(["interview", "sdpMLineIndex", "to", "type", "token"])
        message[key] = self.rng.choice(NUMBERS)
        return message

    def oversized(self, message: dict[str, Any]) -> Any:
        size = self.rng.choice([48 * 1024 + 1, 64 * 1024 + 1, 150_000])
        message["sdp"] = "v" * size
        return message
