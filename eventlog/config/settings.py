"""One typed settings object: flags, then environment, then config file, then defaults.

The environment names are those the streaming module this project replaces used, so an existing
deployment keeps working.
Every value is checked here, once, with an error that names the setting, the
value and what is allowed; nothing later has to re-validate. Keys are never
printed: `masked()` is what `config` and logs show.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import msgspec

from eventlog.ledger.entries import Interest
from eventlog.errors import ConfigError

__all__ = ["Settings", "FIELDS", "load_settings", "convert", "SECRET_FIELDS", "SNOV_OFFICER_ROLES"]


# Officers whose e-mails are looked up by default: natural persons who run the company. Not
# secretaries, not corporate officers (`corporate-*`), whose names are companies.
SNOV_OFFICER_ROLES = ("director", "nominee-director", "llp-member", "llp-designated-member",
                      "member-of-a-management-organ", "managing-officer")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    api_key: str | None = None
    stream_key: str | None = None
    # Both detection sources: /companies (profiles) and /filings (first Gazette notices, GAZ1).
    streaming_api_url: str = ("https://stream.companieshouse.gov.uk/companies,"
                              "https://stream.companieshouse.gov.uk/filings")
    api_url: str = "https://api.company-information.service.gov.uk"
    database_path: str = "companies.db"
    disk_reserve_mb: float = 256.0
    database_busy_timeout: float = 10.0
    log_level: str = "INFO"
    log_format: str = "auto"
    log_sample_rate: float = 0.1
    max_retries: int = 10
    initial_retry_delay: float = 1.0
    max_retry_delay: float = 300.0
    connection_timeout: float = 30.0
    read_timeout: float = 90.0
    request_timeout: float = 30.0
    buffer_size: int = 1000
    batch_size: int = 100
    flush_interval: float = 0.5
    health_check_interval: float = 60.0
    metrics_enabled: bool = True
    error_alert_threshold: int = 10
    rate_limit_requests: int = 600
    rate_limit_window: float = 300.0
    rate_limit_slack: float = 2.0
    emergency_429_threshold: int = 3
    officers_max_age_days: float = 30.0
    interest_field: str = "company_status_detail"
    interest_values: tuple[str, ...] = ("active-proposal-to-strike-off",)
    health_port: int = 0
    health_host: str = "127.0.0.1"
    business_hours: bool = False
    # Seconds between two stream connection attempts, across every stream of this worker: CH
    # answers 429 to connections opened too often.
    stream_connect_spacing: float = 5.0
    # The stream is never left dark (unheard) longer than this: well inside CH's ~3 days of
    # retention, so a resume never meets a 416. /health and status check it.
    stream_max_dark_hours: float = 24.0
    snov_client_id: str | None = None
    snov_client_secret: str | None = None
    snov_api_url: str = "https://api.snov.io"
    snov_rate_limit: int = 60
    snov_rate_window: float = 60.0
    snov_max_credits: int = 1000
    snov_officer_roles: tuple[str, ...] = SNOV_OFFICER_ROLES
    snov_credits_per_person: int = 3

    @property
    def snov_enabled(self) -> bool:
        """Enrichment through Snov.io runs only when both its credentials are set."""
        return bool(self.snov_client_id and self.snov_client_secret)

    @property
    def stream_credential(self) -> str | None:
        """The stream key. Never the REST key: Companies House's stream and REST keys are not
        interchangeable (the stream answers 401 to a REST key), so there is no fallback."""
        return self.stream_key

    @property
    def disk_reserve_bytes(self) -> int:
        return int(self.disk_reserve_mb * 1024 * 1024)

    @property
    def interest(self) -> Interest:
        return Interest(field=self.interest_field, values=tuple(self.interest_values))

    @property
    def stream_urls(self) -> list[str]:
        return [u.strip() for u in self.streaming_api_url.split(",") if u.strip()]

    def __repr__(self) -> str:
        """Never the keys: a Settings printed in a traceback or a log stays safe."""
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self.masked().items()) + ")"

    def masked(self) -> dict[str, Any]:
        out = msgspec.structs.asdict(self)
        for name in SECRET_FIELDS:
            if out.get(name):
                out[name] = "****" + out[name][-2:] if len(out[name]) > 8 else "****"
        return out


SECRET_FIELDS = ("api_key", "stream_key", "snov_client_secret")

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _positive(v: float) -> bool:
    return v > 0


def _at_least(n: float) -> Callable[[float], bool]:
    return lambda v: v >= n


def _url(v: str) -> bool:
    return all(u.strip().startswith(("http://", "https://")) for u in v.split(",") if u.strip()) and bool(v.strip())


# name -> (environment variable, what is allowed, check)
FIELDS: dict[str, tuple[str, str, Callable[[Any], bool] | None]] = {
    "api_key": ("COMPANIES_HOUSE_API_KEY", "a Companies House REST API key", None),
    "stream_key": ("COMPANIES_HOUSE_STREAM_KEY", "a Companies House streaming API key (not the REST key)", None),
    "streaming_api_url": ("STREAMING_API_URL", "an http(s) URL, or several separated by commas", _url),
    "api_url": ("COMPANIES_HOUSE_API_URL", "an http(s) URL", _url),
    "database_path": ("DATABASE_PATH", "a file path", lambda v: bool(v.strip())),
    "disk_reserve_mb": ("DISK_RESERVE_MB", "megabytes >= 0 to keep free beside the database", _at_least(0)),
    "database_busy_timeout": ("DATABASE_BUSY_TIMEOUT", "seconds >= 0 to wait for another process's lock",
                              _at_least(0)),
    "log_level": ("LOG_LEVEL", "one of " + ", ".join(_LOG_LEVELS), lambda v: v.upper() in _LOG_LEVELS),
    "log_format": ("LOG_FORMAT", "one of auto, json, text", lambda v: v in ("auto", "json", "text")),
    "log_sample_rate": ("LOG_SAMPLE_RATE", "a fraction from 0 to 1", lambda v: 0 <= v <= 1),
    "max_retries": ("MAX_RETRIES", "a whole number >= 0", _at_least(0)),
    "initial_retry_delay": ("INITIAL_RETRY_DELAY", "seconds > 0", _positive),
    "max_retry_delay": ("MAX_RETRY_DELAY", "seconds > 0", _positive),
    "connection_timeout": ("CONNECTION_TIMEOUT", "seconds > 0", _positive),
    "read_timeout": ("READ_TIMEOUT", "seconds > 0", _positive),
    "request_timeout": ("REQUEST_TIMEOUT", "seconds > 0", _positive),
    "buffer_size": ("BUFFER_SIZE", "a whole number >= 1", _at_least(1)),
    "batch_size": ("BATCH_SIZE", "a whole number >= 1", _at_least(1)),
    "flush_interval": ("FLUSH_INTERVAL", "seconds > 0", _positive),
    "health_check_interval": ("HEALTH_CHECK_INTERVAL", "seconds > 0", _positive),
    "metrics_enabled": ("METRICS_ENABLED", "true or false", None),
    "error_alert_threshold": ("ERROR_ALERT_THRESHOLD", "a whole number >= 1", _at_least(1)),
    "rate_limit_requests": ("RATE_LIMIT_REQUESTS", "a whole number >= 1", _at_least(1)),
    "rate_limit_window": ("RATE_LIMIT_WINDOW", "seconds > 0", _positive),
    "rate_limit_slack": ("RATE_LIMIT_SLACK", "seconds >= 0", _at_least(0)),
    "emergency_429_threshold": ("EMERGENCY_429_THRESHOLD", "a whole number >= 1", _at_least(1)),
    "officers_max_age_days": ("OFFICERS_MAX_AGE_DAYS", "days >= 0", _at_least(0)),
    "interest_field": ("INTEREST_FIELD", "a company profile field name", lambda v: bool(v.strip())),
    "interest_values": ("INTEREST_VALUES", "comma-separated values", lambda v: len(v) > 0),
    "health_port": ("HEALTH_PORT", "a port 0-65535 (0 = off)", lambda v: 0 <= v <= 65535),
    "health_host": ("HEALTH_HOST", "a host name or address", lambda v: bool(v.strip())),
    "business_hours": ("BUSINESS_HOURS", "true or false (pauses the REST calls only, never the stream)", None),
    "stream_connect_spacing": ("STREAM_CONNECT_SPACING", "seconds >= 0 between stream connection attempts",
                               _at_least(0)),
    "stream_max_dark_hours": ("STREAM_MAX_DARK_HOURS", "hours > 0 the stream may go unheard", _positive),
    "snov_client_id": ("SNOV_CLIENT_ID", "a Snov.io API client id", None),
    "snov_client_secret": ("SNOV_CLIENT_SECRET", "a Snov.io API client secret", None),
    "snov_api_url": ("SNOV_API_URL", "an http(s) URL", _url),
    "snov_rate_limit": ("SNOV_RATE_LIMIT", "a whole number >= 1", _at_least(1)),
    "snov_rate_window": ("SNOV_RATE_WINDOW", "seconds > 0", _positive),
    "snov_max_credits": ("SNOV_MAX_CREDITS", "a whole number of credits >= 0", _at_least(0)),
    "snov_officer_roles": ("SNOV_OFFICER_ROLES", "comma-separated officer roles", lambda v: len(v) > 0),
    "snov_credits_per_person": ("SNOV_CREDITS_PER_PERSON", "a whole number >= 1", _at_least(1)),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert(name: str, raw: Any, source: str) -> Any:
    """Check and convert one setting's raw value; the one validator every source goes through."""
    return _convert(name, raw, source)


