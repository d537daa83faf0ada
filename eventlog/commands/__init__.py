"""eventlog.commands."""
