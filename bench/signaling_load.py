"""Benchmark of the signaling hub: relay latency by number of rooms, and memory per idle WebSocket.

Everything runs against real `p2p-interview serve` processes on 127.0.0.1:

* Relay latency. For each N in --rooms, N interviews each get a recruiter WebSocket (signed in
  over HTTP, the session cookie reused) and a candidate WebSocket (the interview's link token),
  both joined to the room. Every candidate then sends one `offer` a second, rooms staggered
  evenly over the second, for --seconds seconds; the recruiter's side times each arrival against
  the send time carried in the `sdp` field. Printed: messages received and lost, p50, p99, max.
  With --two-nodes the recruiters are on node A and the candidates on node B, so every message
  crosses Redis pub/sub (REDIS_URL=redis://127.0.0.1:6379/14, flushed first).
* Idle connections. --idle WebSockets (a recruiter and a candidate per room, all joined) held
  open on node A; the server's VmRSS before and after gives the memory per connection.
* Joins. --joins WebSockets opened and joined on node A, many at once: joins per second, and
  per second of the server's own CPU (its capacity where other work shares the cores).
* Reconnect storm. --storm pages held joined on node A, which is then stopped (SIGTERM) and
  started again on its port; every page reconnects with the pages' backoff and jitter
  (web/static/js/signaling.js). Printed: the time until the last one joined again.

The servers share a temporary SQLite database, migrated, loaded with the bundled question bank
and seeded directly with one recruiter and enough "right now" interviews. Clients run in their
own processes (multiprocessing, spawn), separate from the orchestrating process, with their
garbage collector off while measuring; each phase reports the client's CPU and event-loop lag,
the servers' and Redis's CPU and the whole machine's (other processes' load makes numbers noisy),
so one can tell whether the client or the machine, not the servers, was the bottleneck. Unless
--no-gc-log, the servers get a `sitecustomize` (in the temp dir, on their PYTHONPATH) that only
times their garbage collections, so long GC pauses can be told apart in the tail.

The whole run is bounded by --time-limit; servers and clients are stopped at the end, on errors,
on SIGTERM and on Ctrl-C. Server logs (and GC timings) are in the temp dir, deleted at the end
unless --keep; their warnings and errors are summarized either way.

Run from the repository root:

    .venv/bin/python bench/signaling_load.py                  # --rooms 10,100,1000 --seconds 10 --idle 5000
    .venv/bin/python bench/signaling_load.py --rooms 10 --seconds 3 --idle 200
    .venv/bin/python bench/signaling_load.py --two-nodes --keep   # keep the temp dir with the server logs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder is first on sys.path, where `signaling` would name this file
# instead of the project's package: put the repository root there.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REDIS_URL = "redis://127.0.0.1:6379/14"
EMAIL = "bench-recruiter@example.com"
PASSWORD = "bench pass phrase, long enough"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
JOIN_CONCURRENCY = 32  # joins in flight per client process
JOINS_CONCURRENCY = 256  # --joins: rooms joining at once per client process (many pages at once)
GRACE_S = 3.0  # how long after the last send a message may still arrive before it counts as lost
ROOMS_PER_CLIENT = 250  # latency: rooms one client process drives, at most (CPU permitting)
IDLE_PER_CLIENT = 2500  # idle: WebSockets one client process holds
BACKOFF_BASE_S = 0.5  # the pages' reconnect backoff, as in web/static/js/signaling.js
BACKOFF_CAP_S = 8.0
GC_PAUSE_MS = 10.0  # server garbage collections at least this long are reported
# Put on the servers' PYTHONPATH (unless --no-gc-log): times each garbage collection of the
# process into the file named by P2PI_BENCH_GC_LOG, to tell GC pauses apart in tail latency.
GC_PROBE = """\
import gc, os, time

if os.environ.get("P2PI_BENCH_GC_LOG"):
    _log = open(os.environ["P2PI_BENCH_GC_LOG"], "a", buffering=1)
    _began = [0.0]

    def _time_gc(phase, info):
        if phase == "start":
            _began[0] = time.perf_counter()
        elif time.perf_counter() - _began[0] >= 0.001:
            took = (time.perf_counter() - _began[0]) * 1000
            _log.write(f"{time.time():.4f} {info['generation']} {took:.2f}\\n")

    gc.callbacks.append(_time_gc)
