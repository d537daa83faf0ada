"""The file's words and formats translated to the REST API's values, and what happens to words
nobody has seen before."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from support.bulk_files import body, fields, line, write_zip
from eventlog.bulk import normalise_number, read_snapshot, status_of
from eventlog.bulk.vocabulary import CATEGORY_WORDS, STATUS_WORDS, account_type_of, category_of
from projections.payloads import decode_profile

# The API's keys, as Companies House's enumerations list them.
API_STATUSES = {"active", "dissolved", "liquidation", "receivership", "converted-closed", "voluntary-arrangement",
                "insolvency-proceedings", "administration", "open", "closed", "registered", "removed"}
API_DETAILS = {"active", "dissolved", "converted-closed", "transferred-from-uk", "active-proposal-to-strike-off",
               "petition-to-restore-dissolved", "transformed-to-se", "converted-to-plc",
               "converted-to-uk-societas", "converted-to-ukeig"}


@pytest.mark.parametrize("word, status, detail", [
    ("Active", "active", None),
    ("Active - Proposal to Strike off", "active", "active-proposal-to-strike-off"),
    ("Liquidation", "liquidation", None),
    ("In Administration", "administration", None),
    ("In Administration/Receiver Manager", "administration", None),
    ("Voluntary Arrangement", "voluntary-arrangement", None),
    ("VOLUNTARY ARRANGEMENT / RECEIVER MANAGER", "voluntary-arrangement", None),
    ("Receivership", "receivership", None),
    ("RECEIVERSHIP", "receivership", None),
    ("Live but Receiver Manager on at least one charge", "receivership", None),
    ("Dissolved", "dissolved", None),
    # another case or spacing of a known word is the same word
    ("ACTIVE - PROPOSAL TO STRIKE OFF", "active", "active-proposal-to-strike-off"),
    ("  active -proposal  to strike OFF ", "active", "active-proposal-to-strike-off"),
    ("Converted / Closed", "converted-closed", None),
])
def test_status_words_map_to_the_apis_status_and_detail(word, status, detail):
    assert status_of(word) == (status, detail, True)


def test_every_mapped_value_is_one_the_api_knows():
    assert {s for s, _ in STATUS_WORDS.values()} <= API_STATUSES
    assert {d for _, d in STATUS_WORDS.values() if d} <= API_DETAILS


@pytest.mark.parametrize("word", ["Struck off soon", "", "Activ", "Actіve"])  # the last has a Cyrillic i
def test_unknown_status_words_are_unknown(word):
    assert status_of(word) == (None, None, False)


@pytest.mark.parametrize("word, kind", [
    ("Private Limited Company", "ltd"),
    ("Public Limited Company", "plc"),
    ("Limited Liability Partnership", "llp"),
    ("PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)", "private-limited-guarant-nsc"),
    ("Overseas Entity", "registered-overseas-entity"),
    ("Other company type", "other"),
    ("Community Interest Company", None),
])
def test_category_words_map_to_the_apis_type(word, kind):
    assert category_of(word) == (kind, True)
    assert category_of("A Category Nobody Knows") == (None, False)


def test_account_categories():
    assert account_type_of("TOTAL EXEMPTION FULL") == "total-exemption-full"
    assert account_type_of("MICRO ENTITY") == "micro-entity"
    assert account_type_of("ACCOUNTS TYPE NOT AVAILABLE") == "no-accounts-type-available"
    assert account_type_of("NO ACCOUNTS FILED") is None
    assert account_type_of("") is None


@pytest.mark.parametrize("raw, number", [
    ("01234567", "01234567"), ("1234567", "01234567"), (" 5954546 ", "05954546"),
    ("SC123456", "SC123456"), ("sc12345", "SC012345"), ("NI000123", "NI000123"), ("OC300001", "OC300001"),
    ("R0000123", "R0000123"), ("", None), ("123456789", None), ("ABC-1234", None), ("０１２３４５６７", None),
])
def test_company_numbers_are_normalised(raw, number):
    assert normalise_number(raw) == number


def test_a_row_reads_as_the_rest_profile(tmp_path: Path):
    row = fields(
        CompanyNumber="SC123456", CompanyStatus="Active - Proposal to Strike off",
        RegAddress__CareOf="J SMITH", RegAddress__POBox="PO BOX 12", RegAddress__AddressLine2="",
        IncorporationDate="29/02/2020", DissolutionDate="", Accounts__AccountRefDay="5",
        Accounts__AccountRefMonth="4", Accounts__AccountCategory="NO ACCOUNTS FILED",
        Accounts__LastMadeUpDate="",
        SICCode__SicText_1="62012 - Business and domestic software development",
        SICCode__SicText_2="70229 - Management consultancy activities other than financial management",
        PreviousName_1__CONDATE="15/07/2011", PreviousName_1__CompanyName="ACORN FITTINGS LIMITED",
        PreviousName_2__CONDATE="01/01/2009", PreviousName_2__CompanyName="ACORN (HOLDINGS) LTD",
    )
    (company,), report = read_snapshot([write_zip(tmp_path, body([line(row)]))], None)
    assert msgspec.json.decode(msgspec.json.encode(company)) == {
        "company_number": "SC123456",
        "company_name": "ACORN ENGINEERING LTD",
        "company_status": "active",
        "company_status_detail": "active-proposal-to-strike-off",
        "type": "ltd",
        "jurisdiction": "scotland",
        "date_of_creation": "2020-02-29",
        "country_of_origin": "United Kingdom",
        "registered_office_address": {
            "address_line_1": "UNIT 10 HEATH ROAD INDUSTRIAL ESTATE", "care_of": "J SMITH", "country": "ENGLAND",
            "locality": "NORWICH", "po_box": "PO BOX 12", "postal_code": "NR16 2HS", "region": "NORFOLK",
        },
        "sic_codes": ["62012", "70229"],
        "accounts": {"accounting_reference_date": {"day": "5", "month": "04"}, "next_due": "2024-06-30"},
        "confirmation_statement": {"last_made_up_to": "2023-10-03", "next_due": "2024-10-17"},
        "previous_company_names": [
            {"name": "ACORN FITTINGS LIMITED", "ceased_on": "2011-07-15"},
            {"name": "ACORN (HOLDINGS) LTD", "ceased_on": "2009-01-01"},
        ],
        "status_word": "Active - Proposal to Strike off",
        "category_word": "Private Limited Company",
    }
    assert report.odd_values == 0
    # what the companies projector reads from a profile, it reads from this row's JSON
    profile = decode_profile(msgspec.Raw(msgspec.json.encode(company)))
    assert (profile.company_number, profile.company_status_detail, profile.type, profile.jurisdiction,
            profile.date_of_creation) == ("SC123456", "active-proposal-to-strike-off", "ltd", "scotland", "2020-02-29")
    assert msgspec.json.decode(profile.sic_codes) == ["62012", "70229"]
    assert msgspec.json.decode(profile.registered_office_address)["locality"] == "NORWICH"


def test_unreadable_dates_and_sic_texts_are_absent_and_counted(tmp_path: Path):
    row = fields(IncorporationDate="2006-10-03", Accounts__NextDueDate="31/04/2024",
                 ConfStmtNextDueDate="29/02/2023", SICCode__SicText_1="None Supplied",
                 SICCode__SicText_2="Business and domestic software development")
    (company,), report = read_snapshot([write_zip(tmp_path, body([line(row)]))], None)
    assert company.date_of_creation is None and company.accounts.next_due is None
    assert company.confirmation_statement.next_due is None and company.sic_codes == ()
    assert report.odd_values == 4  # "None Supplied" is no SIC code, not an odd one


def test_unknown_words_are_counted_with_an_example_and_the_row_kept(tmp_path: Path):
    rows = [line(fields(CompanyNumber=f"0000000{n}", CompanyStatus=status, CompanyCategory=category))
            for n, (status, category) in enumerate([
                ("Active", "Private Limited Company"),
                ("Struck Off Soon", "Private Limited Company"),
                ("Struck Off Soon", "Futuristic Company"),
                ("Dormant-ish", "Private Limited Company"),
                ("Struck Off Soon", "Community Interest Company"),
            ], start=1)]
    kept, report = read_snapshot([write_zip(tmp_path, body(rows))], None)
    assert len(kept) == 5 and report.rejected == 0
    assert [(w.word, w.rows, w.line) for w in report.unknown_statuses] == [("Struck Off Soon", 3, 3),
                                                                          ("Dormant-ish", 1, 5)]
    assert report.rows_unknown_status == 4
    assert [(w.word, w.rows, w.line, w.file) for w in report.unknown_categories] == [
        ("Futuristic Company", 1, 4, "BasicCompanyDataAsOneFile-2024-05-01.zip")]
    unknown = kept[1]
    assert (unknown.company_status, unknown.company_status_detail, unknown.status_word) == (None, None,
                                                                                          "Struck Off Soon")
    assert kept[2].type is None and kept[2].category_word == "Futuristic Company"


def test_every_published_word_is_in_both_directions():
    # each word maps to itself through the case- and space-insensitive lookup too
    for word in STATUS_WORDS:
        assert status_of(word.upper())[:2] == STATUS_WORDS[word]
    for word in CATEGORY_WORDS:
        assert category_of(word.lower()) == (CATEGORY_WORDS[word], True)
