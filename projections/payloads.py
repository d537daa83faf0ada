"""The few fields projectors read from Companies House payloads, as small Structs.

Ledger entries keep `data`/`body` as `msgspec.Raw`; decoding only the fields a
table needs (msgspec skips the rest without building it) is most of what makes
replay fast. Nested values stored as JSON text (addresses, SIC codes) stay
`Raw`, so they are written byte for byte as Companies House sent them.

Companies House is not always true to its own schema, and a projector must
never crash on a payload: when the typed decode fails, a lenient path reads the
same fields from a plain dict, turning unexpected types into JSON text. A
payload that is not a JSON object at all decodes to None.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "Profile",
    "OfficerItem",
    "OfficerPage",
    "decode_profile",
    "decode_officer_page",
    "profile_value",
    "raw_text",
    "officer_id",
]

_ABSENT = msgspec.Raw(b"")


class Profile(msgspec.Struct):
    """A company profile (stream `data` or REST body), only what `companies` stores."""

    company_number: str | None = None
    company_name: str | None = None
    company_status: str | None = None
    company_status_detail: str | None = None
    type: str | None = None
    jurisdiction: str | None = None
    date_of_creation: str | None = None
    etag: str | None = None
    registered_office_address: msgspec.Raw = _ABSENT
    sic_codes: msgspec.Raw = _ABSENT


PROFILE_FIELDS = frozenset(Profile.__struct_fields__)
_TEXT_FIELDS = tuple(f for f in Profile.__struct_fields__ if f not in ("registered_office_address", "sic_codes"))


class _OfficerRef(msgspec.Struct):
    appointments: str | None = None


class _OfficerLinks(msgspec.Struct):
    officer: _OfficerRef | None = None


class _DateOfBirth(msgspec.Struct):
    month: int | None = None
    year: int | None = None


class OfficerItem(msgspec.Struct):
    name: str | None = None
    officer_role: str | None = None
    appointed_on: str | None = None
    resigned_on: str | None = None
    nationality: str | None = None
    occupation: str | None = None
    country_of_residence: str | None = None
    date_of_birth: _DateOfBirth | None = None
    address: msgspec.Raw = _ABSENT
    links: _OfficerLinks | None = None


class OfficerPage(msgspec.Struct):
    items: list[OfficerItem] = []
    total_results: int | None = None
    start_index: int | None = None
    items_per_page: int | None = None


class _LoosePage(msgspec.Struct):
    items: list[msgspec.Raw] = []
    total_results: Any = None
    start_index: Any = None
    items_per_page: Any = None


_profile = msgspec.json.Decoder(Profile)
_page = msgspec.json.Decoder(OfficerPage)
_loose_page = msgspec.json.Decoder(_LoosePage)
_item = msgspec.json.Decoder(OfficerItem)
_any = msgspec.json.Decoder()
_encode = msgspec.json.encode
_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


def raw_text(raw: msgspec.Raw) -> str | None:
    """A nested JSON value as text for a TEXT column; absent or null is NULL."""
    if not raw or raw == b"null":
        return None
    return bytes(raw).decode()


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _encode(value).decode()


def _raw(value: Any) -> msgspec.Raw:
    return _ABSENT if value is None else msgspec.Raw(_encode(value))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def decode_profile(raw: msgspec.Raw) -> Profile | None:
    if not raw:
        return None
    try:
        return _profile.decode(raw)
    except _ERRORS:
        pass
    try:
        d = _any.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(d, dict):
        return None
    p = Profile(**{f: _text(d.get(f)) for f in _TEXT_FIELDS})
    p.registered_office_address = _raw(d.get("registered_office_address"))
    p.sic_codes = _raw(d.get("sic_codes"))
    return p


def profile_value(raw: msgspec.Raw, profile: Profile | None, field: str) -> Any:
    """`data[field]` of a profile, from the decoded Struct when it has the field."""
    if profile is None:
        return None
    if field in PROFILE_FIELDS:
        value = getattr(profile, field)
        return raw_text(value) if isinstance(value, msgspec.Raw) else value
    try:
        d = _any.decode(raw)
    except msgspec.DecodeError:
        return None
    return d.get(field) if isinstance(d, dict) else None


def _loose_item(raw: msgspec.Raw) -> OfficerItem:
    try:
        return _item.decode(raw)
    except _ERRORS:
        pass
    try:
        d = _any.decode(raw)
    except msgspec.DecodeError:
        d = None
    if not isinstance(d, dict):
        return OfficerItem()
    item = OfficerItem(**{f: _text(d.get(f)) for f in (
        "name", "officer_role", "appointed_on", "resigned_on", "nationality", "occupation",
        "country_of_residence")})
    dob = d.get("date_of_birth")
    if isinstance(dob, dict):
        item.date_of_birth = _DateOfBirth(month=_int(dob.get("month")), year=_int(dob.get("year")))
    item.address = _raw(d.get("address"))
    links = d.get("links")
    officer = links.get("officer") if isinstance(links, dict) else None
    if isinstance(officer, dict) and isinstance(officer.get("appointments"), str):
        item.links = _OfficerLinks(officer=_OfficerRef(appointments=officer["appointments"]))
    return item


def decode_officer_page(raw: msgspec.Raw) -> OfficerPage | None:
    """An officer-list page; None when the body is not an object with a list of items."""
    if not raw:
        return None
    try:
        return _page.decode(raw)
    except _ERRORS:
        pass
    try:
        loose = _loose_page.decode(raw)
    except _ERRORS:
        return None
    return OfficerPage(items=[_loose_item(r) for r in loose.items],
                       total_results=_int(loose.total_results), start_index=_int(loose.start_index),
                       items_per_page=_int(loose.items_per_page))


def officer_id(item: OfficerItem) -> str | None:
    """`/officers/<id>/appointments` → `<id>`: the person, stable across companies."""
    link = item.links.officer.appointments if item.links and item.links.officer else None
    if not link:
        return None
    parts = [p for p in link.split("/") if p]
    if len(parts) >= 2 and parts[0] == "officers":
        return parts[1]
    return None


class _LinksOnly(msgspec.Struct):
    links: Any = None


_links_only = msgspec.json.Decoder(_LinksOnly)


def lacks_officers_link(raw: msgspec.Raw) -> bool:
    """True when a profile's `links` is an object without (or with a null) `officers`: CH has no
    officer list behind it, and a call would be a wasted 404. A payload with no `links` at all
    (a bulk row, a deletion) says nothing, so False."""
    if not raw:
        return False
    data = bytes(raw)
    if b'"links"' not in data:
        return False  # no links object at all: says nothing
    if b'"officers"' in data and b'"officers":null' not in data and b'"officers": null' not in data:
        return False  # the usual case, without a second parse of the profile
    try:
        links = _links_only.decode(raw).links
    except _ERRORS:
        return False
    return isinstance(links, dict) and not links.get("officers")


FILING_HISTORY = "filing-history"
GAZETTE_STRIKE_OFF_TYPES = frozenset(("GAZ1", "GAZ1(A)"))  # first Gazette notice: compulsory, voluntary


class _Filing(msgspec.Struct):
    category: Any = None
    type: Any = None


_filing = msgspec.json.Decoder(_Filing)


def is_first_gazette_notice(raw: msgspec.Raw) -> bool:
    """True for a /filings item that proposes a strike-off: `category` `gazette`, `type` `GAZ1`
    (compulsory) or `GAZ1(A)` (voluntary). The notice is the proposal itself."""
    if not raw:
        return False
    try:
        item = _filing.decode(raw)
    except _ERRORS:
        return False
    return item.category == "gazette" and item.type in GAZETTE_STRIKE_OFF_TYPES
