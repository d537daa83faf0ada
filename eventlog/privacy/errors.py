"""The failures erasure knows, a branch of chledger's one error tree.

    ChledgerError
    └── PrivacyError
        ├── BadSubject          a subject (officer id, e-mail) that can't name a person
        ├── NotAPage            a body to seal is not an officer-list page
        └── TransactionNeeded   sealing or forgetting outside the caller's transaction, or
                                scrubbing inside one

They live here while the package is new; they belong in `eventlog.errors` beside the rest.
No message ever carries a key, a name or an e-mail address: subjects only.
"""

from __future__ import annotations

from eventlog.errors import ChledgerError

__all__ = ["PrivacyError", "BadSubject", "NotAPage", "TransactionNeeded"]


class PrivacyError(ChledgerError):
    pass


class BadSubject(PrivacyError):
    pass


class NotAPage(PrivacyError):
    pass


class TransactionNeeded(PrivacyError):
    pass
