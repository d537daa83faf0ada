"""Sealing and opening officer pages on a real SQLite file: round trips, and erasure that never raises."""

from __future__ import annotations

import base64
import types

import apsw
import msgspec
import pytest

from eventlog.ledger.db import transaction
from eventlog.ledger.entries import ResponseReceived
from eventlog.privacy import (
    ERASED,
    PERSONAL_OFFICER_FIELDS,
    READABLE_OFFICER_FIELDS,
    SEALED,
    BadSubject,
    KeyVault,
    NotAPage,
    Opener,
    Sealer,
    TransactionNeeded,
    email_subject,
    item_subject,
    officer_subject,
    parse_subject,
)
from projections.payloads import decode_officer_page
from support.privacy_pages import (
    EMAIL,
    NAME,
    OFFICER_ID,
    OTHER_ID,
    OTHER_NAME,
    append_sealed_page,
    officer_item,
    officer_page,
)

NOW = "2023-11-14T22:13:20.000000Z"


def seal(conn: apsw.Connection, body: bytes, company: str = "01234567"):
    with transaction(conn):
        return Sealer(conn, NOW).seal_officer_page(body, company)


def items_of(body: bytes) -> list[dict]:
    return msgspec.json.decode(body)["items"]


def raw_item(item: dict) -> dict[str, msgspec.Raw]:
    return msgspec.json.decode(msgspec.json.encode(item), type=dict[str, msgspec.Raw])


def test_round_trip_restores_every_field_byte_for_byte(conn):
    original = officer_page(officer_item(NAME, OFFICER_ID), officer_item(OTHER_NAME, OTHER_ID, appointment="ap2"))
    sealed = seal(conn, original)
    assert sealed.items == 2 and sealed.keys_created == 2 and sealed.erased == 0
    assert NAME.encode() not in sealed.body and b"Tulip Lane" not in sealed.body and b"1971" not in sealed.body

    opened = Opener(conn).open_officer_page(sealed.body, "01234567")
    assert (opened.opened, opened.erased) == (2, 0)
    assert items_of(opened.body) == items_of(original)  # same fields, same values (order may differ)
    page_fields = {k: v for k, v in msgspec.json.decode(opened.body).items() if k != "items"}
    assert page_fields == {k: v for k, v in msgspec.json.decode(original).items() if k != "items"}
    # and the projector's own decoder reads the opened page exactly as it reads the original
    assert decode_officer_page(msgspec.Raw(opened.body)) == decode_officer_page(msgspec.Raw(original))


def test_sealed_item_keeps_only_the_readable_fields_in_clear(conn):
    item = officer_item(NAME, OFFICER_ID)
    item["person_number"] = "123456789"
    item["some_field_added_later"] = "unknown to us"  # unreviewed fields are sealed too
    sealed_item = items_of(seal(conn, officer_page(item)).body)[0]
    assert set(sealed_item) == (set(item) & READABLE_OFFICER_FIELDS) | {SEALED}
    envelope = sealed_item[SEALED]
    assert envelope["s"] == officer_subject(OFFICER_ID)
    assert set(envelope["f"]) == set(item) - READABLE_OFFICER_FIELDS
    assert PERSONAL_OFFICER_FIELDS & set(item) <= set(envelope["f"])
    assert sealed_item["links"] == item["links"] and sealed_item["appointed_on"] == "2019-04-01"


def test_each_seal_uses_a_fresh_nonce_and_one_key_per_person(conn):
    body = officer_page(officer_item(NAME, OFFICER_ID))
    first, second = seal(conn, body), seal(conn, officer_page(officer_item(NAME, OFFICER_ID, company="07654321")))
    assert first.keys_created == 1 and second.keys_created == 0  # the person's key is reused
    e1, e2 = items_of(first.body)[0][SEALED], items_of(second.body)[0][SEALED]
    assert e1["n"] != e2["n"] and e1["c"] != e2["c"]
    assert KeyVault(conn).count() == 1


def test_missing_key_opens_as_the_erased_values(conn):
    sealed = seal(conn, officer_page(officer_item(NAME, OFFICER_ID)))
    with transaction(conn):
        assert KeyVault(conn).delete(officer_subject(OFFICER_ID))
    opened = Opener(conn).open_officer_page(sealed.body)
    assert (opened.opened, opened.erased) == (0, 1)
    item = items_of(opened.body)[0]
    assert item["name"] == ERASED
    assert set(item) == {"name", *(set(officer_item(NAME, OFFICER_ID)) & READABLE_OFFICER_FIELDS)}


def test_wrong_key_opens_as_erased_without_raising(conn):
    sealed = seal(conn, officer_page(officer_item(NAME, OFFICER_ID)))
    with transaction(conn):  # replace the person's key with another random one
        KeyVault(conn).delete(officer_subject(OFFICER_ID))
        KeyVault(conn).create(officer_subject(OFFICER_ID), NOW)
    result = Opener(conn).open_object(raw_item(items_of(sealed.body)[0]))
    assert result.erased and result.reason == "the key does not open it"
    assert NAME not in repr(result)
    with transaction(conn):  # a damaged key (wrong length) opens nothing, and says so the same way
        conn.execute("UPDATE person_keys SET key = x'0102' WHERE subject = ?", (officer_subject(OFFICER_ID),))
    assert Opener(conn).open_object(raw_item(items_of(sealed.body)[0])).reason == "no key"


