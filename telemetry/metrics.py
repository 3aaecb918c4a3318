"""The service's Prometheus metrics. Counters and histograms are observed where things happen;
gauges of a node's state are read when /metrics is scraped (`NodeGauges`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Not in prometheus_client's global registry: each node's /metrics has a registry of its own
# holding these and its gauges (several app instances can live in one test process).
RECORDED_BYTES = Counter(
    "p2pi_recorded_bytes", "Bytes of Ogg Opus written to recordings.", registry=None
)
JOB_SECONDS = Histogram(
    "p2pi_job_seconds",
    "Time a job took to run, by kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
    registry=None,
)
JOB_WAIT_SECONDS = Histogram(
    "p2pi_job_wait_seconds",
    "Time a job waited in the Redis queue before a worker took it, by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 15, 60, 300),
    registry=None,
)
TRANSCRIPTION_SECONDS = Histogram(
    "p2pi_transcription_seconds",
    "Time the speech engine took per pass (partial or final).",
    ["pass"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
    registry=None,
)
SCORE_DELAY_SECONDS = Histogram(
    "p2pi_score_delay_seconds",
    "From the recruiter moving on to the answer's score being stored and sent.",
    buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120),
    registry=None,
)
LOST_AUDIO_SECONDS = Counter(
    "p2pi_lost_audio_seconds",
    "Audio that did not arrive in time to be recorded: `silent` (stored as silence) or "
    "`rebuilt` (decoded from the FEC copy in the next packet).",
    ["outcome"],
    registry=None,
)
ERRORS = Counter(
    "p2pi_errors", "Errors logged, by kind (the module that logged them).", ["kind"], registry=None
)
EVENT_METRICS = (
    RECORDED_BYTES,
    JOB_SECONDS,
    JOB_WAIT_SECONDS,
    TRANSCRIPTION_SECONDS,
    SCORE_DELAY_SECONDS,
    LOST_AUDIO_SECONDS,
    ERRORS,
)


@dataclass(frozen=True)
class Backlog:
    """Jobs of one queue not yet finished, and how long the oldest of them has waited."""

    queue: str
    waiting: int
    oldest_age_s: float


@dataclass
class NodeState:
    """What the gauges show, read at each scrape."""

    sockets: int = 0
    calls: int = 0
    recordings: int = 0
    backlog: tuple[Backlog, ...] = ()


class NodeGauges(Collector):
    """This node's gauges, from a function reading its parts' state."""

    def __init__(self, state: Callable[[], NodeState]) -> None:
        self.state = state

    def collect(self):  # type: ignore[no-untyped-def]
        state = self.state()
        for name, doc, value in (
            ("p2pi_sockets", "Signaling WebSockets open on this node.", state.sockets),
            ("p2pi_calls", "Calls with at least one page on this node.", state.calls),
            ("p2pi_recordings_active", "Participants being recorded here.", state.recordings),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        waiting = GaugeMetricFamily(
            "p2pi_jobs_waiting", "Jobs queued or running, per queue.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "p2pi_jobs_oldest_age_seconds",
            "Age of the oldest job queued or running, per queue.",
            labels=["queue"],
        )
        for backlog in state.backlog:
            waiting.add_metric([backlog.queue], backlog.waiting)
            oldest.add_metric([backlog.queue], backlog.oldest_age_s)
        yield waiting
        yield oldest


def node_registry(gauges: NodeGauges) -> CollectorRegistry:
    """A registry with the process's event metrics and this node's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    for metric in EVENT_METRICS:
        registry.register(metric)
    registry.register(gauges)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(registry)


class ErrorCounter(logging.Handler):
    """Counts every ERROR (and worse) log record under its logger's name."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        ERRORS.labels(record.name).inc()


def serve_metrics(host: str, port: int) -> None:
    """The process's event metrics over HTTP on their own address (a worker has no web app),
    from a thread of prometheus_client."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    for metric in EVENT_METRICS:
        registry.register(metric)
    start_http_server(port, addr=host, registry=registry)
