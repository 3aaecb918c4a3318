"""Benchmark of server-side recording: CPU per audio stream and packet loss, by number of streams.

For each N in --streams, a fresh server process runs `media.peer.MediaServer` exactly as the
service does (LocalStorage in a temporary folder, no ICE servers, a PCM sink for the candidates)
behind a small aiohttp endpoint on 127.0.0.1 (POST /offer). N aiortc peers in one or two client
processes connect to it and each sends Opus audio in real time: espeak-ng speech encoded once with
libopus (48 kHz mono, 20 ms frames, 32 kb/s) and replayed in a loop as pre-encoded `av.Packet`s,
which aiortc's RTCRtpSender packetises without encoding, so the clients spend no CPU on Opus.
Half the streams are candidates (copied into Ogg and decoded to 16 kHz PCM for transcription),
half recruiters (copied into Ogg only), as in a real interview.

Measured per N, once every stream's packets reach the server and after a short warm-up:

* server CPU: utime + stime of the server process from /proc over --seconds of wall time, as %
  of one core, in total and per stream;
* loss: packets the clients sent (counted in their tracks, over the whole run) against packets
  the server's recorders wrote (`ParticipantRecorder.packets`); `gaps` are the holes the recorder
  filled with silence (`lost_samples` / 960);
* the clients' CPU (% of one core, all client processes) and how late their pacing ran, the
  server's event-loop lag (p99), and a check that the written .opus files decode with ffmpeg and
  last as long as the audio that was sent.

"Recorded in real time with no loss" means loss < 0.1 % while the server process (one event
loop, so at most one core) stayed under 100 % CPU. With --per-role N the same N is also run with
candidates only and recruiters only. With --profile N, one more run of N streams has py-spy
(installed into .venv) sample the server during its window (25 Hz, --nonblocking), and the
functions where its time goes are printed. The table's "other CPU %" is what the rest of the
machine used meanwhile: on 2 cores, other load takes CPU from the server and the clients.

ICE is limited to 127.0.0.1 in every process (aioice's host addresses are patched), so no packet
leaves the loopback interface. Run from the repository root:

    .venv/bin/python bench/media_load.py                          # N = 1,10,25,50,100, 20 s each
    .venv/bin/python bench/media_load.py --streams 1,2 --seconds 5
    .venv/bin/python bench/media_load.py --per-role 50 --profile 50 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder is first on sys.path, where `media` would name this file
# instead of the project's package: put the repository root there (spawned children inherit it).
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import aioice.ice  # noqa: E402
import aiortc  # noqa: E402
import av  # noqa: E402
from aiohttp import web  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError  # noqa: E402

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
PACKETS_PER_S = SAMPLE_RATE // FRAME_SAMPLES
SPEECH = "Hello, this is a short answer."
OPUS_BITRATE = 32_000
LOSS_LIMIT_PCT = 0.1
CPU_LIMIT_PCT = 100.0
BUSY_OTHER_PCT = 25.0  # other processes above this (% of a core) make a run's verdict doubtful
WARMUP_S = 2.0  # after every stream's first packet reached the server, before the window
DRAIN_S = 1.0  # after the clients stopped sending, before the server's counts are read
CONNECT_CONCURRENCY = 8  # offers in flight per client process
LAG_TICK_S = 0.05  # the server's loop-lag probe: how often it wakes up
PROFILE_RATE = 25  # py-spy samples per second: at 100 it takes most of a core of this machine
IDLE_FRAMES = ("EpollSelector.select", "select (selectors.py")  # py-spy: waiting
# Frames under every sample of the server (process start, asyncio.run): no news in "inclusive".
ROOT_FRAMES = (
    "multiprocessing/",
    "asyncio/runners.py",
    "run_forever",
    "run_until_complete",
    "_run_once",
    "<module>",
    "server_process",
)


# --------------------------------------------------------------------------- shared


def loopback_only() -> None:
    """Make aioice gather only 127.0.0.1 as host candidate, so all media stays on loopback."""

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        """Loopback only (aioice itself always leaves it out)."""
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = host_addresses


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, nearest rank; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def receive(conn: Connection) -> Any:
    """The next message from the orchestrator's pipe, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(conn.fileno())
    return conn.recv()


