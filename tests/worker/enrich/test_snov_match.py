"""Matching a completed Snov.io task's answers to what was asked, never by position."""

from __future__ import annotations

import pytest

from eventlog.worker.enrich.snov_api import (
    DomainAnswer,
    DomainBatch,
    DomainsCompleted,
    EmailBatch,
    EmailFinding,
    EmailRow,
    EmailsCompleted,
    PersonAnswer,
    SnovWireError,
)
from eventlog.worker.enrich.snov_match import match_domains, match_emails


def mail(address: str, status: str = "valid") -> EmailFinding:
    return EmailFinding(email=address, smtp_status=status)


def states(match) -> list[tuple[str, tuple[str, ...]]]:  # type: ignore[no-untyped-def]
    return [(o.state, tuple(e.email for e in o.emails)) for o in match.outcomes]


# --- domains --------------------------------------------------------------------------------------


def test_domains_are_matched_by_name_whatever_the_order_and_spelling() -> None:
    batch = DomainBatch(("ACORN LTD", "Birch Holdings Limited", "CEDAR LLP", "DOVE LTD"))
    result = DomainsCompleted(
        answers=(
            DomainAnswer("cedar  llp", None),
            DomainAnswer("Acorn Ltd", "Acorn.co.uk"),
            DomainAnswer("BIRCH HOLDINGS LIMITED", "birch.com"),
            DomainAnswer("ELM LTD", "elm.com"),
        ),
        names=("ACORN LTD", "Birch Holdings Limited", "CEDAR LLP", "DOVE LTD"),
    )
    match = match_domains(batch, result)
    assert [(o.name, o.state, o.domain) for o in match.outcomes] == [
        ("ACORN LTD", "found", "acorn.co.uk"),
        ("Birch Holdings Limited", "found", "birch.com"),
        ("CEDAR LLP", "none", None),
        ("DOVE LTD", "missing", None),
    ]
    assert match.unexpected == ("ELM LTD",)


def test_two_answers_for_one_name_that_disagree_are_ambiguous_and_agreeing_ones_are_fine() -> None:
    batch = DomainBatch(("ACORN LTD", "BIRCH LTD"))
    result = DomainsCompleted((DomainAnswer("ACORN LTD", "a.com"), DomainAnswer("ACORN LTD", "b.com"),
                               DomainAnswer("BIRCH LTD", "birch.com"), DomainAnswer("birch ltd", "BIRCH.com")))
    assert [(o.state, o.domain) for o in match_domains(batch, result).outcomes] == [
        ("ambiguous", None), ("found", "birch.com")]


def test_a_domain_result_for_other_names_is_refused() -> None:
    batch = DomainBatch(("ACORN LTD", "BIRCH LTD"))
    result = DomainsCompleted((DomainAnswer("ACORN LTD", "a.com"),), names=("ACORN LTD", "CEDAR LTD"))
    with pytest.raises(SnovWireError, match="meta.names"):
        match_domains(batch, result)


# --- e-mails --------------------------------------------------------------------------------------


def test_shuffled_answers_go_to_their_rows_and_missing_people_are_missing() -> None:
    rows = (EmailRow("John", "Smith", "acorn.com"), EmailRow("Sarah", "Jones", "acorn.com"),
            EmailRow("Sean", "O'Neill", "acorn.com"), EmailRow("Emma", "Taylor", "acorn.com"))
    result = EmailsCompleted(
        answers=(
            PersonAnswer("sean o'neill", (mail("sean@acorn.com"),)),
            PersonAnswer("Sarah Jones", ()),
            PersonAnswer("JOHN  SMITH", (mail("john.smith@acorn.com"), mail("js@acorn.com", "unknown"))),
            PersonAnswer("Someone Else", (mail("x@acorn.com"),)),
        ),
        rows=tuple(reversed(rows)),  # meta is compared as a set of rows, not by order
    )
    match = match_emails(EmailBatch(rows), result)
    assert states(match) == [
        ("found", ("john.smith@acorn.com", "js@acorn.com")),
        ("none", ()),
        ("found", ("sean@acorn.com",)),
        ("missing", ()),
    ]
    assert [o.row for o in match.outcomes] == list(rows)
    assert match.unexpected == ("Someone Else",)


def test_one_name_on_two_domains_is_told_apart_by_the_domains_found() -> None:
    rows = (EmailRow("John", "Smith", "acorn.com"), EmailRow("John", "Smith", "birch.co.uk"),
            EmailRow("Ann", "Lee", "acorn.com"))
    result = EmailsCompleted((
        PersonAnswer("John Smith", (mail("john@birch.co.uk"),)),
        PersonAnswer("John Smith", (mail("j.smith@ACORN.com"),)),
        PersonAnswer("Ann Lee", ()),
    ))
    assert states(match_emails(EmailBatch(rows), result)) == [
        ("found", ("j.smith@ACORN.com",)), ("found", ("john@birch.co.uk",)), ("none", ())]


def test_one_name_on_two_domains_with_one_answer_empty_gives_the_other_row_none() -> None:
    rows = (EmailRow("John", "Smith", "acorn.com"), EmailRow("John", "Smith", "birch.co.uk"))
    result = EmailsCompleted((PersonAnswer("John Smith", ()),
                              PersonAnswer("John Smith", (mail("john@birch.co.uk"),))))
    assert states(match_emails(EmailBatch(rows), result)) == [("none", ()), ("found", ("john@birch.co.uk",))]
    both_empty = EmailsCompleted((PersonAnswer("John Smith", ()), PersonAnswer("John Smith", ())))
    assert states(match_emails(EmailBatch(rows), both_empty)) == [("none", ()), ("none", ())]


def test_what_cannot_be_told_apart_is_ambiguous_never_guessed() -> None:
    rows = (EmailRow("John", "Smith", "acorn.com"), EmailRow("John", "Smith", "birch.co.uk"))
    one_empty = EmailsCompleted((PersonAnswer("John Smith", ()),))  # which of the two was it?
    assert states(match_emails(EmailBatch(rows), one_empty)) == [("ambiguous", ()), ("ambiguous", ())]
    elsewhere = EmailsCompleted((PersonAnswer("John Smith", (mail("john@gmail.com"),)),))
    assert states(match_emails(EmailBatch(rows), elsewhere)) == [("ambiguous", ()), ("ambiguous", ())]


def test_a_unique_name_keeps_its_addresses_on_any_domain_and_repeats_are_merged() -> None:
    rows = (EmailRow("Ann", "Lee", "acorn.com"),)
    result = EmailsCompleted((PersonAnswer("Ann Lee", (mail("ann@acorn.com"), mail("ann@acorn-group.com"))),
                              PersonAnswer("Ann Lee", (mail("ANN@acorn.com"),))))
    assert states(match_emails(EmailBatch(rows), result)) == [
        ("found", ("ann@acorn.com", "ann@acorn-group.com"))]


def test_a_name_echoed_surname_first_still_matches() -> None:
    rows = (EmailRow("Piotr", "Nowak", "acorn.com"),)
    result = EmailsCompleted((PersonAnswer("Nowak Piotr", (mail("piotr@acorn.com"),)),))
    assert states(match_emails(EmailBatch(rows), result)) == [("found", ("piotr@acorn.com",))]


def test_an_email_result_for_other_rows_is_refused() -> None:
    rows = (EmailRow("John", "Smith", "acorn.com"),)
    result = EmailsCompleted((PersonAnswer("John Smith", ()),), rows=(EmailRow("John", "Smith", "birch.com"),))
    with pytest.raises(SnovWireError, match="meta.rows"):
        match_emails(EmailBatch(rows), result)
