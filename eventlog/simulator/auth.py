"""HTTP basic auth the way Companies House uses it: the key is the user name, no password."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

__all__ = ["presented_key", "unauthorized"]


def presented_key(request: web.Request) -> str | None:
    """The user name of a Basic Authorization header, or None when absent or unreadable.

    The password is ignored, as the real service ignores it.
    """
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


def unauthorized() -> web.Response:
    """The 401 the real API answers for a missing or unknown key."""
    return web.json_response(
        {"error": "Invalid Authorization", "type": "ch:service"},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="chledger-simulator"'},
    )
