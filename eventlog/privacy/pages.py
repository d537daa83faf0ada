"""Sealing officer-list pages before they are appended, opening them for the projectors.

`Sealer` runs on the write path, inside the transaction that appends the page (it may create
keys there). `Opener` runs in the projectors and exports; it reads keys and the forgotten list
and turns a stored body back into the page the existing decoder expects: personal fields
restored, or the constant erased values (fields.ERASED_OFFICER_ITEM) when the person's key is
gone, the key does not open the envelope, or the person is on the forgotten list. The same
stored bytes and the same vault give the same page, live or in replay.

Both keep the page's own fields and each item's readable fields byte for byte (`msgspec.Raw`),
so an opened page differs from what Companies House sent only in the order of an item's fields.
Each lives for one transaction: its caches of keys and of the forgotten list must not outlive
a `forget` committed by another process.
"""

from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple

import apsw
import msgspec

from eventlog.privacy.envelope import SEALED, Opened, cipher, decode_envelope, erased_envelope, open_envelope, seal
from eventlog.privacy.errors import NotAPage, TransactionNeeded
from eventlog.privacy.fields import ERASED_OFFICER_ITEM, READABLE_OFFICER_FIELDS
from eventlog.privacy.scrub import secure_delete_on
from eventlog.privacy.subjects import item_subject
from eventlog.privacy.vault import KeyVault

__all__ = ["Sealer", "Opener", "SealedPage", "OpenedPage"]

Fields = dict[str, msgspec.Raw]

_page = msgspec.json.Decoder(dict[str, msgspec.Raw])
_items = msgspec.json.Decoder(list[msgspec.Raw])
_item = msgspec.json.Decoder(Fields)
_all_items = msgspec.json.Decoder(list[Fields])
_encode = msgspec.json.Encoder().encode
_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_MARK = b'"' + SEALED.encode() + b'"'


class SealedPage(NamedTuple):
    body: bytes
    items: int  # items sealed (or stored erased)
    keys_created: int
    erased: int  # items of forgotten subjects, stored without their personal fields


class OpenedPage(NamedTuple):
    body: bytes
    opened: int  # sealed items whose key opened them
    erased: int  # items shown erased (sealed without a working key, or on the forgotten list)


class Sealer:
    """Seals inside one write transaction; creates at most one key per subject."""

    def __init__(self, conn: apsw.Connection, now: str):
        if conn.getautocommit():
            raise TransactionNeeded("sealing needs the caller's open transaction (BEGIN IMMEDIATE), the one "
                                    "that appends the sealed entry, so a new key commits with it")
        # A key inserted without secure_delete can leave a stale copy of itself in the file when
        # its page splits, and no later delete would reach that copy (scrub.py): on from here.
        secure_delete_on(conn)
        self.vault = KeyVault(conn)
        self.now = now
        self._ciphers: dict[str, object] = {}  # subject -> AESGCM, or None when forgotten
        self.keys_created = 0

    def _cipher(self, subject: str):
        if subject in self._ciphers:
            return self._ciphers[subject]
        if self.vault.is_forgotten(subject):
            aead = None
        else:
            key = self.vault.key(subject)
            if key is None:
                key = self.vault.create(subject, self.now)
                self.keys_created += 1
            aead = cipher(key)
        self._ciphers[subject] = aead
        return aead

    def seal_object(self, obj: Mapping[str, msgspec.Raw], subject: str,
                    readable: Iterable[str]) -> tuple[Fields, bool]:
        """`obj` with every field not in `readable` moved into one envelope for `subject`; and
        whether it was stored erased (a forgotten subject gets no new key, and its fields are
        dropped). An object with nothing personal is returned as it is."""
        if SEALED in obj:
            raise NotAPage(f"an object to seal already has a {SEALED!r} field (sealed twice?)")
        keep = readable if isinstance(readable, (set, frozenset)) else frozenset(readable)
        clear = {k: v for k, v in obj.items() if k in keep}
        personal = {k: v for k, v in obj.items() if k not in keep}
        if not personal:
            return dict(obj), False
        aead = self._cipher(subject)
        if aead is None:
            clear[SEALED] = erased_envelope(subject, list(personal))
            return clear, True
        clear[SEALED] = seal(aead, subject, personal)  # type: ignore[arg-type]
        return clear, False

    def seal_officer_page(self, body: bytes, company_number: str | None) -> SealedPage:
        """An officer-list page with each item's personal fields sealed under its subject."""
        top, _, items = _split(body)
        if top is None:
            raise NotAPage("the body to seal is not an officer-list page (a JSON object whose items "
                           "are objects)")
        created, erased = self.keys_created, 0
        if not items:
            return SealedPage(body, 0, 0, 0)
        sealed_items = []
        for fields in items:
            if fields is None:
                raise NotAPage("the body to seal is not an officer-list page (an item is not an object)")
            out, was_erased = self.seal_object(fields, item_subject(fields, company_number),
                                               READABLE_OFFICER_FIELDS)
            erased += was_erased
            sealed_items.append(out)
        top["items"] = msgspec.Raw(_encode(sealed_items))
        return SealedPage(_encode(top), len(sealed_items), self.keys_created - created, erased)