@dataclass(frozen=True)
class Stream:
    """One recorded participant: the page's key, its interview and its role."""

    key: str
    interview_id: int
    role: str


def make_streams(n: int, mix: str) -> list[Stream]:
    """`n` streams: "mixed" pairs a candidate and a recruiter per interview; else one role."""
    if mix == "mixed":
        return [
            Stream(f"s{i}", i // 2 + 1, "candidate" if i % 2 == 0 else "recruiter")
            for i in range(n)
        ]
    return [Stream(f"s{i}", i + 1, mix) for i in range(n)]


# --------------------------------------------------------------------------- server process


def server_process(root: str, conn: Connection, lifetime_s: float) -> None:
    """Entry point of the server process: MediaServer behind POST /offer on 127.0.0.1."""
    import logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator decides when it stops
    logging.basicConfig(
        filename=str(Path(root) / "server.log"),
        level=logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    loopback_only()
    try:
        asyncio.run(asyncio.wait_for(_serve(Path(root), conn), lifetime_s))
    except BaseException as exc:  # report anything: the orchestrator waits on the pipe
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def _serve(root: Path, conn: Connection) -> None:
    """Serve offers and stats until POST /quit."""
    from media.pcm import PcmQueues
    from media.peer import MediaServer
    from media.recorder import Segment
    from media.storage import LocalStorage

    segments: dict[tuple[int, str, int], Segment] = {}
    pcm = PcmQueues()
    pcm_bytes = 0
    lags: list[float] = []
    streams: dict[str, Stream] = {}
    quit_event = asyncio.Event()

    def on_segment(segment: Segment) -> None:
        """Keep the latest state of every segment (the service writes it to the database)."""
        segments[(segment.interview_id, segment.role, segment.index)] = segment

    media = MediaServer(
        LocalStorage(root / "recordings"), ice_servers=[], on_segment=on_segment, pcm_sink=pcm
    )

    async def drain_pcm() -> None:
        """The transcription side: take the decoded PCM off the queues twice a second."""
        nonlocal pcm_bytes
        while not quit_event.is_set():
            await asyncio.sleep(0.5)
            for interview_id in {s.interview_id for s in streams.values()}:
                queue = pcm.queue(interview_id)
                for _ in range(queue.qsize()):
                    pcm_bytes += len(queue.get_nowait().samples)

    async def watch_lag() -> None:
        """How late a LAG_TICK_S sleep wakes up: the server's event-loop lag."""
        while not quit_event.is_set():
            began = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            lags.append(time.perf_counter() - began - LAG_TICK_S)

    async def offer(request: web.Request) -> web.Response:
        """{key, interview_id, role, sdp} -> {sdp}: the server peer's answer."""
        body = await request.json()
        stream = Stream(body["key"], int(body["interview_id"]), body["role"])
        streams[stream.key] = stream
        sdp = await media.accept(stream.key, stream.interview_id, stream.role, body["sdp"])
        return web.json_response({"sdp": sdp})

    async def stats(request: web.Request) -> web.Response:
        """Per-stream counts, PCM received, and the loop lag since the previous call."""
        recorded = {}
        for key, s in streams.items():
            recorder = media.recorder(s.interview_id, s.role)
            recorded[key] = [recorder.packets, recorder.lost_samples]
        lag = {"p99_ms": percentile(lags, 99) * 1000, "max_ms": max(lags, default=0.0) * 1000}
        lags.clear()
        return web.json_response(
            {
                "recorded": recorded,
                "connections": media.connections,
                "pcm_bytes": pcm_bytes,
                "lag": lag,
            }
        )

    async def close(request: web.Request) -> web.Response:
        """End every connection and segment; list the files written."""
        await media.close_all()
        files = [
            {
                "path": str(s.path),
                "interview_id": s.interview_id,
                "role": s.role,
                "duration_s": s.duration_s,
                "closed": s.closed,
            }
            for s in segments.values()
        ]
        return web.json_response({"files": files})

    async def stop(request: web.Request) -> web.Response:
        """End the server process."""
        quit_event.set()
        return web.json_response({})

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/offer", offer)
    app.router.add_get("/stats", stats)
    app.router.add_post("/close", close)
    app.router.add_post("/quit", stop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    tasks = [asyncio.create_task(drain_pcm()), asyncio.create_task(watch_lag())]
    conn.send(("ready", runner.addresses[0][1]))
    try:
        await quit_event.wait()
    finally:
        for task in tasks:
            task.cancel()
        await media.close_all()
        await runner.cleanup()


# --------------------------------------------------------------------------- client processes


def encode_speech(work: Path) -> list[bytes]:
    """espeak-ng speech as Opus packets: 48 kHz mono, 20 ms each, libopus at OPUS_BITRATE."""
    wav = work / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SPEECH], check=True, timeout=60)
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = SAMPLE_RATE
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = OPUS_BITRATE
    encoder.options = {"frame_duration": "20", "application": "voip"}
    resampler = av.AudioResampler(
        format="s16", layout="mono", rate=SAMPLE_RATE, frame_size=FRAME_SAMPLES
    )
    packets: list[bytes] = []
    with av.open(str(wav)) as container:
        frames = [*container.decode(audio=0), None]
    for frame in frames:
        for resampled in resampler.resample(frame):
            packets.extend(bytes(p) for p in encoder.encode(resampled))
    packets.extend(bytes(p) for p in encoder.encode(None))
    return packets


class LoopedOpusTrack(MediaStreamTrack):
    """Replays pre-encoded Opus packets in a loop, paced in real time; counts what it hands out."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self._packets = packets
        self._pts = 0
        self._time_base = Fraction(1, SAMPLE_RATE)
        self.started: float | None = None
        self.stopped: float | None = None
        self.sent = 0
        self.max_late = 0.0
        self.stopping = False
        self.sending = asyncio.Event()

    async def recv(self) -> av.Packet:
        """The next packet, when its time comes; MediaStreamError once stopping."""
        if self.stopping or self.readyState != "live":
            raise MediaStreamError
        now = time.perf_counter()
        if self.started is None:
            self.started = now
            self.sending.set()
        due = self.started + self._pts / SAMPLE_RATE
        if due > now:
            await asyncio.sleep(due - now)
        else:
            self.max_late = max(self.max_late, now - due)
        if self.stopping:
            raise MediaStreamError
        packet = av.Packet(self._packets[self.sent % len(self._packets)])
        packet.pts = self._pts
        packet.time_base = self._time_base
        self._pts += FRAME_SAMPLES
        self.sent += 1  # RTCRtpSender sends it before it asks for the next one
        return packet


@dataclass(frozen=True)
class ClientJob:
    """What one client process does: connect these streams to the server and send audio."""

    url: str
    streams: list[Stream]
    packets: list[bytes]
    connect_timeout_s: float
    lifetime_s: float


def client_process(job: ClientJob, conn: Connection) -> None:
    """Entry point of a client process: run the job, report through `conn`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loopback_only()
    try:
        asyncio.run(asyncio.wait_for(_client(job, conn), job.lifetime_s))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def _connect(
    http: aiohttp.ClientSession, url: str, stream: Stream, track: LoopedOpusTrack
) -> RTCPeerConnection:
    """Offer `track` to the server as `stream`'s page would, and apply the answer."""
    # Always an explicit empty list: aiortc's default would ask a public STUN server.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    body = {
        "key": stream.key,
        "interview_id": stream.interview_id,
        "role": stream.role,
        "sdp": pc.localDescription.sdp,
    }
    async with http.post(f"{url}/offer", json=body) as response:
        response.raise_for_status()
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc


