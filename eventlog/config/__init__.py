"""eventlog.config."""
