"""The bulk file's words, translated into the REST API's values.

Basic Company Data writes a company's status and category as English words ("Active - Proposal
to Strike off", "Private Limited Company"); the REST API and the stream use short keys
(`company_status: active`, `company_status_detail: active-proposal-to-strike-off`, `type: ltd`).
The rest of chledger filters and stores the API's keys, so every bulk row is translated here.

Where the vocabulary comes from:

- The API side is Companies House's own public enumeration file (the `api-enumerations`
  repository on GitHub, `constants.yml`): its `company_status` keys are active, dissolved,
  liquidation, receivership, converted-closed, voluntary-arrangement, insolvency-proceedings,
  administration, open, closed, registered, removed; its `company_status_detail` keys include
  active-proposal-to-strike-off; `company_type` and `account_type` give the other keys used here.
- The file side is not documented by Companies House as a list. The words below are the ones
  found in published snapshots, as recorded by several independent open-source readers of the
  file; they are inconsistent in case ("RECEIVERSHIP" beside "In Administration"), which is why
  a word is also looked up case- and spacing-insensitively before it counts as unknown.
- Receiver wording ("Live but Receiver Manager on at least one charge", "ADMINISTRATIVE
  RECEIVER", …) maps to `receivership`, which the enumeration describes as "Receiver Action";
  administration wording to `administration`, voluntary-arrangement wording to
  `voluntary-arrangement`, even when a receiver is also named: the first-named procedure is the
  one the company's status is about.
- "Community Interest Company" is a known category with no single API `type` (a CIC may be
  limited by shares or by guarantee), so it maps to None without being reported as unknown.
  "Private Unlimited" and "Private Unlimited Company" both map to `private-unlimited`: readers
  of the file disagree on whether the shorter word means the no-share-capital variant, and
  nothing in the file settles it.

A word not in these tables is never an error: the row keeps the raw word (`status_word`,
`category_word`) with None for the API value, and the reader counts it with an example line.
"""

from __future__ import annotations

import re

__all__ = [
    "STATUS_WORDS",
    "CATEGORY_WORDS",
    "ACCOUNT_TYPES",
    "STATUS_FIELDS",
    "normalise_word",
    "status_of",
    "category_of",
    "account_type_of",
]

# (company_status, company_status_detail) for each CompanyStatus word as published.
STATUS_WORDS: dict[str, tuple[str, str | None]] = {
    "Active": ("active", None),
    "Active - Proposal to Strike off": ("active", "active-proposal-to-strike-off"),
    "Liquidation": ("liquidation", None),
    "In Administration": ("administration", None),
    "ADMINISTRATION ORDER": ("administration", None),
    "In Administration/Administrative Receiver": ("administration", None),
    "In Administration/Receiver Manager": ("administration", None),
    "ADMINISTRATIVE RECEIVER": ("receivership", None),
    "RECEIVER MANAGER / ADMINISTRATIVE RECEIVER": ("receivership", None),
    "RECEIVERSHIP": ("receivership", None),
    "Live but Receiver Manager on at least one charge": ("receivership", None),
    "Voluntary Arrangement": ("voluntary-arrangement", None),
    "VOLUNTARY ARRANGEMENT / ADMINISTRATIVE RECEIVER": ("voluntary-arrangement", None),
    "VOLUNTARY ARRANGEMENT / RECEIVER MANAGER": ("voluntary-arrangement", None),
    "Insolvency Proceedings": ("insolvency-proceedings", None),
    "Dissolved": ("dissolved", None),
    "Converted/Closed": ("converted-closed", None),
    "Open": ("open", None),
    "Closed": ("closed", None),
    "Registered": ("registered", None),
    "Removed": ("removed", None),
}

