"""One envelope per sealed object: AES-256-GCM over its personal fields, no I/O.

An object's personal fields (their exact JSON bytes, as `msgspec.Raw`) are encoded as one JSON
object and encrypted with the person's key and a fresh 96-bit random nonce. The associated data
binds the ciphertext to the subject and to the names of the fields it holds, so an envelope
moved to another person, or a field list edited, fails to open rather than opening as someone
else. The envelope replaces those fields under `_sealed`:

    {"officer_role": "director", ..., "_sealed": {"v": 1, "s": "officer:abc",
     "f": ["name", "date_of_birth", ...], "n": "<nonce, base64>", "c": "<ciphertext+tag, base64>"}}

An envelope without `n` and `c` was erased when it was written (the subject had been forgotten
before the fetch): the fields were dropped, not encrypted.

Opening never raises: a missing key, a wrong key, a tampered or malformed envelope all come
back as erased, with a reason that names no data. Random nonces are safe here: a key seals one
person's few pages, far from the 2^32 messages where GCM's random nonces start to matter.
"""

from __future__ import annotations

import os
from typing import Mapping, NamedTuple

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SEALED", "VERSION", "Envelope", "Opened", "seal", "erased_envelope", "open_envelope",
           "decode_envelope", "associated_data", "cipher"]

SEALED = "_sealed"  # the key of the envelope inside a sealed object
VERSION = 1
NONCE_BYTES = 12
_AAD_PREFIX = b"chledger-sealed/1\x1f"


class Envelope(msgspec.Struct, frozen=True, omit_defaults=True):
    v: int
    s: str  # the subject, in clear: it finds the key
    f: list[str]  # the sealed fields' names, in order
    n: bytes | None = None  # nonce (base64 in JSON); None: erased when written
    c: bytes | None = None  # ciphertext with its 16-byte tag


class Opened(NamedTuple):
    """What opening gave: the fields (None when erased) and, when erased, why."""

    fields: dict[str, msgspec.Raw] | None
    subject: str
    reason: str = ""

    @property
    def erased(self) -> bool:
        return self.fields is None


_encode = msgspec.json.Encoder().encode
_decode_envelope = msgspec.json.Decoder(Envelope).decode
_decode_fields = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode


def associated_data(subject: str, fields: list[str]) -> bytes:
    return _AAD_PREFIX + subject.encode() + b"\x1f" + "\x1e".join(fields).encode()


def cipher(key: bytes) -> AESGCM:
    return AESGCM(key)


def seal(aead: AESGCM, subject: str, fields: Mapping[str, msgspec.Raw]) -> msgspec.Raw:
    """The envelope (as JSON) holding `fields`, encrypted under `aead` (the subject's key)."""
    names = list(fields)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = aead.encrypt(nonce, _encode(dict(fields)), associated_data(subject, names))
    return msgspec.Raw(_encode(Envelope(VERSION, subject, names, nonce, ciphertext)))


def erased_envelope(subject: str, names: list[str]) -> msgspec.Raw:
    """The envelope of an object whose subject is already forgotten: names only, no data."""
    return msgspec.Raw(_encode(Envelope(VERSION, subject, names)))


def decode_envelope(raw: msgspec.Raw | bytes) -> Envelope | None:
    try:
        env = _decode_envelope(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return env if env.v == VERSION else None


def open_envelope(env: Envelope, aead: AESGCM | None) -> Opened:
    """The sealed fields, or erased (no key, a key that does not open it, erased when written)."""
    if env.n is None or env.c is None:
        return Opened(None, env.s, "erased when written")
    if aead is None:
        return Opened(None, env.s, "no key")
    try:
        plain = aead.decrypt(env.n, env.c, associated_data(env.s, env.f))
    except (InvalidTag, ValueError):  # wrong key, tampered bytes, a nonce of the wrong size
        return Opened(None, env.s, "the key does not open it")
    try:
        fields = _decode_fields(plain)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Opened(None, env.s, "malformed contents")
    if list(fields) != env.f:
        return Opened(None, env.s, "malformed contents")
    return Opened(fields, env.s)