"""


# --------------------------------------------------------------------------- client processes


@dataclass(frozen=True)
class Job:
    """What one client process does: join its rooms, then relay offers (latency) or hold (idle)."""

    mode: str  # "latency", "idle" (also --joins) or "storm"
    rooms: list[tuple[int, str, float]]  # interview id, candidate token, send offset in the second
    recruiter_url: str
    candidate_url: str
    cookies: dict[str, str]
    seconds: int = 0
    concurrency: int = 0  # joins in flight (0: JOIN_CONCURRENCY)


@dataclass
class Pair:
    """One room as the client sees it: the recruiter's and the candidate's WebSockets."""

    recruiter: aiohttp.ClientWebSocketResponse
    candidate: aiohttp.ClientWebSocketResponse
    offset: float
    received: int = 0
    interview: int = 0
    token: str = ""


@dataclass
class Arrivals:
    """(send time, latency) of the offers that arrived; `complete` is set once `expected` have."""

    latencies: list[tuple[float, float]] = field(default_factory=list)
    expected: int | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, sent: float, latency: float) -> None:
        self.latencies.append((sent, latency))
        if self.expected is not None and len(self.latencies) >= self.expected:
            self.complete.set()


def client_process(job: Job, conn: Connection) -> None:
    """Entry point of a client process: run the job, report through `conn`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when clients stop
    try:
        asyncio.run(_client(job, conn))
    except BaseException as exc:  # report anything, the parent is waiting on the pipe
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def open_joined(
    http: aiohttp.ClientSession, base: str, join: dict[str, Any]
) -> aiohttp.ClientWebSocketResponse:
    """Connect to /ws as a page of `base` would (same Origin), send `join`, wait for `joined`."""
    ws = await http.ws_connect(
        f"{base}/ws", origin=base, timeout=aiohttp.ClientWSTimeout(ws_close=5)
    )
    try:
        await ws.send_json(join)
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed while joining ({msg.type.name}, {ws.close_code})")
            data = json.loads(msg.data)
            if data.get("type") == "joined":
                return ws
            if data.get("type") == "error":
                raise RuntimeError(f"join refused: {data.get('code')}: {data.get('message')}")
    except BaseException:
        await ws.close()
        raise


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read and drop everything (presence updates); reading also answers the server's pings."""
    async for _ in ws:
        pass


async def _read_offers(pair: Pair, arrivals: Arrivals) -> None:
    """Time every relayed offer on the recruiter's socket; ignore presence and the rest."""
    async for msg in pair.recruiter:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        now = time.perf_counter()
        data = json.loads(msg.data)
        if data.get("type") == "offer":
            sent = float(data["sdp"])
            arrivals.add(sent, now - sent)
            pair.received += 1


async def _watch_loop(lags: list[float], stop: asyncio.Event) -> None:
    """Record how late a 5 ms sleep wakes up: this client's event-loop lag."""
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - began - 0.005)


async def _client(job: Job, conn: Connection) -> None:
    """Join every room of the job, report ready, then do the job's measurement."""
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: keep cookies of an IP-address host
    jar.update_cookies(job.cookies, URL(job.recruiter_url))
    recruiter_http = aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(limit=0))
    candidate_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    pairs: list[Pair] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(job.concurrency or JOIN_CONCURRENCY)

    async def join_room(interview: int, token: str, offset: float) -> None:
        async with gate:
            recruiter = None
            try:
                recruiter = await asyncio.wait_for(
                    open_joined(
                        recruiter_http,
                        job.recruiter_url,
                        {"type": "join", "role": "recruiter", "interview": interview},
                    ),
                    30,
                )
                candidate = await asyncio.wait_for(
                    open_joined(
                        candidate_http,
                        job.candidate_url,
                        {"type": "join", "role": "candidate", "token": token},
                    ),
                    30,
                )
                pairs.append(Pair(recruiter, candidate, offset, 0, interview, token))
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                if recruiter is not None:
                    await recruiter.close()

    tasks: list[asyncio.Task[None]] = []
    rejoined: list[aiohttp.ClientWebSocketResponse] = []
    try:
        began, wall_began = time.perf_counter(), time.time()
        await asyncio.gather(*(join_room(*room) for room in job.rooms))
        joined_s = time.perf_counter() - began
        ready = {
            "pairs": len(pairs),
            "joined_s": joined_s,
            "failures": failures,
            "began": wall_began,
            "ended": time.time(),
        }
        if job.mode == "storm":
            conn.send(("ready", ready))
            conn.send(("done", await _storm(job, pairs, recruiter_http, candidate_http, rejoined)))
            await asyncio.to_thread(conn.recv)  # "close"
            return
        arrivals = Arrivals()
        for pair in pairs:
            tasks.append(asyncio.create_task(_read_offers(pair, arrivals)))
            tasks.append(asyncio.create_task(_drain(pair.candidate)))
        conn.send(("ready", ready))
        command = await asyncio.to_thread(conn.recv)
        if command[0] == "go":
            conn.send(("done", await _relay(job, pairs, arrivals, start_at=command[1])))
            await asyncio.to_thread(conn.recv)  # "close"
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(ws.close() for ws in rejoined), return_exceptions=True), 20
            )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(
                    *(ws.close() for p in pairs for ws in (p.recruiter, p.candidate)),
                    return_exceptions=True,
                ),
                20,
            )
        await recruiter_http.close()
        await candidate_http.close()


async def _relay(job: Job, pairs: list[Pair], arrivals: Arrivals, start_at: float) -> Any:
    """Send one offer per room per second from `start_at`, then wait for stragglers."""
    lags: list[float] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_loop(lags, stop))
    lateness: list[float] = []
    schedule = sorted(pairs, key=lambda p: p.offset)
    # The client's own garbage collections would show up as latency: none while measuring.
    gc.collect()
    gc.freeze()
    gc.disable()
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    cpu_began = time.process_time()
    sent_count = 0
    send_errors: list[str] = []
    for second in range(job.seconds):
        for pair in schedule:
            due = start_at + second + pair.offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            lateness.append(sent - due)
            try:
                await pair.candidate.send_str(json.dumps({"type": "offer", "sdp": repr(sent)}))
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                send_errors.append(f"{type(exc).__name__}: {exc}")
                continue
            sent_count += 1
    cpu = time.process_time() - cpu_began
    window = time.perf_counter() - start_at
    arrivals.expected = expected = sent_count
    if len(arrivals.latencies) >= expected:
        arrivals.complete.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(arrivals.complete.wait(), GRACE_S)
    stop.set()
    await watcher
    gc.enable()
    return {
        "latencies": [(sent - start_at, latency) for sent, latency in arrivals.latencies],
        "received": sum(p.received for p in pairs),
        "sent": sent_count,
        "send_errors": send_errors,
        "closed": [
            f"{who} socket closed by the server, code {ws.close_code}"
            for p in pairs
            for who, ws in (("recruiter", p.recruiter), ("candidate", p.candidate))
            if ws.closed
        ],
        "lateness_p99": percentile(sorted(lateness), 99),
        "lag_p99": percentile(sorted(lags), 99),
        "lag_max": max(lags, default=math.nan),
        "cpu": cpu / window if window > 0 else math.nan,
    }


