"""Subjects: the stable name of a person that their key, and their erasure, hang on.

A subject is what `forget` is given and what a sealed envelope carries in clear, so it must be
computable from what the operator knows (an officer id, an e-mail address) and must never be
the personal data itself:

- `officer:<id>`: the id in `links.officer.appointments` (`/officers/<id>/appointments`). One
  person across all their appointments, so forgetting it covers every company at once.
- `email:<sha256 hex>`: an e-mail address with no officer behind it, hashed after trimming and
  lower-casing. The address itself never reaches the database; the hash is not a secret (anyone
  who guesses the address can confirm it), only a way to name it without storing it. An e-mail
  found for an officer is sealed under the officer's subject, so forgetting the officer covers it.
- `appointment:<id>`: an item without an officer link but with its own
  (`/company/<number>/appointments/<id>`): that appointment, stable across fetches.
- `item:<sha256 hex>`: an item with neither link, from the company number, the name and the date
  of birth as sent. Stable while Companies House sends the same name; the hash stands in for
  the name without being it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Mapping

import msgspec

from eventlog.privacy.errors import BadSubject

__all__ = ["officer_subject", "email_subject", "item_subject", "parse_subject", "officer_id_of",
           "SUBJECT_KINDS"]

SUBJECT_KINDS = ("officer", "email", "appointment", "item")
_MAX = 200
_TOKEN = re.compile(r"[^\s/:\x00-\x1f\x7f]{1,%d}" % _MAX)
_SEP = b"\x1f"


class _Ref(msgspec.Struct):
    appointments: str | None = None


class _Links(msgspec.Struct):
    officer: _Ref | None = None
    self: str | None = None


_links = msgspec.json.Decoder(_Links)


def _check_token(value: str, what: str) -> str:
    text = value.strip()
    if not _TOKEN.fullmatch(text):
        raise BadSubject(f"not {what}: expected 1-{_MAX} characters without spaces, '/' or ':'")
    return text


def officer_subject(officer_id: str) -> str:
    """`officer:<id>` for an officer id as Companies House writes it in its links."""
    return "officer:" + _check_token(officer_id, "an officer id")


def email_subject(address: str) -> str:
    """`email:<sha256>` of the trimmed, lower-cased address; the address is not kept."""
    text = address.strip().lower()
    if "@" not in text or len(text) > 320 or any(c.isspace() for c in text):
        raise BadSubject("not an e-mail address (expected local@domain, without spaces)")
    return "email:" + hashlib.sha256(text.encode()).hexdigest()


def parse_subject(text: str) -> str:
    """What the operator typed (`forget X`) as a subject: an e-mail address, a subject already
    prefixed (`officer:…`, `email:…`, …), or a bare officer id."""
    value = text.strip()
    kind, sep, rest = value.partition(":")
    if sep and kind in SUBJECT_KINDS:
        if kind == "email" and "@" in rest:
            return email_subject(rest)
        return f"{kind}:{_check_token(rest, f'a {kind} subject')}"
    if "@" in value:
        return email_subject(value)
    return officer_subject(value)


def officer_id_of(links: msgspec.Raw | bytes | None) -> str | None:
    """`/officers/<id>/appointments` → `<id>`, from an item's raw `links`; None when absent."""
    parsed = _parse_links(links)
    link = parsed.officer.appointments if parsed and parsed.officer else None
    return _segment(link, "officers", 1)


def _parse_links(links: msgspec.Raw | bytes | None) -> _Links | None:
    if not links:
        return None
    try:
        return _links.decode(links)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _segment(link: str | None, first: str, index: int) -> str | None:
    if not link:
        return None
    parts = [p for p in link.split("/") if p]
    if len(parts) > index and parts[0] == first:
        token = parts[index]
        try:
            return _check_token(token, "an id")
        except BadSubject:
            return None
    return None


def item_subject(item: Mapping[str, msgspec.Raw], company_number: str | None) -> str:
    """The subject of one officer-list item (its raw fields), by the rules in the module doc."""
    parsed = _parse_links(item.get("links"))
    officer = _segment(parsed.officer.appointments if parsed and parsed.officer else None, "officers", 1)
    if officer:
        return "officer:" + officer
    if parsed and parsed.self and "/appointments/" in parsed.self:
        appointment = _segment(parsed.self, "company", 3)
        if appointment:
            return "appointment:" + appointment
    digest = hashlib.sha256(
        (company_number or "").encode() + _SEP + bytes(item.get("name") or b"") + _SEP
        + bytes(item.get("date_of_birth") or b"")).hexdigest()
    return "item:" + digest[:40]