# The API's `type` for each CompanyCategory word as published (None: known, but no single type).
CATEGORY_WORDS: dict[str, str | None] = {
    "Private Limited Company": "ltd",
    "Public Limited Company": "plc",
    "Old Public Company": "old-public-company",
    "Private Unlimited Company": "private-unlimited",
    "Private Unlimited": "private-unlimited",
    "PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)": "private-limited-guarant-nsc",
    "PRI/LBG/NSC (Private, Limited by guarantee, no share capital, use of 'Limited' exemption)":
        "private-limited-guarant-nsc-limited-exemption",
    "PRIV LTD SECT. 30 (Private limited company, section 30 of the Companies Act)":
        "private-limited-shares-section-30-exemption",
    "Limited Partnership": "limited-partnership",
    "Limited Liability Partnership": "llp",
    "Community Interest Company": None,
    "Charitable Incorporated Organisation": "charitable-incorporated-organisation",
    "Scottish Charitable Incorporated Organisation": "scottish-charitable-incorporated-organisation",
    "Further Education and Sixth Form College Corps": "further-education-or-sixth-form-college-corporation",
    "Industrial and Provident Society": "industrial-and-provident-society",
    "Registered Society": "registered-society-non-jurisdictional",
    "Royal Charter Company": "royal-charter",
    "Investment Company with Variable Capital": "investment-company-with-variable-capital",
    "Investment Company with Variable Capital (Securities)": "icvc-securities",
    "Investment Company with Variable Capital(Umbrella)": "icvc-umbrella",
    "Protected Cell Company": "protected-cell-company",
    "Overseas Entity": "registered-overseas-entity",
    "Other Company Type": "other",
    "Scottish Partnership": "scottish-partnership",
    "United Kingdom Economic Interest Grouping": "ukeig",
    "United Kingdom Societas": "united-kingdom-societas",
    "European Public Limited-Liability Company (SE)": "european-public-limited-liability-company-se",
    "Converted/Closed": "converted-or-closed",
    "Unregistered Company": "unregistered-company",
}

# The API's `account_type` keys; the file's Accounts.AccountCategory ("TOTAL EXEMPTION FULL") is
# the same words in capitals, so lower-casing and hyphenating finds them.
ACCOUNT_TYPES = frozenset((
    "full", "small", "medium", "group", "dormant", "interim", "initial", "total-exemption-full",
    "total-exemption-small", "partial-exemption", "audit-exemption-subsidiary",
    "filing-exemption-subsidiary", "micro-entity", "no-accounts-type-available", "audited-abridged",
    "unaudited-abridged",
))
_ACCOUNT_ALIASES = {"accounts-type-not-available": "no-accounts-type-available"}

# The fields of a row the status word decides: the only ones a test on the raw line can decide.
STATUS_FIELDS = ("company_status", "company_status_detail")

_AROUND_SEPARATOR = re.compile(r"\s*([/-])\s*")
_SPACES = re.compile(r"\s+")


def normalise_word(word: str) -> str | None:
    """The lookup key of a word: ASCII lower case, no space around `/` or `-`, single spaces.

    None for a word with non-ASCII letters: Unicode lower-casing maps some of them onto ASCII
    ("K", the Kelvin sign, → "k"), and a word that only looks like a known one should be reported,
    not quietly taken for it.
    """
    if not word.isascii():
        return None
    return _SPACES.sub(" ", _AROUND_SEPARATOR.sub(r"\1", word.lower())).strip()


_STATUS_BY_KEY = {normalise_word(w): v for w, v in STATUS_WORDS.items()}
_CATEGORY_BY_KEY = {normalise_word(w): v for w, v in CATEGORY_WORDS.items()}


def status_of(word: str) -> tuple[str | None, str | None, bool]:
    """(company_status, company_status_detail, known) of a CompanyStatus word."""
    found = STATUS_WORDS.get(word)
    if found is None:
        key = normalise_word(word)
        found = _STATUS_BY_KEY.get(key) if key is not None else None
        if found is None:
            return None, None, False
    return found[0], found[1], True


def category_of(word: str) -> tuple[str | None, bool]:
    """(type, known) of a CompanyCategory word."""
    if word in CATEGORY_WORDS:
        return CATEGORY_WORDS[word], True
    key = normalise_word(word)
    if key is not None and key in _CATEGORY_BY_KEY:
        return _CATEGORY_BY_KEY[key], True
    return None, False


def account_type_of(word: str) -> str | None:
    """The API's account type of an Accounts.AccountCategory word; None for "NO ACCOUNTS FILED"."""
    key = "-".join(word.lower().split())
    key = _ACCOUNT_ALIASES.get(key, key)
    return key if key in ACCOUNT_TYPES else None