def backoff_s(attempt: int, busy: bool = False) -> float:
    """The pages' reconnect delay (web/static/js/signaling.js): exponential, capped, jittered."""
    import random

    delay = min(BACKOFF_CAP_S, (5.0 if busy else BACKOFF_BASE_S) * 2**attempt)
    return delay / 2 + random.random() * delay / 2


async def _storm(
    job: Job,
    pairs: list[Pair],
    recruiter_http: aiohttp.ClientSession,
    candidate_http: aiohttp.ClientSession,
    rejoined: list[aiohttp.ClientWebSocketResponse],
) -> Any:
    """Every socket waits for the server to close it, then reconnects as a page does."""
    times: list[float] = []
    attempts: list[int] = []
    errors: Counter[str] = Counter()

    async def keep(ws: aiohttp.ClientWebSocketResponse, recruiter: bool, join: Any) -> None:
        await _drain(ws)
        busy = ws.close_code in (1013, 4429)
        attempt = 0
        while True:
            await asyncio.sleep(backoff_s(attempt, busy))
            attempt += 1
            try:
                fresh = await asyncio.wait_for(
                    open_joined(
                        recruiter_http if recruiter else candidate_http,
                        job.recruiter_url if recruiter else job.candidate_url,
                        join,
                    ),
                    15,
                )
            except Exception as exc:
                errors[type(exc).__name__] += 1
                busy = "1013" in str(exc)
                continue
            rejoined.append(fresh)
            times.append(time.time())
            attempts.append(attempt)
            return

    keepers = []
    for pair in pairs:
        recruiter_join = {"type": "join", "role": "recruiter", "interview": pair.interview}
        candidate_join = {"type": "join", "role": "candidate", "token": pair.token}
        keepers.append(keep(pair.recruiter, True, recruiter_join))
        keepers.append(keep(pair.candidate, False, candidate_join))
    await asyncio.gather(*keepers)
    return {"times": times, "attempts": attempts, "errors": dict(errors)}


class Clients:
    """A set of client processes, one Job each, talked to through pipes."""

    def __init__(self, jobs: list[Job]) -> None:
        context = mp.get_context("spawn")
        self.processes: list[mp.process.BaseProcess] = []
        self.pipes: list[Connection] = []
        for job in jobs:
            parent, child = context.Pipe()
            process = context.Process(target=client_process, args=(job, child), daemon=True)
            process.start()
            child.close()
            self.processes.append(process)
            self.pipes.append(parent)

    def collect(self, what: str, timeout: float) -> list[Any]:
        """Wait for every process's `what` report, at most `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        replies = []
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"a client process did not report {what!r} in {timeout:.0f} s")
            try:
                kind, payload = pipe.recv()
            except EOFError:
                raise RuntimeError("a client process died") from None
            if kind == "error":
                raise RuntimeError(f"a client process failed: {payload}")
            replies.append(payload)
        return replies

    def tell(self, message: tuple[Any, ...]) -> None:
        """Send `message` to every client process."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(message)

    def stop(self, timeout: float = 30) -> None:
        """Let the processes close their sockets and exit; terminate the ones that do not."""
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
        for pipe in self.pipes:
            pipe.close()


@contextlib.contextmanager
def clients(jobs: list[Job]) -> Iterator[Clients]:
    """Client processes that are stopped however the block ends."""
    group = Clients(jobs)
    try:
        yield group
    except BaseException:
        group.tell(("close",))
        group.stop(2)  # on errors and Ctrl-C, do not wait for graceful closes
        raise
    group.tell(("close",))
    group.stop()


# --------------------------------------------------------------------------- servers and data


