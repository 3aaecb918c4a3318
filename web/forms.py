"""Reading submitted forms safely and rendering them back with errors."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from signaling import json_input
from web.i18n import gettext

MAX_FIELD_CHARS = 2000
MAX_JSON_BYTES = 1024 * 1024
"""As large as any request may be (the app's client_max_size)."""


async def read_post(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """`request.post()`, with a body that cannot be read as a form (a multipart body without
    its boundary, broken encoding) answered 400 instead of escaping as a 500."""
    try:
        return await request.post()
    except web.HTTPException:
        raise
    except (ValueError, AssertionError, LookupError, UnicodeError):
        raise web.HTTPBadRequest(
            text=gettext("The form could not be read. Reload the page and try again.")
        ) from None


async def read_form(request: web.Request) -> dict[str, str]:
    """The posted fields as plain strings, each cut to a sane length."""
    form = await read_post(request)
    return {k: str(v)[:MAX_FIELD_CHARS] for k, v in form.items() if isinstance(v, str)}


async def read_json(request: web.Request, expected: str = "Send a JSON object.") -> Any:
    """The request's JSON body through the one parser with size and depth limits; anything
    else is a 400 whose text (`expected`, or why the JSON was refused) the page shows."""
    body = await request.read()
    try:
        return json_input.loads(body, MAX_JSON_BYTES)
    except json_input.JsonRefused as exc:
        raise web.HTTPBadRequest(text=gettext(expected) if exc.invalid else str(exc)) from None


async def read_json_object(
    request: web.Request, expected: str = "Send a JSON object."
) -> dict[str, Any]:
    """Like read_json, for the endpoints that take one JSON object."""
    body = await read_json(request, expected)
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=gettext(expected))
    return body


def render_form(
    request: web.Request,
    template: str,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    """Re-render a form with what the user typed and a message per field."""
    return aiohttp_jinja2.render_template(
        template,
        request,
        {"values": values, "errors": errors or {}, **context},
        status=status if not errors or status != 200 else 422,
    )