async def _client(job: ClientJob, conn: Connection) -> None:
    """Connect, report ready, send until told to stop, report the counts, close on request."""
    began = time.perf_counter()
    tracks = {s.key: LoopedOpusTrack(job.packets) for s in job.streams}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=job.connect_timeout_s)

    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def connect(stream: Stream) -> RTCPeerConnection:
            """One stream's connection, at most CONNECT_CONCURRENCY at a time."""
            async with gate:
                return await _connect(http, job.url, stream, tracks[stream.key])

        pcs = await asyncio.wait_for(
            asyncio.gather(*(connect(s) for s in job.streams)), job.connect_timeout_s
        )
    remaining = began + job.connect_timeout_s - time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(t.sending.wait() for t in tracks.values())), max(remaining, 1)
        )
    except TimeoutError:
        idle = [k for k, t in tracks.items() if t.started is None]
        raise TimeoutError(f"{len(idle)} streams never started sending, e.g. {idle[0]}") from None
    conn.send(("ready", time.perf_counter() - began))

    assert await receive(conn) == "stop"
    for track in tracks.values():
        track.stopping = True
        track.stopped = time.perf_counter()
    await asyncio.sleep(0.3)  # senders waiting in recv() wake up and end
    now = time.perf_counter()
    counts = {
        key: {
            "sent": t.sent,
            "seconds": (t.stopped or now) - (t.started or now),
            "max_late_ms": t.max_late * 1000,
        }
        for key, t in tracks.items()
    }
    conn.send(("sent", counts))

    assert await receive(conn) == "close"
    await asyncio.wait_for(asyncio.gather(*(pc.close() for pc in pcs)), 30)
    conn.send(("closed", None))


