"""Set-based folds: SQLite picks, over a range of ledger positions, the few entries a projection's
final rows depend on; the projector's own per-entry statements then write only those (`ranges`)."""
