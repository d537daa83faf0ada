"""Personal data in an append-only ledger: sealed per person, erasable without breaking the chain.

Officers' personal fields are sealed (AES-256-GCM) under one random key per person before an
entry is appended; keys live outside the hash chain (`person_keys`), and `forget` deletes one,
lists the subject (`forgotten_subjects`, also the redaction list for payloads written before
sealing existed) and overwrites every freed byte. The ledger's rows never change, so the chain
verifies as before; what was sealed for a forgotten person opens as erased, live and in replay.

    fields    which fields are personal, and the erased values
    subjects  the stable names of people (officer:<id>, email:<sha256>, ...)
    envelope  AES-GCM seal and open of one object's personal fields
    vault     the key table and the forgotten list
    pages     Sealer (write path) and Opener (projectors, exports) for officer-list pages
    forget    forget a subject; erasure_status for audits
    rows      rewrite a forgotten officer's projection rows
    scrub     VACUUM and WAL truncation: no freed page, stale copy or old frame left
"""

from eventlog.privacy.envelope import SEALED, Opened
from eventlog.privacy.errors import BadSubject, NotAPage, PrivacyError, TransactionNeeded
from eventlog.privacy.fields import (
    ERASED,
    ERASED_EMAIL_LOOKUP,
    ERASED_OFFICER_COLUMNS,
    ERASED_OFFICER_ITEM,
    PERSONAL_EMAIL_LOOKUP_FIELDS,
    PERSONAL_OFFICER_FIELDS,
    READABLE_EMAIL_LOOKUP_FIELDS,
    READABLE_OFFICER_FIELDS,
    erased_officer_columns,
)
from eventlog.privacy.forget import ErasureStatus, ForgetReport, erasure_status, forget, forget_in_transaction
from eventlog.privacy.pages import Opener, OpenedPage, SealedPage, Sealer
from eventlog.privacy.rows import erase_officer_rows
from eventlog.privacy.scrub import ScrubReport, checkpoint_truncate, scrub, secure_delete_on, strip_keys
from eventlog.privacy.subjects import email_subject, item_subject, officer_id_of, officer_subject, parse_subject
from eventlog.privacy.vault import KeyVault

__all__ = [
    "SEALED", "Opened",
    "PrivacyError", "BadSubject", "NotAPage", "TransactionNeeded",
    "ERASED", "ERASED_EMAIL_LOOKUP", "ERASED_OFFICER_COLUMNS", "ERASED_OFFICER_ITEM",
    "PERSONAL_EMAIL_LOOKUP_FIELDS", "PERSONAL_OFFICER_FIELDS", "READABLE_EMAIL_LOOKUP_FIELDS",
    "READABLE_OFFICER_FIELDS", "erased_officer_columns",
    "ErasureStatus", "ForgetReport", "erasure_status", "forget", "forget_in_transaction",
    "Opener", "OpenedPage", "SealedPage", "Sealer",
    "erase_officer_rows",
    "ScrubReport", "checkpoint_truncate", "scrub", "secure_delete_on", "strip_keys",
    "email_subject", "item_subject", "officer_id_of", "officer_subject", "parse_subject",
    "KeyVault",
]
