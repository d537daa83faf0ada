"""eventlog.audit."""