@dataclass
class Node:
    """One `p2p-interview serve` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    gc_log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gc_pauses(self, since: float, until: float) -> list[tuple[float, float]]:
        """(seconds after `since`, ms) of this server's garbage collections until `until`.

        Both bounds are time.time() values.
        """
        if self.gc_log is None or not self.gc_log.exists():
            return []
        pauses = []
        for line in self.gc_log.read_text().splitlines():
            at, _generation, took = line.split()
            if since <= float(at) <= until:
                pauses.append((float(at) - since, float(took)))
        return pauses


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(
    name: str,
    work: Path,
    database_url: str,
    secret: str,
    redis_url: str,
    gc_probe: Path | None,
    port: int = 0,
) -> Node:
    """Start `python -m service.cli serve` and wait until it accepts connections.

    With `gc_probe` (a folder holding GC_PROBE as sitecustomize.py) the server times its
    garbage collections into gc-<name>.log.
    """
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SMTP_HOST"}}
    env.update(
        PORT=str(port),
        HOST="127.0.0.1",
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        DATABASE_URL=database_url,
        DATA_DIR=str(work / f"data-{name}"),
        SECRET_KEY=secret,
        LOG_LEVEL="INFO",
        WS_PER_ADDRESS="100000",  # every client of the benchmark is 127.0.0.1
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    gc_log = None
    if gc_probe:
        gc_log = work / f"gc-{name}.log"
        env["P2PI_BENCH_GC_LOG"] = str(gc_log)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(gc_probe), env.get("PYTHONPATH")]))
    log = work / f"server-{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only this script, which stops the servers
        )
    node = Node(name, port, process, log, gc_log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server {name} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return node
        except OSError:
            time.sleep(0.1)
    stop_node(node)
    raise RuntimeError(f"server {name} did not start: {log.read_text()[-2000:]}")


def stop_node(node: Node) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL after 10 s."""
    if node.process.poll() is None:
        node.process.terminate()
        try:
            node.process.wait(10)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(5)


async def seed(database_url: str, interviews: int) -> list[tuple[int, str]]:
    """Load the bank, create the recruiter and `interviews` "right now" interviews."""
    from rooms import accounts
    from rooms.bank import bundled_banks, import_banks
    from rooms.consents import ConsentKind
    from rooms.db import make_engine, make_sessionmaker
    from rooms.interviews import Person, create_interview
    from rooms.models import utcnow

    engine = make_engine(database_url)
    made: list[tuple[int, str]] = []
    try:
        sessions = make_sessionmaker(engine)
        async with sessions.begin() as session:
            await import_banks(session, bundled_banks())
        async with sessions.begin() as session:
            recruiter = await accounts.create_recruiter(session, EMAIL, PASSWORD)
            consents = {ConsentKind.PERSONAL_DATA: utcnow(), ConsentKind.AI_ANALYSIS: utcnow()}
            for i in range(interviews):
                interview = await create_interview(
                    session,
                    recruiter,
                    "python-backend",
                    Person("Bench Recruiter", EMAIL),
                    Person(f"Candidate {i}", f"candidate{i}@example.com"),
                    consents,
                    "bench",
                )
                made.append((interview.id, interview.candidate_token))
    finally:
        await engine.dispose()
    return made


async def sign_in(base: str) -> dict[str, str]:
    """Sign the recruiter in through the form; return the session's cookies."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{base}/signin") as response:
            match = CSRF_RE.search(await response.text())
        if not match:
            raise RuntimeError(f"no CSRF token on {base}/signin ({response.status})")
        form = {"email": EMAIL, "password": PASSWORD, "csrf_token": match.group(1)}
        async with http.post(f"{base}/signin", data=form, allow_redirects=False) as response:
            if response.status != 303:
                raise RuntimeError(f"sign-in failed: {response.status} {await response.text()}")
        return {cookie.key: cookie.value for cookie in jar}


def redis_pid(url: str) -> int | None:
    """The Redis server's process id, when it runs on this machine (for its CPU use)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    comm = Path(f"/proc/{pid}/comm")
    return pid if comm.exists() and "redis" in comm.read_text() else None


def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --------------------------------------------------------------------------- measurements


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


@dataclass
class LatencyResult:
    """One relay-latency phase, all client processes together."""

    rooms: int
    joined: int
    clients: int
    joined_s: float
    seconds: int
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: dict[str, float]
    machine_cpu: float
    client_cpu: float  # of the busiest client process
    client_cpu_total: float
    lag_p99_ms: float
    lateness_p99_ms: float
    failures: list[str] = field(default_factory=list)
    send_errors: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    slow_ms: float = math.nan  # the threshold of a "slow" message: 10 ms or 10 x p50
    slow_seconds: list[int] = field(default_factory=list)  # seconds of the run they were sent in
    slow: int = 0
    lag_max_ms: float = math.nan
    # per node, (second of the run, ms) of each garbage collection; empty dict: not logged
    server_gc: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def gc_text(self) -> str:
        """The servers' long garbage-collection pauses during the phase, in words."""
        parts = []
        for name, pauses in self.server_gc.items():
            long = [f"{ms:.0f} ms in second {int(at)}" for at, ms in pauses if ms >= GC_PAUSE_MS]
            parts.append(f"{name} {len(long)}" + (f" ({', '.join(long[:6])})" if long else ""))
        return "; ".join(parts)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def other_cpus(self) -> float:
        """CPUs that processes other than this benchmark's used during the phase (noise)."""
        ours = sum(self.server_cpu.values()) + self.client_cpu_total
        return max(0.0, self.machine_cpu * (os.cpu_count() or 1) - ours)

    @property
    def verdict(self) -> tuple[str, str]:
        """(short, long): whether the client or a busy machine, not the servers, shaped this."""
        cpus = os.cpu_count() or 1
        if self.client_cpu > 0.7:
            return "CLIENT-BOUND", (
                f"a client process was {self.client_cpu:.0%} busy: the CLIENT is a bottleneck, "
                "use more --clients"
            )
        if self.machine_cpu > 0.7 or self.other_cpus > 0.3:
            return f"contended ({self.other_cpus:.1f} CPU other)", (
                f"the machine's {cpus} CPUs were {self.machine_cpu:.0%} busy ("
                f"{self.other_cpus:.1f} CPUs by processes outside this benchmark): servers, Redis "
                "and client waited for CPU, so the tail includes scheduling delays"
            )
        # epoll waits in whole milliseconds, so ~1 ms of lag is the floor of an idle loop.
        if (self.lag_p99_ms > 2 and self.lag_p99_ms > 0.25 * self.p99_ms) or (
            self.lateness_p99_ms > 20
        ):
            return "client lagged", "the client's loop lagged: the CLIENT may be a bottleneck"
        return "ok", "the client is not the bottleneck"


