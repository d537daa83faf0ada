"""chledger's core: the ledger, its clients, and the worker that feeds it.

Import what you need from the submodules (`eventlog.ledger.store`, `eventlog.ledger.entries`, …; the map is docs/architecture.md);
this package deliberately does no work on import.
"""

__version__ = "0.1.0"