# --------------------------------------------------------------------------- orchestrator


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User + system CPU of this process's ended and reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy (not idle, not waiting for I/O), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def http_json(url: str, method: str = "GET", timeout: float = 30) -> Any:
    """A JSON request to the server process (127.0.0.1 only)."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def expect(conn: Connection, kind: str, timeout: float, who: str) -> Any:
    """The payload of the next `kind` message from a child; raise on errors and timeouts."""
    if not conn.poll(timeout):
        raise TimeoutError(f"{who} sent no {kind!r} within {timeout:.0f} s")
    got, payload = conn.recv()
    if got != kind:
        raise RuntimeError(f"{who}: expected {kind!r}, got {got!r}: {payload}")
    return payload


@dataclass
class FileCheck:
    """One written .opus file: does ffmpeg decode it cleanly, and how long is it."""

    name: str
    decodes: bool
    error: str
    probed_s: float
    sent_s: float
    ran_s: float


@dataclass
class RunResult:
    """Everything measured for one N and mix."""

    n: int
    mix: str
    candidates: int
    recruiters: int
    window_s: float = 0.0
    server_cpu_pct: float = math.nan
    client_cpu_pct: float = math.nan
    machine_cpu_pct: float = math.nan
    sent: int = 0
    recorded: int = 0
    gaps: int = 0
    pcm_s_per_candidate: float = math.nan
    client_late_ms: float = math.nan
    lag_p99_ms: float = math.nan
    lag_max_ms: float = math.nan
    setup_s: float = math.nan
    files: list[FileCheck] = field(default_factory=list)
    file_count: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    profile: list[str] = field(default_factory=list)

    @property
    def cpu_per_stream_pct(self) -> float:
        """Server CPU divided by the number of streams."""
        return self.server_cpu_pct / self.n if self.n else math.nan

    @property
    def other_cpu_pct(self) -> float:
        """CPU used during the window by everything but the server and the clients."""
        return self.machine_cpu_pct - self.server_cpu_pct - self.client_cpu_pct

    @property
    def loss_pct(self) -> float:
        """Packets sent but never recorded, over the whole run."""
        return 100 * (1 - self.recorded / self.sent) if self.sent else math.nan

    @property
    def ok(self) -> bool:
        """Recorded in real time with no loss."""
        return (
            not self.error
            and self.loss_pct < LOSS_LIMIT_PCT
            and self.server_cpu_pct < CPU_LIMIT_PCT
        )


def check_file(path: Path, sent_s: float, ran_s: float, root: Path) -> FileCheck:
    """Decode `path` with ffmpeg (errors count) and read its duration with ffprobe."""
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    error = decoded.stderr.strip() or (f"exit {decoded.returncode}" if decoded.returncode else "")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        probed = float(probe.stdout.strip())
    except ValueError:
        probed = math.nan
    return FileCheck(str(path.relative_to(root)), not error, error[:300], probed, sent_s, ran_s)


def profile_top(raw: Path, samples_expected: int, limit: int = 15) -> list[str]:
    """py-spy's raw (collapsed) stacks summed by function: self and inclusive share of CPU."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1].startswith(IDLE_FRAMES):  # the loop waiting in epoll: not CPU
            idle += count
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return [f"py-spy collected no busy samples ({idle} idle)"]
    inclusive = [(f, c) for f, c in total.most_common() if not any(r in f for r in ROOT_FRAMES)]
    return [
        f"py-spy ({PROFILE_RATE} Hz, --nonblocking: a few stacks are torn): {samples} busy and "
        f"{idle} idle samples of ~{samples_expected} "
        f"({samples / max(samples_expected, 1):.0%} busy); shares of the busy samples:",
        "  self time (where the CPU is spent):",
        *(f"    {c / samples:6.1%}  {f}" for f, c in own.most_common(limit)),
        "  inclusive (the function and what it calls):",
        *(f"    {c / samples:6.1%}  {f}" for f, c in inclusive[:limit]),
    ]