@dataclass
class IdleResult:
    """The idle-connections phase."""

    wanted: int
    held: int
    clients: int
    joined_s: float
    rss_before_kib: int
    rss_after_kib: int
    rss_closed_kib: int
    failures: list[str] = field(default_factory=list)

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.held if self.held else math.nan


def auto_clients(units: int, per_client: int, nodes: int) -> int:
    """Client processes for `units`: one per `per_client`, leaving a CPU for each server node."""
    spare = max(1, (os.cpu_count() or 1) - nodes)
    return max(1, min(math.ceil(units / per_client), spare))


def run_latency(
    n: int,
    interviews: list[tuple[int, str]],
    recruiters: Node,
    candidates: Node,
    cookies: dict[str, str],
    seconds: int,
    processes: int,
    watch: dict[str, int],
    nodes: list[Node],
) -> LatencyResult:
    """Open `n` rooms, relay one offer per room per second, and gather the latencies.

    `watch` names the server-side processes (nodes, Redis) whose CPU use is reported.
    """
    rooms = [(iid, token, g / n) for g, (iid, token) in enumerate(interviews[:n])]
    jobs = [
        Job("latency", rooms[w::processes], recruiters.url, candidates.url, cookies, seconds)
        for w in range(processes)
    ]
    with clients(jobs) as group:
        ready = group.collect("ready", 60 + n * 0.15)
        time.sleep(1.0)  # let the presence broadcasts of the last joins settle
        start_at = time.perf_counter() + 1.0
        group.tell(("go", start_at))
        time.sleep(max(0.0, start_at - time.perf_counter()))
        wall_start = time.time()
        cpu0 = {name: cpu_seconds(pid) for name, pid in watch.items()}
        ticks0, wall0 = machine_ticks(), time.perf_counter()
        time.sleep(max(0.0, start_at + seconds - time.perf_counter()))
        wall = time.perf_counter() - wall0
        ticks1 = machine_ticks()
        server_cpu = {name: (cpu_seconds(pid) - cpu0[name]) / wall for name, pid in watch.items()}
        done = group.collect("done", GRACE_S + 60)
        gc_window = (wall_start, time.time())
    samples = [(at, latency * 1000) for d in done for at, latency in d["latencies"]]
    latencies = sorted(latency for _, latency in samples)
    slow_ms = max(10.0, 10 * percentile(latencies, 50))
    slow = sorted((at, latency) for at, latency in samples if latency > slow_ms)
    return LatencyResult(
        rooms=n,
        joined=sum(r["pairs"] for r in ready),
        clients=processes,
        joined_s=max(r["joined_s"] for r in ready),
        seconds=seconds,
        sent=sum(d["sent"] for d in done),
        received=sum(d["received"] for d in done),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else math.nan,
        server_cpu=server_cpu,
        machine_cpu=(ticks1[0] - ticks0[0]) / max(1, ticks1[1] - ticks0[1]),
        client_cpu=max(d["cpu"] for d in done),
        client_cpu_total=sum(d["cpu"] for d in done),
        lag_p99_ms=max(d["lag_p99"] for d in done) * 1000,
        lateness_p99_ms=max(d["lateness_p99"] for d in done) * 1000,
        failures=[f for r in ready for f in r["failures"]],
        send_errors=[e for d in done for e in d["send_errors"]],
        closed=[c for d in done for c in d["closed"]],
        slow_ms=slow_ms,
        slow_seconds=sorted({int(at) for at, _ in slow}),
        slow=len(slow),
        lag_max_ms=max(d["lag_max"] for d in done) * 1000,
        server_gc={node.name: node.gc_pauses(*gc_window) for node in nodes},
    )


def hold_idle(
    rooms: list[tuple[int, str]],
    node: Node,
    cookies: dict[str, str],
    per_client: int,
    concurrency: int = 0,
) -> tuple[list[Any], Clients]:
    """Start client processes that join a recruiter and a candidate to each room and hold them."""
    count = max(1, min(math.ceil(2 * len(rooms) / per_client), 8))
    entries = [(iid, token, 0.0) for iid, token in rooms]
    jobs = [
        Job("idle", entries[w::count], node.url, node.url, cookies, concurrency=concurrency)
        for w in range(count)
    ]
    group = Clients(jobs)
    try:
        return group.collect("ready", 60 + 2 * len(rooms) * 0.03), group
    except BaseException:
        release(group, 2)
        raise


def release(group: Clients, timeout: float = 30) -> None:
    """Tell idle client processes to close their sockets, and wait for them."""
    group.tell(("close",))
    group.stop(timeout)


