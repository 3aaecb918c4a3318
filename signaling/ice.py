"""ICE servers for browsers, with time-limited TURN credentials (coturn's REST API scheme)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

TURN_CREDENTIAL_TTL_S = 12 * 3600


def turn_credentials(secret: str, user: str, now: float | None = None) -> tuple[str, str]:
    """(username, credential) as coturn's `use-auth-secret` checks them: HMAC-SHA1 of "expiry:user"."""
    expiry = int((now if now is not None else time.time()) + TURN_CREDENTIAL_TTL_S)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(
    servers: list[dict[str, Any]], turn_secret: str, user: str, now: float | None = None
) -> list[dict[str, Any]]:
    """The configured servers; TURN entries without a username get fresh REST credentials."""
    result: list[dict[str, Any]] = []
    for server in servers:
        entry = dict(server)
        urls = entry["urls"] if isinstance(entry["urls"], list) else [entry["urls"]]
        is_turn = any(str(u).startswith(("turn:", "turns:")) for u in urls)
        if is_turn and turn_secret and "username" not in entry:
            entry["username"], entry["credential"] = turn_credentials(turn_secret, user, now)
        result.append(entry)
    return result
