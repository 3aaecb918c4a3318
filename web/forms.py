"""Reading submitted forms safely and rendering them back with errors."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

MAX_FIELD_CHARS = 2000


async def read_form(request: web.Request) -> dict[str, str]:
    """The posted fields as plain strings, each cut to a sane length."""
    form = await request.post()
    return {k: str(v)[:MAX_FIELD_CHARS] for k, v in form.items() if isinstance(v, str)}


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
