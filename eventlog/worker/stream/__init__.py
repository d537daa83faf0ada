"""eventlog.worker.stream."""
