"""eventlog.ledger."""
