"""The one JSON error shape of every API: `{"error": text for people, "field"?: the form field}`."""

from __future__ import annotations

from aiohttp import web


def json_error(status: int, message: str, field: str | None = None) -> web.Response:
    """A JSON error answer; `error` is what the page shows the person."""
    body: dict[str, str] = {"error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)
