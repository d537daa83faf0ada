"""Stream lines as bytes, in today's shape (nulls stripped) or the older one (explicit nulls).

Since early 2025 the real stream leaves out null fields, so an absent field is not a null one.
Before that, a record's empty optionals arrived as ``null``. A client must read both; the older
shape is ``SimulatorConfig.null_fields``. ``fields_changed`` is the exception: the stream's
envelope never carried it as null (it is left out when empty, in both eras).
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["encode_line"]

_encoder = msgspec.json.Encoder()
_NEVER_NULL = frozenset({"fields_changed"})


def _with_nulls(value: Any) -> Any:
    """Builtins for ``value`` keeping every declared field, None ones as null, in field order."""
    if isinstance(value, msgspec.Struct):
        return {
            name: _with_nulls(getattr(value, name))
            for name in value.__struct_fields__
            if not (name in _NEVER_NULL and getattr(value, name) is None)
        }
    if isinstance(value, tuple):
        return [_with_nulls(item) for item in value]
    return value


def encode_line(event: msgspec.Struct, *, null_fields: bool) -> bytes:
    """One newline-terminated stream line for ``event``."""
    body = _with_nulls(event) if null_fields else event
    return _encoder.encode(body) + b"\n"
