"""Read models rebuilt from the ledger by pure projectors."""