def read_warnings(log: Path, limit: int = 5) -> list[str]:
    """Distinct warning/error lines of the server's log, counted."""
    if not log.exists():
        return []
    seen = Counter(line for line in log.read_text(errors="replace").splitlines() if line[:1] != " ")
    seen = Counter({k: v for k, v in seen.items() if k.startswith(("WARNING", "ERROR"))})
    return [f"{count}x {line[:200]}" for line, count in seen.most_common(limit)]


def stop_process(process: BaseProcess) -> None:
    """Wait briefly for a child to end, then terminate it, then kill it."""
    process.join(5)
    if process.is_alive():
        process.terminate()
        process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


def run_once(
    n: int,
    mix: str,
    seconds: float,
    packets: list[bytes],
    client_count: int,
    work: Path,
    profile: bool = False,
) -> RunResult:
    """Start a server and clients for `n` streams, measure the window, check files, clean up."""
    streams = make_streams(n, mix)
    roles = Counter(s.role for s in streams)
    result = RunResult(n, mix, roles["candidate"], roles["recruiter"])
    root = work / f"n{n}-{mix}{'-profile' if profile else ''}"
    root.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    connect_timeout = 30 + 0.5 * n
    lifetime = connect_timeout + seconds + 120
    server_end, server_child = ctx.Pipe()
    server = ctx.Process(
        target=server_process, args=(str(root), server_child, lifetime), daemon=True
    )
    clients: list[tuple[BaseProcess, Connection]] = []
    spy: subprocess.Popen[bytes] | None = None
    url = ""
    try:
        server.start()
        url = f"http://127.0.0.1:{expect(server_end, 'ready', 60, 'server')}"
        assert server.pid is not None
        groups = [streams[i::client_count] for i in range(min(client_count, n))]
        for group in groups:
            end, child = ctx.Pipe()
            job = ClientJob(url, group, packets, connect_timeout, lifetime)
            process = ctx.Process(target=client_process, args=(job, child), daemon=True)
            process.start()
            clients.append((process, end))
        result.setup_s = max(
            expect(end, "ready", connect_timeout + 30, "client") for _, end in clients
        )
        deadline = time.monotonic() + 30
        while True:  # every stream's packets reach the server's recorders
            recorded = http_json(f"{url}/stats")["recorded"]
            if sum(1 for packets_, _ in recorded.values() if packets_) == n:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("not every stream reached the server within 30 s")
            time.sleep(0.2)
        time.sleep(WARMUP_S)

        client_pids = [p.pid for p, _ in clients if p.pid is not None]
        http_json(f"{url}/stats")  # resets the loop-lag record
        began = time.perf_counter()
        server_cpu0 = cpu_seconds(server.pid)
        client_cpu0 = sum(cpu_seconds(pid) for pid in client_pids)
        machine0 = machine_busy_seconds()
        if profile:
            raw = root / "py-spy.txt"
            spy_cpu0 = children_cpu_seconds()
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    str(PROFILE_RATE),
                    "--nonblocking",
                    "--function",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        time.sleep(seconds)
        result.window_s = time.perf_counter() - began
        result.server_cpu_pct = 100 * (cpu_seconds(server.pid) - server_cpu0) / result.window_s
        client_cpu = sum(cpu_seconds(pid) for pid in client_pids) - client_cpu0
        result.client_cpu_pct = 100 * client_cpu / result.window_s
        result.machine_cpu_pct = 100 * (machine_busy_seconds() - machine0) / result.window_s
        lag = http_json(f"{url}/stats")["lag"]
        result.lag_p99_ms, result.lag_max_ms = lag["p99_ms"], lag["max_ms"]
        if spy is not None:
            _, err = spy.communicate(timeout=seconds + 60)
            spy_cpu = children_cpu_seconds() - spy_cpu0  # py-spy is the only child reaped here
            if spy.returncode:
                result.profile = [f"py-spy failed: {err.decode(errors='replace')[-500:]}"]
            else:
                result.profile = profile_top(root / "py-spy.txt", int(seconds * PROFILE_RATE))
                result.profile.append(
                    f"(py-spy itself used {100 * spy_cpu / result.window_s:.0f} % of a core)"
                )

        for _, end in clients:
            end.send("stop")
        sent: dict[str, dict[str, float]] = {}
        for _, end in clients:
            sent.update(expect(end, "sent", 30, "client"))
        time.sleep(DRAIN_S)
        final = http_json(f"{url}/stats")
        result.sent = int(sum(c["sent"] for c in sent.values()))
        result.recorded = sum(p for p, _ in final["recorded"].values())
        result.gaps = sum(lost for _, lost in final["recorded"].values()) // FRAME_SAMPLES
        result.client_late_ms = max(c["max_late_ms"] for c in sent.values())
        if result.candidates:
            result.pcm_s_per_candidate = final["pcm_bytes"] / 2 / 16_000 / result.candidates

        files = http_json(f"{url}/close", "POST", timeout=60)["files"]
        result.file_count = len(files)
        by_stream = {(s.interview_id, s.role): s.key for s in streams}
        for role in ("candidate", "recruiter"):
            chosen = next((f for f in files if f["role"] == role), None)
            if chosen is None:
                continue
            counts = sent[by_stream[(chosen["interview_id"], role)]]
            result.files.append(
                check_file(
                    Path(chosen["path"]),
                    counts["sent"] * FRAME_SAMPLES / SAMPLE_RATE,
                    counts["seconds"],
                    root,
                )
            )
        for _, end in clients:
            end.send("close")
        for _, end in clients:
            expect(end, "closed", 40, "client")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        for _, end in clients:  # a child's own error report, if it sent one
            with contextlib.suppress(Exception):
                while end.poll(0):
                    kind, payload = end.recv()
                    if kind == "error":
                        result.error += f"; client: {payload}"
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(5)
        if url:
            with contextlib.suppress(Exception):
                http_json(f"{url}/quit", "POST", timeout=10)
        for process, _ in clients:
            stop_process(process)
        stop_process(server)
        result.warnings = read_warnings(root / "server.log")
    return result