def _convert(name: str, raw: Any, source: str) -> Any:
    env, allowed, check = FIELDS[name]
    default = getattr(Settings(), name)
    kind = type(default) if default is not None else str
    label = f"{env}={raw!r}" if source == "environment" else f"{name}={raw!r} ({source})"
    try:
        if kind is bool:
            if isinstance(raw, bool):
                value: Any = raw
            elif str(raw).strip().lower() in _TRUE:
                value = True
            elif str(raw).strip().lower() in _FALSE:
                value = False
            else:
                raise ValueError
        elif kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(str(raw).strip()) if not isinstance(raw, (int, float)) else int(raw)
        elif kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        elif kind is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            value = tuple(str(i).strip() for i in items if str(i).strip())
        else:
            value = str(raw)
    except (ValueError, TypeError):
        raise ConfigError(f"invalid setting {label}: expected {allowed}") from None
    if check is not None and not check(value):
        raise ConfigError(f"invalid setting {label}: expected {allowed}")
    if name == "log_level":
        value = value.upper()
    return value


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve every setting by precedence: flags, environment, config file, default."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, (var, _, _) in FIELDS.items():
        if flags and flags.get(name) is not None:
            values[name] = _convert(name, flags[name], "flag")
        elif var in env and env[var] != "":
            values[name] = _convert(name, env[var], "environment")
        elif file_values and name in file_values and file_values[name] is not None:
            values[name] = _convert(name, file_values[name], "config file")
    settings = Settings(**values)
    if settings.initial_retry_delay > settings.max_retry_delay:
        raise ConfigError(
            f"invalid settings: INITIAL_RETRY_DELAY ({settings.initial_retry_delay}) is greater "
            f"than MAX_RETRY_DELAY ({settings.max_retry_delay})"
        )
    return settings
