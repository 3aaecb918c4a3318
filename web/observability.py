"""For operators: /metrics in Prometheus' text format (only with METRICS_TOKEN), and the
interview's id on the log lines of requests about one interview."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from telemetry.logs import working_on
from telemetry.metrics import NodeGauges, NodeState, exposition, node_registry
from web.errors import json_error
from web.keys import SETTINGS

routes = web.RouteTableDef()
_INTERVIEW_PATH = re.compile(r"/(?:api/)?interviews/([0-9]{1,9})(?:/|$)")


@dataclass
class NodeMetrics:
    """This node's registry, and how to read the state its gauges show."""

    read_state: Callable[[], Awaitable[NodeState]]

    def __post_init__(self) -> None:
        self.gauges = NodeGauges(lambda: self.current)
        self.current = NodeState()
        self.registry = node_registry(self.gauges)


METRICS = web.AppKey("node_metrics", NodeMetrics)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The metrics, for a scraper that sends `Authorization: Bearer <METRICS_TOKEN>`."""
    token = request.app[SETTINGS].metrics_token
    if not token:
        raise web.HTTPNotFound()
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        response = json_error(401, "Send the metrics token as Authorization: Bearer <token>.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    node = request.app[METRICS]
    node.current = await node.read_state()
    return web.Response(
        body=exposition(node.registry),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


@web.middleware
async def interview_in_logs(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Requests under /interviews/<id> (and its API) log as that interview's work."""
    match = _INTERVIEW_PATH.match(request.path)
    working_on(int(match.group(1)) if match else None)
    return await handler(request)
