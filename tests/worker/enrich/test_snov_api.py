"""Snov.io's wire vocabulary: answers decoded tolerantly but strictly typed, builders, credits.

Pure functions on bytes: no server needed. Bodies below are the documented shapes plus the
variations the documentation leaves open.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from eventlog.worker.enrich.snov_api import (
    DomainAnswer,
    DomainBatch,
    DomainsCompleted,
    EmailBatch,
    EmailFinding,
    EmailRow,
    EmailsCompleted,
    InProgress,
    IssuedToken,
    NotEnoughCredits,
    PersonAnswer,
    SnovWireError,
    domain_batches,
    domain_credits,
    email_batches,
    email_credits,
    parse_balance,
    parse_domain_poll,
    parse_email_poll,
    parse_start,
    parse_token,
)
from eventlog.errors import UpstreamError


def j(value: object) -> bytes:
    return msgspec.json.encode(value)


# --- token ----------------------------------------------------------------------------------------


def test_token_is_decoded_with_extra_fields_and_its_value_never_shows_in_repr() -> None:
    token = parse_token(j({"access_token": "s3cr3t-token", "token_type": "Bearer", "expires_in": 3600,
                           "scope": ""}))
    assert token == IssuedToken(value="s3cr3t-token", expires_in=3600.0)
    assert "s3cr3t-token" not in repr(token) and "s3cr3t-token" not in str(token)


@pytest.mark.parametrize("body, words", [
    (j({"token_type": "Bearer", "expires_in": 3600}), "access_token"),
    (j({"access_token": "t", "token_type": "MAC", "expires_in": 3600}), "not Bearer"),
    (j({"access_token": "t", "token_type": "Bearer", "expires_in": 0}), "not positive"),
    (j({"access_token": " ", "token_type": "Bearer", "expires_in": 3600}), "empty"),
    (j({"access_token": "t", "expires_in": "soon"}), "$.expires_in"),
    (b"<html>502</html>", "not JSON"),
    (j(["access_token"]), "Expected `object`"),
])
def test_a_token_answer_of_the_wrong_shape_is_a_typed_error(body: bytes, words: str) -> None:
    with pytest.raises(SnovWireError, match="token") as caught:
        parse_token(body)
    assert words in str(caught.value)
    assert isinstance(caught.value, UpstreamError)


def test_errors_never_quote_the_body() -> None:
    with pytest.raises(SnovWireError) as caught:
        parse_token(j({"access_token": 12345678, "secret_marker": "leak-me"}))
    assert "leak-me" not in str(caught.value) and "12345678" not in str(caught.value)


# --- starts ---------------------------------------------------------------------------------------


def test_start_gives_the_task_hash_and_ignores_what_else_comes() -> None:
    body = j({"data": {"task_hash": "abc123", "extra": 1}, "meta": {"names": ["A"]}, "links": {}})
    assert parse_start(body).task_hash == "abc123"


@pytest.mark.parametrize("body", [j({"meta": {}}), j({"data": {"task_hash": ""}}),
                                  j({"data": {"task_hash": None}}), j({"data": []})])
def test_a_start_without_a_task_hash_is_a_typed_error(body: bytes) -> None:
    with pytest.raises(SnovWireError, match="emails-by-domain-by-name start"):
        parse_start(body, "emails-by-domain-by-name start")


# --- domain polls ---------------------------------------------------------------------------------


def test_domain_poll_statuses() -> None:
    assert parse_domain_poll(j({"status": "in_progress"})) == InProgress()
    assert parse_domain_poll(j({"status": "not_enough_credits", "message": "x"})) == NotEnoughCredits()
    with pytest.raises(SnovWireError, match="unknown status 'exploded'"):
        parse_domain_poll(j({"status": "exploded"}))
    with pytest.raises(SnovWireError, match="status"):
        parse_domain_poll(j({"data": []}))


def test_completed_domains_accept_every_plausible_empty_result() -> None:
    body = j({
        "status": "completed",
        "data": [
            {"name": "Found Ltd", "result": {"domain": "found.co.uk", "confidence": 0.9}},
            {"name": "Empty Map Ltd", "result": {}},
            {"name": "Empty List Ltd", "result": []},
            {"name": "Null Ltd", "result": None},
            {"name": "Null Domain Ltd", "result": {"domain": None}},
            {"name": "Blank Domain Ltd", "result": {"domain": "  "}},
            {"name": "No Result Ltd"},
        ],
        "meta": [],  # an empty map as PHP sends it
    })
    done = parse_domain_poll(body)
    assert isinstance(done, DomainsCompleted)
    assert done.answers[0] == DomainAnswer("Found Ltd", "found.co.uk")
    assert all(a.domain is None for a in done.answers[1:])
    assert done.names is None
    assert domain_credits(done) == 1


def test_completed_domains_keep_meta_names() -> None:
    body = j({"status": "completed", "data": [], "meta": {"names": ["A", "B"], "task_hash": "h"}})
    assert parse_domain_poll(body) == DomainsCompleted((), ("A", "B"))


@pytest.mark.parametrize("body, where", [
    (j({"status": "completed"}), "data"),
    (j({"status": "completed", "data": [{"result": {"domain": "a.com"}}]}), "name"),
    (j({"status": "completed", "data": [{"name": 7}]}), "$.data[0].name"),
    (j({"status": "completed", "data": [{"name": "A", "result": {"domain": 3}}]}), "$.data[0].result"),
    (j({"status": "completed", "data": [{"name": "A", "result": ["a.com"]}]}), "$.data[0]"),
])
def test_completed_domains_of_the_wrong_shape_are_typed_errors(body: bytes, where: str) -> None:
    with pytest.raises(SnovWireError) as caught:
        parse_domain_poll(body)
    assert where in str(caught.value)


# --- e-mail polls ---------------------------------------------------------------------------------


def test_completed_emails_with_optional_fields_and_people_without_email() -> None:
    body = j({
        "status": "completed",
        "data": [
            {"people": "John Doe", "result": [
                {"email": "john@doe.com", "smtp_status": "valid", "is_valid_format": True,
                 "is_disposable": False, "is_webmail": False, "is_gibberish": False, "new": 1},
                {"email": "j@doe.com", "smtp_status": "unknown", "unknown_status_reason": "catchall"},
                {"email": "jd@doe.com", "smtp_status": "not_valid"},
            ]},
            {"people": "Jane Roe", "result": []},
            {"people": "Max Moe", "result": None},
        ],
        "meta": {"rows": [{"first_name": "John", "last_name": "Doe", "domain": "doe.com"}]},
    })
    done = parse_email_poll(body)
    assert isinstance(done, EmailsCompleted)
    assert [a.people for a in done.answers] == ["John Doe", "Jane Roe", "Max Moe"]
    john = done.answers[0].emails
    assert john[0].is_valid_format is True and john[1].unknown_status_reason == "catchall"
    assert john[2].is_webmail is None
    assert done.answers[1].emails == () and done.answers[2].emails == ()
    assert done.rows == (EmailRow("John", "Doe", "doe.com"),)
    assert email_credits(done) == 2  # valid + unknown; not_valid is free


@pytest.mark.parametrize("body, where", [
    (j({"status": "completed", "data": [{"people": "A B", "result": [{"email": "a@b.c"}]}]}), "smtp_status"),
    (j({"status": "completed", "data": [{"people": "A B", "result": {"email": "a@b.c"}}]}), "$.data[0].result"),
    (j({"status": "completed", "data": [{"result": []}]}), "people"),
    (j({"status": "completed", "data": [], "meta": {"rows": [{"first_name": "A"}]}}), "$.meta"),
])
def test_completed_emails_of_the_wrong_shape_are_typed_errors(body: bytes, where: str) -> None:
    with pytest.raises(SnovWireError, match="emails-by-domain-by-name result") as caught:
        parse_email_poll(body)
    assert where in str(caught.value)


# --- balance --------------------------------------------------------------------------------------


def test_balance_is_a_decimal_from_a_string_or_a_number() -> None:
    documented = j({"success": True, "data": {"balance": "25000.00", "teamwork": False}})
    assert parse_balance(documented).credits == Decimal("25000.00")
    assert parse_balance(j({"success": True, "data": {"balance": 12}})).credits == Decimal(12)
    with pytest.raises(SnovWireError, match="success is false"):
        parse_balance(j({"success": False, "data": {"balance": "1"}}))
    with pytest.raises(SnovWireError, match="get-balance"):
        parse_balance(j({"success": True, "data": {}}))


# --- builders -------------------------------------------------------------------------------------


def test_domain_batches_are_ten_at_most_in_order_without_blanks_or_repeats() -> None:
    names = [f"COMPANY {i} LTD" for i in range(23)] + ["company 3 ltd", "  ", "Company  5 Ltd"]
    batches = domain_batches(names)
    assert [len(b.names) for b in batches] == [10, 10, 3]
    assert [n for b in batches for n in b.names] == names[:23]
    assert batches[0].form()[:2] == [("names[]", "COMPANY 0 LTD"), ("names[]", "COMPANY 1 LTD")]
    assert domain_batches([]) == []


def test_email_batches_are_json_rows_ten_at_most_without_incomplete_rows_or_repeats() -> None:
    rows = [EmailRow(f"First{i}", "Last", "x.com") for i in range(12)]
    rows += [EmailRow("FIRST0", "last", "X.COM"), EmailRow("No", "", "x.com")]
    batches = email_batches(rows)
    assert [len(b.rows) for b in batches] == [10, 2]
    assert msgspec.json.decode(batches[1].json()) == {"rows": [
        {"first_name": "First10", "last_name": "Last", "domain": "x.com"},
        {"first_name": "First11", "last_name": "Last", "domain": "x.com"},
    ]}


def test_a_batch_refuses_what_the_service_would_refuse_or_charge_twice() -> None:
    with pytest.raises(ValueError, match="1 to 10 names, got 0"):
        DomainBatch(())
    with pytest.raises(ValueError, match="got 11"):
        DomainBatch(tuple(f"N{i}" for i in range(11)))
    with pytest.raises(ValueError, match="blank"):
        DomainBatch(("A", " "))
    with pytest.raises(ValueError, match="charged twice"):
        DomainBatch(("Acorn Ltd", "ACORN  LTD"))
    with pytest.raises(ValueError, match="charged twice"):
        EmailBatch((EmailRow("A", "B", "c.com"), EmailRow("a", "b", "C.com")))
    with pytest.raises(ValueError, match="blank"):
        EmailBatch((EmailRow("A", "", "c.com"),))


def test_credits_count_only_what_costs() -> None:
    found = EmailFinding(email="a@b.c", smtp_status="valid")
    unknown = EmailFinding(email="b@b.c", smtp_status="unknown")
    invalid = EmailFinding(email="c@b.c", smtp_status="not_valid")
    done = EmailsCompleted((PersonAnswer("A B", (found, unknown, invalid)), PersonAnswer("C D", ())))
    assert email_credits(done) == 2
    assert domain_credits(DomainsCompleted((DomainAnswer("A", "a.com"), DomainAnswer("B", None)))) == 1
