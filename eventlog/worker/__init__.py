"""eventlog.worker."""