# --------------------------------------------------------------------------- output


def num(value: float, digits: int = 1) -> str:
    """A number for a table cell; '-' for NaN."""
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def describe(r: RunResult) -> str:
    """The lines printed after one run."""
    lines = [
        f"N={r.n} ({r.candidates} candidate, {r.recruiters} recruiter): connected and sending "
        f"in {num(r.setup_s)} s; window {num(r.window_s)} s: server CPU "
        f"{num(r.server_cpu_pct)} % ({num(r.cpu_per_stream_pct, 2)} %/stream), clients "
        f"{num(r.client_cpu_pct)} %, rest of the machine {num(r.other_cpu_pct)} %; sent {r.sent}, recorded {r.recorded}, gaps {r.gaps}, "
        f"loss {num(r.loss_pct, 3)} %; server loop lag p99 {num(r.lag_p99_ms)} ms, max "
        f"{num(r.lag_max_ms)} ms; client pacing late at most {num(r.client_late_ms)} ms"
    ]
    if r.candidates:
        lines.append(f"  PCM for transcription: {num(r.pcm_s_per_candidate)} s per candidate")
    if r.file_count:
        lines.append(f"  {r.file_count} .opus files written; checked:")
    for f in r.files:
        verdict = "decodes cleanly" if f.decodes else f"DOES NOT DECODE: {f.error}"
        lines.append(
            f"    {f.name}: {verdict}; {num(f.probed_s, 2)} s long, {num(f.sent_s, 2)} s of "
            f"audio sent over {num(f.ran_s, 2)} s"
        )
    lines.extend(f"  server log: {w}" for w in r.warnings)
    if r.error:
        lines.append(f"  ERROR: {r.error}")
    lines.extend(f"  {line}" for line in r.profile)
    return "\n".join(lines)