def run_idle(
    count: int, interviews: list[tuple[int, str]], node: Node, cookies: dict[str, str]
) -> IdleResult:
    """Hold `count` joined WebSockets on `node` and read its RSS before and after."""
    # Warm-up: the first joins load code and fill caches that are no per-connection cost.
    _, group = hold_idle(interviews[:20], node, cookies, IDLE_PER_CLIENT)
    release(group)
    time.sleep(2)
    before = rss_kib(node.process.pid)
    ready, group = hold_idle(interviews[: count // 2], node, cookies, IDLE_PER_CLIENT)
    try:
        time.sleep(3)  # presence broadcasts of the last joins
        after = rss_kib(node.process.pid)
    finally:
        release(group)
    time.sleep(3)
    return IdleResult(
        wanted=count,
        held=2 * sum(r["pairs"] for r in ready),
        clients=len(group.processes),
        joined_s=max(r["joined_s"] for r in ready),
        rss_before_kib=before,
        rss_after_kib=after,
        rss_closed_kib=rss_kib(node.process.pid),
        failures=[f for r in ready for f in r["failures"]],
    )


@dataclass
class JoinsResult:
    """The --joins phase: sockets opened and joined as fast as the clients can."""

    wanted: int
    joined: int
    clients: int
    wall_s: float
    server_cpu_s: float
    load: str
    failures: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.joined / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def per_cpu_s(self) -> float:
        """Joins per second of the server's own CPU: its capacity on an unloaded core."""
        return self.joined / self.server_cpu_s if self.server_cpu_s > 0 else math.nan


def load_average() -> str:
    """The machine's 1-minute load average, for the record beside a number."""
    return f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def run_joins(
    count: int, interviews: list[tuple[int, str]], node: Node, cookies: dict[str, str]
) -> JoinsResult:
    """Open and join `count` WebSockets (a recruiter and a candidate per room), then close them."""
    _, group = hold_idle(interviews[:20], node, cookies, IDLE_PER_CLIENT)  # warm-up
    release(group)
    time.sleep(1)
    load = load_average()
    cpu0 = cpu_seconds(node.process.pid)
    ready, group = hold_idle(
        interviews[: count // 2], node, cookies, IDLE_PER_CLIENT, JOINS_CONCURRENCY
    )
    cpu = cpu_seconds(node.process.pid) - cpu0
    release(group)
    time.sleep(2)
    return JoinsResult(
        wanted=count,
        joined=2 * sum(r["pairs"] for r in ready),
        clients=len(group.processes),
        wall_s=max(r["ended"] for r in ready) - min(r["began"] for r in ready),
        server_cpu_s=cpu,
        load=load,
        failures=[f for r in ready for f in r["failures"]],
    )


@dataclass
class StormResult:
    """The --storm phase: joined pages, the node restarted, every page back."""

    wanted: int
    held: int
    rejoined: int
    down_s: float  # SIGTERM until the new process accepted connections
    after_up_s: float  # the new process accepting until the last page joined again
    after_stop_s: float  # SIGTERM until the last page joined again
    attempts_max: int
    errors: dict[str, int]
    load: str


def run_storm(
    count: int,
    interviews: list[tuple[int, str]],
    node: Node,
    cookies: dict[str, str],
    restart: Any,
) -> tuple[StormResult, Node]:
    """Hold `count` joined pages, restart the node on its port, time until all rejoined."""
    rooms = [(iid, token, 0.0) for iid, token in interviews[: count // 2]]
    processes = max(1, min(math.ceil(count / IDLE_PER_CLIENT), 8))
    jobs = [
        Job("storm", rooms[w::processes], node.url, node.url, cookies) for w in range(processes)
    ]
    with clients(jobs) as group:
        ready = group.collect("ready", 60 + count * 0.03)
        held = 2 * sum(r["pairs"] for r in ready)
        load = load_average()
        stopped = time.time()
        stop_node(node)
        node = restart(node.port)
        up = time.time()
        done = group.collect("done", 120)
    times = [t for d in done for t in d["times"]]
    errors: Counter[str] = Counter()
    for d in done:
        errors.update(d["errors"])
    last = max(times, default=math.nan)
    return StormResult(
        wanted=count,
        held=held,
        rejoined=len(times),
        down_s=up - stopped,
        after_up_s=last - up,
        after_stop_s=last - stopped,
        attempts_max=max((a for d in done for a in d["attempts"]), default=0),
        errors=dict(errors),
        load=load,
    ), node


# --------------------------------------------------------------------------- output


def describe_joins(r: JoinsResult) -> str:
    """The lines printed after the --joins phase."""
    lines = [
        f"joins: {r.joined} of {r.wanted} WebSockets opened and joined in {r.wall_s:.2f} s by "
        f"{r.clients} client process(es) = {r.per_s:.0f} joins/s; the server used "
        f"{r.server_cpu_s:.2f} CPU s = {r.per_cpu_s:.0f} joins per server CPU second "
        f"(load average {r.load} before)"
    ]
    if r.failures:
        lines.append(f"  {len(r.failures)} rooms failed to join, e.g. {r.failures[0]}")
    return "\n".join(lines)


def describe_storm(r: StormResult) -> str:
    """The lines printed after the --storm phase."""
    return (
        f"storm: {r.held} of {r.wanted} pages joined, node restarted (down {r.down_s:.1f} s); "
        f"{r.rejoined} rejoined, the last {r.after_up_s:.1f} s after the node was up "
        f"({r.after_stop_s:.1f} s after SIGTERM), at most {r.attempts_max} attempt(s) a page; "
        f"failed attempts {r.errors or 'none'} (load average {r.load} before)"
    )


def ms(value: float) -> str:
    """Milliseconds for a table cell."""
    return "-" if math.isnan(value) else f"{value:.2f}"


def describe_latency(r: LatencyResult) -> str:
    """The lines printed after one latency phase."""
    cpu = "  ".join(f"{name} {share:.0%}" for name, share in r.server_cpu.items())
    lines = [
        f"latency, {r.rooms} rooms: {r.joined} joined ({2 * r.joined} WebSockets) in "
        f"{r.joined_s:.1f} s by {r.clients} client process(es); {r.sent} sent, "
        f"{r.received} received, {r.lost} lost; p50 {ms(r.p50_ms)} ms, p99 {ms(r.p99_ms)} ms, "
        f"max {ms(r.max_ms)} ms",
        f"  server CPU {cpu}; machine CPU busy {r.machine_cpu:.0%}; client CPU "
        f"{r.client_cpu:.0%} (busiest process), loop lag p99 {ms(r.lag_p99_ms)} ms (max "
        f"{ms(r.lag_max_ms)}), "
        f"send lateness p99 {ms(r.lateness_p99_ms)} ms: {r.verdict[1]}",
    ]
    if r.server_gc:
        lines.append(
            f"  server garbage collections of {GC_PAUSE_MS:.0f} ms or more during the phase: "
            f"{r.gc_text()}"
        )
    if r.slow:
        lines.append(
            f"  {r.slow} messages took over {r.slow_ms:.0f} ms; they were sent during second(s) "
            f"{', '.join(str(s) for s in r.slow_seconds)} of 0..{r.seconds - 1}"
        )
    if r.send_errors:
        lines.append(f"  {len(r.send_errors)} offers could not be sent, e.g. {r.send_errors[0]}")
    if r.closed:
        lines.append(f"  {len(r.closed)} sockets were closed during the run, e.g. {r.closed[0]}")
    if r.failures:
        lines.append(f"  {len(r.failures)} rooms failed to join, e.g. {r.failures[0]}")
    return "\n".join(lines)


def describe_idle(r: IdleResult) -> str:
    """The lines printed after the idle phase."""
    lines = [
        f"idle: {r.held} of {r.wanted} WebSockets held joined ({r.held // 2} rooms, recruiter + "
        f"candidate) by {r.clients} client process(es), joined in {r.joined_s:.1f} s; server RSS "
        f"{r.rss_before_kib / 1024:.1f} MiB -> {r.rss_after_kib / 1024:.1f} MiB = "
        f"{r.kib_per_connection:.1f} KiB per connection; {r.rss_closed_kib / 1024:.1f} MiB "
        "after they closed"
    ]
    if r.failures:
        lines.append(f"  {len(r.failures)} rooms failed to join, e.g. {r.failures[0]}")
    return "\n".join(lines)


def summary(latency: list[LatencyResult], idle: IdleResult | None, mode: str) -> str:
    """The compact table printed at the end."""
    label = "CPU " + "/".join(latency[0].server_cpu) if latency else "server CPU"
    head = (
        f"{'rooms':>6} {'clients':>7} {'sent':>7} {'received':>8} {'lost':>5} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>8} {label:>14} {'GC max ms':>10}  client"
    )
    rows = [f"summary: {mode}", head]
    for r in latency:
        cpu = "/".join(f"{share:.0%}" for share in r.server_cpu.values())
        gc_max = "/".join(
            f"{max((took for _, took in p), default=0):.0f}" for p in r.server_gc.values()
        )
        rows.append(
            f"{r.rooms:>6} {r.clients:>7} {r.sent:>7} {r.received:>8} {r.lost:>5} "
            f"{ms(r.p50_ms):>7} {ms(r.p99_ms):>7} {ms(r.max_ms):>8} {cpu:>14} {gc_max or '-':>10}  "
            f"{r.verdict[0]}"
        )
    if idle:
        rows.append(
            f"idle: {idle.held} connections, RSS {idle.rss_before_kib / 1024:.1f} -> "
            f"{idle.rss_after_kib / 1024:.1f} MiB, {idle.kib_per_connection:.1f} KiB/connection"
        )
    rows.append(
        f"machine: {os.cpu_count()} CPUs (os.cpu_count()), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, aiohttp {aiohttp.__version__}"
    )
    return "\n".join(rows)


def log_problems(node: Node, limit: int = 8) -> list[str]:
    """Warnings and errors in a server's log, each with its exception, counted, the first few."""
    exception = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b")
    stamp = re.compile(r"^\d{4}-\d\d-\d\d [\d:,.]+ (\w+) (.*)$")
    seen: dict[str, int] = {}
    record: list[str] = []  # the current warning or error: its message, then its traceback

    def flush() -> None:
        if record:
            # the exception's "Type: message" line, the last one in the traceback
            raised = [line for line in record[1:] if exception.match(line)] or record[-1:]
            last = re.sub(r"\b\d+\b", "N", raised[-1].strip())[:200] if raised else ""
            key = f"{record[0]} [{last}]" if last else record[0]
            seen[key] = seen.get(key, 0) + 1
            record.clear()

    for line in node.log.read_text(errors="replace").splitlines():
        match = stamp.match(line)
        if match:
            flush()
            if match.group(1) in {"WARNING", "ERROR", "CRITICAL"}:
                record.append(f"{match.group(1)} {match.group(2)}")
        elif record:
            record.append(line)
    flush()
    return [f"{count}x {key}" for key, count in list(seen.items())[:limit]]


# --------------------------------------------------------------------------- main


def raise_file_limit() -> int:
    """Raise the open-file soft limit to the hard limit (servers inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM and the time limit into exceptions so that cleanup runs."""
    if signum == signal.SIGALRM:
        raise TimeoutError("the benchmark ran past --time-limit")
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", default="10,100,1000", help="room counts, comma-separated")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of offers per room count")
    parser.add_argument("--idle", type=int, default=5000, help="idle WebSockets to hold (0: skip)")
    parser.add_argument("--two-nodes", action="store_true", help="node A + node B over Redis")
    parser.add_argument(
        "--joins", type=int, default=0, help="open and join this many WebSockets; print joins/s"
    )
    parser.add_argument(
        "--storm",
        type=int,
        default=0,
        help="hold this many joined pages, restart node A, print the time until all rejoined",
    )
    parser.add_argument(
        "--clients", type=int, default=0, help="client processes per phase (0: automatic)"
    )
    parser.add_argument("--time-limit", type=int, default=600, help="abort after this many s")
    parser.add_argument(
        "--no-gc-log",
        dest="gc_log",
        action="store_false",
        help="do not time the servers' garbage collections (a sitecustomize on their PYTHONPATH)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    args = parser.parse_args(argv)
    args.room_counts = [int(x) for x in args.rooms.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    """Seed, start the servers, run every phase, print the results, clean up."""
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGALRM, _interrupted)
    signal.alarm(args.time_limit)
    files = raise_file_limit()
    mode = (
        "two nodes over Redis (recruiters on A, candidates on B; idle on A)"
        if args.two_nodes
        else "one node, in-memory bus"
    )
    print(f"signaling benchmark: {mode}; open-file limit {files}; {os.cpu_count()} CPUs")
    print(
        f"client processes for latency: {args.clients} (--clients)"
        if args.clients
        else f"client processes for latency: one per {ROOMS_PER_CLIENT} rooms, at most "
        "os.cpu_count() - server nodes (at least 1), so clients do not starve the servers; "
        f"for idle: one per {IDLE_PER_CLIENT} connections"
    )
    work = Path(tempfile.mkdtemp(prefix="p2pi-bench-"))
    database_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    redis_url = REDIS_URL if args.two_nodes else ""
    nodes: list[Node] = []
    latency: list[LatencyResult] = []
    idle: IdleResult | None = None
    try:
        from rooms.migrate import upgrade

        began = time.perf_counter()
        upgrade(database_url)
        wanted = max(
            [*args.room_counts, math.ceil(args.idle / 2), args.joins // 2, args.storm // 2, 20]
        )
        interviews = asyncio.run(seed(database_url, wanted))
        print(f"seeded {len(interviews)} interviews in {time.perf_counter() - began:.1f} s")
        if redis_url:
            flush_redis(redis_url)
        secret = secrets.token_urlsafe(32)
        probe = None
        if args.gc_log:
            probe = work / "gc-probe"
            probe.mkdir()
            (probe / "sitecustomize.py").write_text(GC_PROBE)
        nodes.append(start_node("A", work, database_url, secret, redis_url, probe))
        if args.two_nodes:
            nodes.append(start_node("B", work, database_url, secret, redis_url, probe))
        a, b = nodes[0], nodes[-1]
        cookies = asyncio.run(sign_in(a.url))
        watch = {node.name: node.process.pid for node in nodes}
        if redis_url and (pid := redis_pid(redis_url)):
            watch["Redis"] = pid
        print(f"servers: {', '.join(f'{n.name} {n.url} (pid {n.process.pid})' for n in nodes)}")

        if args.joins >= 2:
            print(describe_joins(run_joins(args.joins, interviews, a, cookies)), flush=True)
        if args.idle >= 2:
            idle = run_idle(args.idle, interviews, a, cookies)
            print(describe_idle(idle), flush=True)
        if args.storm >= 2:

            def restart(port: int) -> Node:
                return start_node("A", work, database_url, secret, redis_url, probe, port)

            storm, nodes[0] = run_storm(args.storm, interviews, a, cookies, restart)
            a = nodes[0]
            watch[a.name] = a.process.pid
            print(describe_storm(storm), flush=True)
        for n in args.room_counts:
            processes = args.clients or auto_clients(n, ROOMS_PER_CLIENT, len(nodes))
            result = run_latency(
                n, interviews, a, b, cookies, args.seconds, processes, watch, nodes
            )
            latency.append(result)
            print(describe_latency(result), flush=True)
            time.sleep(1)

        print()
        print(summary(latency, idle, mode))
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except TimeoutError as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        for node in nodes:
            stop_node(node)
        for node in nodes:
            problems = log_problems(node)
            print(
                f"server {node.name} log ({node.log if args.keep else 'deleted'}): "
                + (
                    "no warnings or errors"
                    if not problems
                    else f"problems of {len(problems)} kind(s)"
                )
            )
            for line in problems:
                print(f"  {line[:300]}")
        if redis_url:
            with contextlib.suppress(Exception):
                flush_redis(redis_url)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