class Opener:
    """Opens inside one read (or projector) transaction; reads the forgotten list once."""

    def __init__(self, conn: apsw.Connection):
        self.vault = KeyVault(conn)
        self.forgotten = self.vault.forgotten()
        self._ciphers: dict[str, object] = {}
        # Forgotten officers and appointments show in a plaintext body as these bytes; a body
        # with none of them (and no envelope) needs no parsing. Item subjects are hashes: any
        # forgotten one means every plaintext body is parsed. E-mail subjects name no item.
        self._needles: list[bytes] = []
        self._parse_all = False
        for subject in self.forgotten:
            kind, _, rest = subject.partition(":")
            if kind == "officer":
                self._needles.append(f"/officers/{rest}/".encode())
            elif kind == "appointment":
                self._needles.append(f"/appointments/{rest}".encode())
            elif kind != "email":
                self._parse_all = True

    def _cipher(self, subject: str):
        if subject not in self._ciphers:
            key = None if subject in self.forgotten else self.vault.key(subject)
            try:
                self._ciphers[subject] = cipher(key) if key is not None else None
            except ValueError:  # a stored key of the wrong length: it opens nothing
                self._ciphers[subject] = None
        return self._ciphers[subject]

    def open_object(self, obj: Mapping[str, msgspec.Raw]) -> Opened:
        """The personal fields of a sealed object, or erased; never raises, never guesses."""
        env = decode_envelope(obj[SEALED]) if SEALED in obj else None
        if env is None:
            return Opened(None, "", "malformed envelope")
        if env.s in self.forgotten:
            return Opened(None, env.s, "forgotten")
        return open_envelope(env, self._cipher(env.s))  # type: ignore[arg-type]

    def open_officer_page(self, body: bytes, company_number: str | None = None) -> OpenedPage:
        """The page as the projector's decoder expects it (see the module doc). A body that is
        not a page is returned as it is: the projector's own decoder deals with it."""
        if _MARK not in body and not self._may_hold_forgotten(body):
            return OpenedPage(body, 0, 0)
        top, raw_items, items = _split(body)
        if top is None:
            return OpenedPage(body, 0, 0)
        opened = erased = 0
        out: list[object] = []
        for raw, fields in zip(raw_items, items):
            if fields is None:
                out.append(raw)
                continue
            if SEALED in fields:
                result = self.open_object(fields)
            elif self.forgotten and item_subject(fields, company_number) in self.forgotten:
                result = Opened(None, "", "forgotten")
            else:
                out.append(raw)
                continue
            clear = {k: v for k, v in fields.items() if k in READABLE_OFFICER_FIELDS}
            if result.erased:
                clear.update(ERASED_OFFICER_ITEM)
                erased += 1
            else:
                clear.update(result.fields)  # type: ignore[arg-type]
                opened += 1
            out.append(clear)
        top["items"] = msgspec.Raw(_encode(out))
        return OpenedPage(_encode(top), opened, erased)

    def _may_hold_forgotten(self, body: bytes) -> bool:
        return self._parse_all or any(n in body for n in self._needles)


def _split(body: bytes) -> tuple[dict[str, msgspec.Raw] | None, list[msgspec.Raw], list[Fields | None]]:
    """The page's own fields (None: not a page), its raw items, and each item's fields (None
    for an item that is not an object)."""
    try:
        top = _page.decode(body)
        if "items" not in top:
            return top, [], []
        raw = top["items"]
        raw_items = _items.decode(raw)
    except _ERRORS:
        return None, [], []
    try:  # every item an object, as Companies House sends them: one decode for all
        return top, raw_items, _all_items.decode(raw)  # type: ignore[return-value]
    except _ERRORS:
        pass
    parsed: list[Fields | None] = []
    for item in raw_items:
        try:
            parsed.append(_item.decode(item))
        except _ERRORS:
            parsed.append(None)
    return top, raw_items, parsed
