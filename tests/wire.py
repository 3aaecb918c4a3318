"""An emulated network link between two namespaces, in user space: what `tc netem` does.

Some kernels (this machine's among them) are built without sch_netem, so `tc qdisc ... netem`
is refused. This process makes the link itself: a TUN device in each of two namespaces, and
every IP packet read from one side is written to the other after the link's delay (with
jitter, in order), unless it is lost at random or the link's rate would queue it for longer
than `--queue-ms`. The same impairment applies in both directions.

    python -m tests.wire --a NS1:eth0 --b NS2:r-cand --loss 10 --delay-ms 150 --jitter-ms 15

prints "ready" once both devices are in place, and a summary line when it is terminated.
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import os
import random
import secrets
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


@dataclass(frozen=True)
class Profile:
    """One direction's impairment (netem's terms); both directions get the same."""

    loss: float = 0.0
    """Percent of packets dropped at random."""
    delay_ms: float = 0.0
    """One-way delay (an RTT of 300 ms is 150 ms each way)."""
    jitter_ms: float = 0.0
    """Delay varies uniformly by up to this much either way (packets stay in order)."""
    rate_kbit: float = 0.0
    """Link rate; 0: unlimited."""
    queue_ms: float = 300.0
    """With a rate: a packet that would wait longer than this in the queue is dropped."""

    def argv(self) -> list[str]:
        return [
            f"--loss={self.loss}",
            f"--delay-ms={self.delay_ms}",
            f"--jitter-ms={self.jitter_ms}",
            f"--rate-kbit={self.rate_kbit}",
            f"--queue-ms={self.queue_ms}",
        ]

    def describe(self) -> str:
        parts = []
        if self.loss:
            parts.append(f"{self.loss:g} % loss")
        if self.delay_ms:
            parts.append(f"{2 * self.delay_ms:g} ms RTT")
        if self.jitter_ms:
            parts.append(f"{self.jitter_ms:g} ms jitter")
        if self.rate_kbit:
            parts.append(f"{self.rate_kbit:g} kbit/s")
        return ", ".join(parts) or "clean"


@dataclass
class _Direction:
    profile: Profile
    out: int
    free_at: float = 0.0
    last_delivery: float = 0.0
    forwarded: int = 0
    lost: int = 0
    queued_out: int = 0


@dataclass(order=True)
class _Due:
    at: float
    sequence: int
    direction: _Direction = field(compare=False)
    packet: bytes = field(compare=False)


def open_tun(name: str) -> int:
    """A TUN device of that name (no packet-info header), open for reading and writing."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def place(temporary: str, namespace: str, name: str) -> None:
    """Move the device into the namespace under its final name (the fd keeps working)."""
    subprocess.run(["ip", "link", "set", temporary, "netns", namespace], check=True)
    subprocess.run(["ip", "-n", namespace, "link", "set", temporary, "name", name], check=True)


def run(a: tuple[str, str], b: tuple[str, str], profile: Profile, seed: int | None) -> None:
    chance = random.Random(seed)
    tag = secrets.token_hex(3)
    fds = []
    for side, (namespace, name) in (("a", a), ("b", b)):
        temporary = f"w{tag}{side}"
        fds.append(open_tun(temporary))
        place(temporary, namespace, name)
    fa, fb = fds
    directions = {fa: _Direction(profile, fb), fb: _Direction(profile, fa)}
    due: list[_Due] = []
    sequence = 0
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    while not stopping:
        now = time.monotonic()
        wait = min(0.5, max(0.0, due[0].at - now)) if due else 0.5
        try:
            readable, _, _ = select.select([fa, fb], [], [], wait)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            for _ in range(64):  # what is waiting, a bounded batch at a time
                try:
                    packet = os.read(fd, 65_535)
                except BlockingIOError:
                    break
                except OSError:
                    stopping = True
                    break
                direction = directions[fd]
                at = _schedule(direction, len(packet), now, chance)
                if at is None:
                    continue
                sequence += 1
                heapq.heappush(due, _Due(at, sequence, direction, packet))
        now = time.monotonic()
        while due and due[0].at <= now:
            item = heapq.heappop(due)
            try:
                os.write(item.direction.out, item.packet)
                item.direction.forwarded += 1
            except OSError:
                item.direction.lost += 1  # the other side went down
    there, back = directions[fa], directions[fb]
    print(
        f"wire {profile.describe()}: a→b {there.forwarded} forwarded, {there.lost} lost, "
        f"{there.queued_out} over the queue; b→a {back.forwarded} forwarded, {back.lost} lost, "
        f"{back.queued_out} over the queue",
        flush=True,
    )


def _schedule(direction: _Direction, size: int, now: float, chance: random.Random) -> float | None:
    """When the packet comes out at the other side, or None when the link loses it."""
    profile = direction.profile
    if profile.loss and chance.random() * 100 < profile.loss:
        direction.lost += 1
        return None
    leaves = now
    if profile.rate_kbit:
        start = max(now, direction.free_at)
        if (start - now) * 1000 > profile.queue_ms:
            direction.queued_out += 1
            return None
        direction.free_at = start + size * 8 / (profile.rate_kbit * 1000)
        leaves = direction.free_at
    delay = profile.delay_ms + (
        chance.uniform(-1, 1) * profile.jitter_ms if profile.jitter_ms else 0
    )
    arrives = max(leaves + max(0.0, delay) / 1000, direction.last_delivery)
    direction.last_delivery = arrives
    return arrives


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="NAMESPACE:IFNAME of one end")
    parser.add_argument("--b", required=True, help="NAMESPACE:IFNAME of the other end")
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--rate-kbit", type=float, default=0.0)
    parser.add_argument("--queue-ms", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    profile = Profile(args.loss, args.delay_ms, args.jitter_ms, args.rate_kbit, args.queue_ms)
    a_ns, a_name = args.a.split(":", 1)
    b_ns, b_name = args.b.split(":", 1)
    run((a_ns, a_name), (b_ns, b_name), profile, args.seed)


if __name__ == "__main__":
    sys.exit(main())