def test_envelope_moved_to_another_person_or_edited_does_not_open(conn):
    body = officer_page(officer_item(NAME, OFFICER_ID), officer_item(OTHER_NAME, OTHER_ID, appointment="ap2"))
    items = items_of(seal(conn, body).body)
    opener = Opener(conn)

    def opened(item: dict):
        return opener.open_object(raw_item(item))

    moved = dict(items[1], **{SEALED: dict(items[0][SEALED], s=items[1][SEALED]["s"])})
    assert opened(moved).reason == "the key does not open it"  # the subject is in the associated data
    fewer = dict(items[0], **{SEALED: dict(items[0][SEALED], f=items[0][SEALED]["f"][:-1])})
    assert opened(fewer).reason == "the key does not open it"  # so are the field names
    flipped = bytearray(base64.b64decode(items[0][SEALED]["c"]))
    flipped[3] ^= 1
    tampered = dict(items[0], **{SEALED: dict(items[0][SEALED], c=base64.b64encode(bytes(flipped)).decode())})
    assert opened(tampered).reason == "the key does not open it"
    for garbage in ({"v": 1}, {"v": 99, "s": "officer:x", "f": []}, "nope", None):
        assert opened(dict(items[0], **{SEALED: garbage})).erased
    assert not opened(items[0]).erased  # the untouched one still opens


def test_sealing_needs_the_callers_transaction_and_rolls_back_with_it(conn, ledger):
    with pytest.raises(TransactionNeeded):
        Sealer(conn, NOW)
    body = officer_page(officer_item(NAME, OFFICER_ID))
    with pytest.raises(RuntimeError):
        with ledger.transaction() as tx:
            sealed = Sealer(tx.conn, NOW).seal_officer_page(body, "01234567")
            tx.append(ResponseReceived(request_id="r1", kind="officers", company_number="01234567", status=200,
                                       elapsed_ms=1, body=msgspec.Raw(sealed.body)))
            raise RuntimeError("the append fails after the key was made")
    assert KeyVault(conn).count() == 0 and ledger.head() == 0  # neither the key nor the entry
    append_sealed_page(ledger, "01234567", body, "r1")
    assert KeyVault(conn).count() == 1 and ledger.head() == 1


def test_a_forgotten_subject_is_stored_erased_and_gets_no_new_key(conn):
    with transaction(conn):
        KeyVault(conn).mark_forgotten(officer_subject(OFFICER_ID), NOW)
    sealed = seal(conn, officer_page(officer_item(NAME, OFFICER_ID), officer_item(OTHER_NAME, OTHER_ID)))
    assert (sealed.keys_created, sealed.erased) == (1, 1)
    assert NAME.encode() not in sealed.body and b"Tulip" not in sealed.body
    forgotten, other = (item[SEALED] for item in items_of(sealed.body))
    assert "n" not in forgotten and "c" not in forgotten  # dropped, not encrypted
    assert "n" in other and "c" in other  # the other person is sealed as usual
    assert KeyVault(conn).key(officer_subject(OFFICER_ID)) is None
    opened = Opener(conn).open_officer_page(sealed.body)
    assert [i["name"] for i in items_of(opened.body)] == [ERASED, OTHER_NAME]


def test_pages_that_are_not_pages(conn):
    assert seal(conn, b'{"items": [], "total_results": 0}').body == b'{"items": [], "total_results": 0}'
    assert seal(conn, b'{"total_results": 0}').items == 0
    for bad in (b"[1, 2]", b"not json", b'{"items": "x"}', b'{"items": [1]}'):
        with pytest.raises(NotAPage):
            seal(conn, bad)
    opener = Opener(conn)
    for body in (b"[1, 2]", b"not json", b'{"items": "x"}'):
        assert opener.open_officer_page(body).body == body  # left to the projector's lenient decoder


def test_plaintext_pages_pass_through_unless_their_person_is_forgotten(conn):
    legacy = officer_page(officer_item(NAME, OFFICER_ID), officer_item(OTHER_NAME, OTHER_ID, appointment="ap2"))
    assert Opener(conn).open_officer_page(legacy).body == legacy
    with transaction(conn):
        KeyVault(conn).mark_forgotten(officer_subject(OFFICER_ID), NOW)
    opened = Opener(conn).open_officer_page(legacy)
    assert (opened.opened, opened.erased) == (0, 1)
    names = [i["name"] for i in items_of(opened.body)]
    assert names == [ERASED, OTHER_NAME] and NAME.encode() not in opened.body


def test_subjects():
    assert parse_subject(OFFICER_ID) == officer_subject(OFFICER_ID) == f"officer:{OFFICER_ID}"
    assert parse_subject(f"officer:{OFFICER_ID}") == officer_subject(OFFICER_ID)
    assert parse_subject(f"  {EMAIL.upper()} ") == email_subject(EMAIL) == parse_subject(f"email:{EMAIL}")
    assert EMAIL not in email_subject(EMAIL) and "quixotrix" not in email_subject(EMAIL)
    for bad in ("", "a b", "officer:", "x/y", "no-at-sign-but space"):
        with pytest.raises(BadSubject):
            parse_subject(bad)
    raw = raw_item
    assert item_subject(raw(officer_item(NAME, OFFICER_ID)), "01234567") == officer_subject(OFFICER_ID)
    no_officer = officer_item(NAME, None, appointment="APPT9")
    assert item_subject(raw(no_officer), "01234567") == "appointment:APPT9"
    bare = {k: v for k, v in no_officer.items() if k != "links"}
    derived = item_subject(raw(bare), "01234567")
    assert derived.startswith("item:") and derived == item_subject(raw(bare), "01234567")
    assert derived != item_subject(raw(bare), "07654321") and "QUIXOTRIX" not in derived
    assert derived != item_subject(raw(dict(bare, name="SOMEONE, Else")), "01234567")


def test_the_public_surface_is_what_all_names():
    import eventlog.privacy as privacy

    assert all(hasattr(privacy, name) for name in privacy.__all__)
    assert len(set(privacy.__all__)) == len(privacy.__all__)
    public = {n for n, v in vars(privacy).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(privacy.__all__)
