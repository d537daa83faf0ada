"""Live and replay agree after a forget: the officers projector's table, byte for byte.

Live, the rows were written in plaintext and then rewritten by `erase_officer_rows`; replay meets
the same ledger with the key gone (sealed pages) or the subject listed (pages from before
sealing), and writes the erased values itself. The projector is the real one, unchanged: it
reads pages through `Opener`, as the worker will.
"""

from __future__ import annotations

import msgspec
import pytest

from eventlog.ledger.db import transaction
from eventlog.ledger.entries import ResponseReceived
from eventlog.privacy import (
    ERASED,
    ERASED_OFFICER_COLUMNS,
    ERASED_OFFICER_ITEM,
    Opener,
    erase_officer_rows,
    forget,
    officer_subject,
    scrub,
)
from support.privacy_pages import (
    NAME,
    OFFICER_ID,
    OTHER_ID,
    OTHER_NAME,
    append_sealed_page,
    files_of,
    occurrences,
    officer_item,
    officer_page,
    projecting_ledger,
    replayed_officers,
    rewrite_forgotten,
    table_rows,
)

LEGACY_NAME = "VANTERPOOL-ISHIGURO, Cordelia"
LEGACY_ID = "lEgAcYoFfIcEr00000000000000"


def append_plaintext_page(ledger, company: str, body: bytes, request_id: str) -> None:
    """An officer page as ledgers written before sealing hold it."""
    ledger.append(ResponseReceived(request_id=request_id, kind="officers", company_number=company, status=200,
                                   elapsed_ms=5, body=msgspec.Raw(body)))


@pytest.fixture
def ledger(conn, clock):
    ledger = projecting_ledger(conn, clock)
    for round_ in range(2):  # pages from before sealing existed, then sealed ones
        append_plaintext_page(ledger, "05555555", officer_page(
            officer_item(LEGACY_NAME, LEGACY_ID, company="05555555", appointment="lg"),
            officer_item(OTHER_NAME, OTHER_ID, company="05555555", appointment="lo")), f"legacy-{round_}")
    for round_ in range(2):
        for company in ("01234567", "02345678"):
            append_sealed_page(ledger, company, officer_page(
                officer_item(NAME, OFFICER_ID, company=company, appointment=f"me{company}"),
                officer_item(OTHER_NAME, OTHER_ID, company=company, appointment=f"ot{company}"),
                officer_item("NOLINK, Someone", None, company=company, appointment=f"nl{company}")),
                f"{company}-{round_}")
        clock.advance(60)
    return ledger


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_replay_after_forget_gives_the_live_table(conn, ledger, batch):
    for subject in (officer_subject(OFFICER_ID), officer_subject(LEGACY_ID)):
        forget(conn, subject, rewrite=rewrite_forgotten, vacuum=False)
    live = table_rows(conn, "officers")
    names = {row[3] for row in live}
    assert names == {ERASED, OTHER_NAME, "NOLINK, Someone"}
    assert replayed_officers(conn, ledger, batch) == live
    # and the rewrite the projector runs on `person.forgotten` in replay changes nothing
    for officer in (OFFICER_ID, LEGACY_ID):
        with transaction(conn):
            erase_officer_rows(conn, officer_subject(officer))
    assert table_rows(conn, "officers") == live


def test_replay_before_forget_gives_the_live_table_too(conn, ledger):
    live = table_rows(conn, "officers")
    assert {row[3] for row in live} == {NAME, LEGACY_NAME, OTHER_NAME, "NOLINK, Someone"}
    assert replayed_officers(conn, ledger, 2) == live


def test_erased_values_are_the_ones_the_projector_writes_from_an_erased_item(conn):
    """ERASED_OFFICER_COLUMNS (the live rewrite) and ERASED_OFFICER_ITEM (what replay decodes) agree."""
    from projections.payloads import decode_officer_page

    item = {k: v for k, v in officer_item(NAME, OFFICER_ID).items() if k in ("officer_role", "links")}
    item.update({k: msgspec.json.decode(v) for k, v in ERASED_OFFICER_ITEM.items()})
    decoded = decode_officer_page(msgspec.Raw(officer_page(item))).items[0]
    dob = decoded.date_of_birth
    as_columns = {"name": decoded.name, "nationality": decoded.nationality, "occupation": decoded.occupation,
                  "country_of_residence": decoded.country_of_residence,
                  "date_of_birth_month": dob.month if dob else None, "date_of_birth_year": dob.year if dob else None,
                  "address": None if not decoded.address else bytes(decoded.address).decode()}
    assert as_columns == ERASED_OFFICER_COLUMNS


def test_the_redaction_list_hides_old_plaintext_but_cannot_remove_it(conn, ledger, db_path):
    """What the list protects against (tables, replay, anything reading through Opener) and what
    it doesn't: the ledger rows written before sealing still hold the bytes."""
    forget(conn, officer_subject(LEGACY_ID), rewrite=rewrite_forgotten)
    assert conn.execute("SELECT count(*) FROM officers WHERE name = ?", (LEGACY_NAME,)).fetchone()[0] == 0
    opener = Opener(conn)
    for record in ledger.read():
        if record.company_number == "05555555":
            assert LEGACY_NAME.encode() in bytes(record.entry.body)  # the ledger row, as written
            assert LEGACY_NAME.encode() not in opener.open_officer_page(bytes(record.entry.body)).body
    assert scrub(conn).complete
    assert occurrences(files_of(db_path), LEGACY_NAME)[LEGACY_NAME] == 2  # the two old pages, in event_log
    assert ledger.verify().ok
