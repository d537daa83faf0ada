"""eventlog.ops."""
