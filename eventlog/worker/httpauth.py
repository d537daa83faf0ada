"""HTTP basic auth as Companies House wants it: the key as user name, an empty password.

Built by hand because aiohttp 3.14 deprecates `BasicAuth`; in one place because
both the stream client and the sender use it, and neither may ever log it.
"""

from __future__ import annotations

import base64

__all__ = ["basic_auth_header"]


def basic_auth_header(key: str | None) -> dict[str, str]:
    if not key:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode("ascii")}
