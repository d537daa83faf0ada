"""eventlog.dataset."""
