"""Which fields are personal, which stay readable, and what an erased person looks like.

Officer items are sealed by an allow-list: only the fields below in `READABLE_OFFICER_FIELDS`
stay in clear; every other field of an item, including any Companies House adds later, goes
into the envelope. A field nobody has reviewed is treated as personal until someone has, which
costs nothing (no table needs it) and can't leak. The personal ones we know, and why:

| field                          | why it is personal |
|--------------------------------|--------------------|
| `name`                         | names the person |
| `former_names`                 | names the person, by earlier names |
| `date_of_birth`                | month and year of birth: with the name it singles a person out, and it is asked in identity checks |
| `address`                      | the correspondence address, often the officer's home |
| `nationality`                  | a personal characteristic |
| `country_of_residence`         | where the person lives |
| `occupation`                   | the person's job |
| `contact_details`              | names a contact person (overseas entities) |
| `responsibilities`             | free text about a managing officer; may name people |
| `person_number`                | a second identifier of the person across the register's bulk products: it would join an erased row back to them |
| `identity_verification_details`| about the verification of a person's identity (dates, a preferred name) |
| `principal_office_address`     | an office address of a corporate officer: rarely personal, sealed because nothing needs it |

Readable, because the tables need them and they say what an appointment is, not who holds it:
`officer_role`, `appointed_on`, `appointed_before`, `resigned_on`, `is_pre_1992_appointment`,
`links` (the officer id, which is the subject that finds the key, and the appointment's own
link), `etag`, and `identification` (the registration of a corporate officer: a company, not a
person). The officer id is a pseudonym, not an anonymous token: the public register maps it back
to the person. After erasure the ledger still says "officer X held role R at company C from D";
docs/data-protection.md says what that means.

E-mail lookups (name + domain → addresses) carry a person's name (`first_name`, `last_name`, or
the whole `people`/`name`) and the addresses found (`email`, inside `result`). Their readable
fields are the domain (the company's) and the lookup's statuses.

Erased values are constants, never derived from what was erased, so a live run that rewrites
rows at `forget` and a replay that meets the erased envelopes write the same bytes.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "PERSONAL_OFFICER_FIELDS",
    "READABLE_OFFICER_FIELDS",
    "PERSONAL_EMAIL_LOOKUP_FIELDS",
    "READABLE_EMAIL_LOOKUP_FIELDS",
    "ERASED",
    "ERASED_OFFICER_ITEM",
    "ERASED_EMAIL_LOOKUP",
    "ERASED_OFFICER_COLUMNS",
    "erased_officer_columns",
]

PERSONAL_OFFICER_FIELDS = frozenset({
    "name", "former_names", "date_of_birth", "address", "nationality", "country_of_residence",
    "occupation", "contact_details", "responsibilities", "person_number",
    "identity_verification_details", "principal_office_address",
})

READABLE_OFFICER_FIELDS = frozenset({
    "officer_role", "appointed_on", "appointed_before", "resigned_on", "is_pre_1992_appointment",
    "links", "etag", "identification",
})

PERSONAL_EMAIL_LOOKUP_FIELDS = frozenset({"first_name", "last_name", "people", "name", "email", "result"})

READABLE_EMAIL_LOOKUP_FIELDS = frozenset({
    "domain", "smtp_status", "is_valid_format", "is_disposable", "is_webmail", "is_gibberish",
    "unknown_status_reason", "status",
})

ERASED = "[erased]"

# What an erased officer item carries in place of every sealed field: a name that says so, and
# nothing else (absent fields decode as NULL columns).
ERASED_OFFICER_ITEM: dict[str, msgspec.Raw] = {"name": msgspec.Raw(msgspec.json.encode(ERASED))}

# An erased e-mail lookup row carries no personal field at all: the row says a lookup happened.
ERASED_EMAIL_LOOKUP: dict[str, msgspec.Raw] = {}

# The `officers` table's personal columns as the projector writes them from ERASED_OFFICER_ITEM
# (a test holds the two together). `forget`'s row rewrite sets exactly these.
ERASED_OFFICER_COLUMNS: dict[str, object] = {
    "name": ERASED,
    "nationality": None,
    "occupation": None,
    "country_of_residence": None,
    "date_of_birth_month": None,
    "date_of_birth_year": None,
    "address": None,
}


def erased_officer_columns() -> dict[str, object]:
    """A fresh copy of `ERASED_OFFICER_COLUMNS`, for a caller that builds an UPDATE from it."""
    return dict(ERASED_OFFICER_COLUMNS)