def linear_fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares slope and intercept of y over x."""
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    return slope, mean_y - slope * mean_x


def verdict(r: RunResult) -> str:
    """The last table column: passed or not, and why the result may not be the server's."""
    if r.error:
        return "NO (error)"
    if r.ok:
        return "yes"
    if r.other_cpu_pct > BUSY_OTHER_PCT:
        return f"NO (machine busy: other {r.other_cpu_pct:.0f} %)"
    return "NO"


def table(results: list[RunResult]) -> str:
    """The compact table printed at the end, and the largest N that passed."""
    head = (
        f"{'N':>4} {'cand/rec':>8} {'srv CPU %':>9} {'CPU/stream %':>12} {'sent':>7} "
        f"{'recorded':>8} {'gaps':>5} {'loss %':>7} {'client CPU %':>12} {'other CPU %':>11} "
        f"{'lag p99 ms':>10}  real time, no loss"
    )
    rows = [head]
    for r in results:
        rows.append(
            f"{r.n:>4} {f'{r.candidates}/{r.recruiters}':>8} {num(r.server_cpu_pct):>9} "
            f"{num(r.cpu_per_stream_pct, 2):>12} {r.sent:>7} {r.recorded:>8} {r.gaps:>5} "
            f"{num(r.loss_pct, 3):>7} {num(r.client_cpu_pct):>12} {num(r.other_cpu_pct):>11} "
            f"{num(r.lag_p99_ms):>10}  {verdict(r)}"
        )
    mixed = [r for r in results if r.mix == "mixed"]
    best = max((r.n for r in mixed if r.ok), default=0)
    rows.append(
        f"largest N recorded in real time with no loss (half candidates, loss < "
        f"{LOSS_LIMIT_PCT} %, server CPU < {CPU_LIMIT_PCT:.0f} %): "
        + (str(best) if best else "none of the sizes run")
    )
    fit = [(r.n, r.server_cpu_pct) for r in mixed if r.ok]
    if len({n for n, _ in fit}) >= 3:
        slope, intercept = linear_fit(fit)
        rows.append(
            f"server CPU ~ {intercept:.1f} % + {slope:.2f} % x N (least squares over the mixed "
            f"runs that passed); one core would be full near N = {(100 - intercept) / slope:.0f} "
            "(an extrapolation)"
        )
    if any(r.ok for r in mixed) and not all(r.ok for r in mixed):
        failed = min(r.n for r in mixed if not r.ok)
        rows.append(f"  (first size that failed: N={failed})")
    busy = [r for r in results if r.other_cpu_pct > BUSY_OTHER_PCT]
    if busy:
        rows.append(
            f"note: other processes used over {BUSY_OTHER_PCT:.0f} % of a core during "
            f"{len(busy)} of {len(results)} runs (N={', '.join(str(r.n) for r in busy)}); "
            "on 2 cores that takes CPU from the server and the clients: rerun on a quiet machine"
        )
    rows.append(
        "CPU % is of one core; 'other' is the rest of the machine during the window (/proc/stat "
        "minus server and clients, +-10 %: they are sampled differently)"
    )
    rows.append(
        f"machine: os.cpu_count() = {os.cpu_count()}, {platform.machine()}, Python "
        f"{platform.python_version()}, aiortc {aiortc.__version__}, PyAV {av.__version__}"
    )
    return "\n".join(rows)


# --------------------------------------------------------------------------- main


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM and the time limit into exceptions so that cleanup runs."""
    if signum == signal.SIGALRM:
        raise TimeoutError("the benchmark ran past --time-limit")
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--streams", default="1,10,25,50,100", help="stream counts, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per run")
    parser.add_argument(
        "--clients", type=int, default=2, help="client processes sending the streams (1 or 2)"
    )
    parser.add_argument(
        "--per-role",
        type=int,
        default=0,
        metavar="N",
        help="also run N candidates only and N recruiters only (0: skip)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="one more run of N mixed streams with py-spy on the server (0: skip)",
    )
    parser.add_argument("--time-limit", type=int, default=900, help="abort after this many s")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (files, logs)")
    args = parser.parse_args(argv)
    args.counts = [int(x) for x in args.streams.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    """Encode the speech, run every size, print the results, clean up."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGALRM, _interrupted)
    signal.alarm(args.time_limit)
    work = Path(tempfile.mkdtemp(prefix="p2pi-bench-media-"))
    results: list[RunResult] = []
    try:
        packets = encode_speech(work)
        print(
            f"media benchmark: {len(packets)} Opus packets ({len(packets) / PACKETS_PER_S:.1f} s "
            f"of espeak-ng speech, {OPUS_BITRATE // 1000} kb/s, 20 ms) looped per stream; "
            f"{args.seconds:g} s window after {WARMUP_S:g} s warm-up; up to {args.clients} "
            f"client process(es); {os.cpu_count()} CPUs",
            flush=True,
        )
        plan = [(n, "mixed", False) for n in args.counts]
        if args.per_role:
            plan += [(args.per_role, "candidate", False), (args.per_role, "recruiter", False)]
        if args.profile:
            plan.append((args.profile, "mixed", True))
        profiled: RunResult | None = None
        for n, mix, profile in plan:
            result = run_once(n, mix, args.seconds, packets, args.clients, work, profile)
            print(("[py-spy run] " if profile else "") + describe(result), flush=True)
            if profile:
                profiled = result
            else:
                results.append(result)
        print()
        print(table(results))
        if profiled is not None:
            print(
                f"py-spy run (N={profiled.n}, not in the table): server CPU "
                f"{num(profiled.server_cpu_pct)} %, loss {num(profiled.loss_pct, 3)} %"
            )
        return 0 if all(not r.error for r in results) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
