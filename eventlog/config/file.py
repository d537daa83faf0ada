"""The YAML config file (the shape docs/operations.md documents), read into `Settings` field names.

The file sits between the environment and the defaults (`load_settings(flags,
env, file_values=read_config_file(path))`). Its shape is declared once, as the
typed structs below: a struct attribute is named after the `Settings` field it
feeds and carries the file's key as its encoded name (`max_retries` is read
from `streaming.retry.max_attempts`). So the structs *are* the mapping, and
msgspec rejects unknown keys and wrong types with the key path for free.

Every error is one line naming the file, the key path and what is wrong, and
never the value of a key: keys may live in the file (allowed, discouraged; the
environment is the place for them), so this module treats them as unprintable.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import msgspec

from eventlog.errors import ConfigError
from eventlog.config.settings import FIELDS, SECRET_FIELDS, Settings

__all__ = ["read_config_file", "render_effective", "sources", "FILE_PATHS", "IGNORED_KEYS"]

log = logging.getLogger(__name__)

# Keys the original streaming module's file has that mean nothing here. They are accepted, so such
# a config file still loads, and documented as ignored: jitter is always on, and
# concurrency is set by the rate limit, not by a number of workers.
IGNORED_KEYS = ("streaming.retry.jitter", "streaming.processing.parallel_workers")


class _Section(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    pass


def _key(name: str) -> Any:
    """A field read from the file under another name."""
    return msgspec.field(default=None, name=name)


class _Timeout(_Section):
    connection_timeout: float | None = _key("connection")
    read_timeout: float | None = _key("read")


class _Api(_Section):
    streaming_api_url: str | list[str] | None = _key("url")
    stream_key: str | None = _key("key")
    timeout: _Timeout | None = None


class _Retry(_Section):
    max_retries: int | None = _key("max_attempts")
    initial_retry_delay: float | None = _key("initial_delay")
    max_retry_delay: float | None = _key("max_delay")
    stream_connect_spacing: float | None = _key("connect_spacing")
    jitter: bool | None = None  # ignored, see IGNORED_KEYS


class _Processing(_Section):
    buffer_size: int | None = None
    batch_size: int | None = None
    flush_interval: float | None = None
    parallel_workers: int | None = None  # ignored, see IGNORED_KEYS


class _Monitoring(_Section):
    health_check_interval: float | None = None
    metrics_enabled: bool | None = None
    error_alert_threshold: int | None = _key("alert_threshold")


class _Logging(_Section):
    log_level: str | None = _key("level")
    log_format: Literal["auto", "json", "text"] | None = _key("format")
    log_sample_rate: float | None = _key("sample_rate")


class _Streaming(_Section):
    api: _Api | None = None
    retry: _Retry | None = None
    processing: _Processing | None = None
    monitoring: _Monitoring | None = None
    logging: _Logging | None = None


class _CompaniesHouse(_Section):
    api_url: str | None = None
    api_key: str | None = None
    request_timeout: float | None = None
    officers_max_age_days: float | None = None


class _RateLimit(_Section):
    rate_limit_requests: int | None = _key("requests")
    rate_limit_window: float | None = _key("window")
    rate_limit_slack: float | None = _key("slack")
    emergency_429_threshold: int | None = _key("emergency_threshold")


class _Database(_Section):
    database_path: str | None = _key("path")
    disk_reserve_mb: float | None = _key("reserve_mb")
    database_busy_timeout: float | None = _key("busy_timeout")


class _Interest(_Section):
    interest_field: str | None = _key("field")
    interest_values: str | list[str] | None = _key("values")


class _Health(_Section):
    health_host: str | None = _key("host")
    health_port: int | None = _key("port")


class _Schedule(_Section):
    business_hours: bool | None = None
    stream_max_dark_hours: float | None = _key("max_dark_hours")


class _Snov(_Section):
    snov_client_id: str | None = _key("client_id")
    snov_client_secret: str | None = _key("client_secret")
    snov_api_url: str | None = _key("api_url")
    snov_rate_limit: int | None = _key("rate_limit")
    snov_rate_window: float | None = _key("rate_window")
    snov_max_credits: int | None = _key("max_credits")
    snov_officer_roles: str | list[str] | None = _key("officer_roles")
    snov_credits_per_person: int | None = _key("credits_per_person")


class ConfigFile(_Section):
    streaming: _Streaming | None = None
    companies_house: _CompaniesHouse | None = None
    rate_limit: _RateLimit | None = None
    database: _Database | None = None
    interest: _Interest | None = None
    health: _Health | None = None
    schedule: _Schedule | None = None
    snov: _Snov | None = None


def _section_type(t: Any) -> type[_Section] | None:
    for arg in getattr(t, "__args__", (t,)):
        if isinstance(arg, type) and issubclass(arg, _Section):
            return arg
    return None


def _walk(cls: type[_Section], prefix: str = "") -> dict[str, str]:
    """Settings field name -> dotted key path in the file."""
    out: dict[str, str] = {}
    for f in msgspec.structs.fields(cls):
        path = f"{prefix}{f.encode_name}"
        sub = _section_type(f.type)
        if sub is not None:
            out.update(_walk(sub, path + "."))
        elif path not in IGNORED_KEYS:
            out[f.name] = path
    return out


FILE_PATHS: dict[str, str] = _walk(ConfigFile)

# Settings the file can carry that settings.py may not know yet (the lead adds
# them to FIELDS); checked here until then.
_LOCAL_CHECKS = {
    "log_format": ("auto, json or text", lambda v: v in ("auto", "json", "text")),
    "log_sample_rate": ("a fraction between 0 and 1", lambda v: 0.0 <= float(v) <= 1.0),
}


def _keys_at(path: str) -> list[str]:
    cls: type[_Section] | None = ConfigFile
    for part in [p for p in path.split(".") if p]:
        match = [f for f in msgspec.structs.fields(cls) if f.encode_name == part] if cls else []
        cls = _section_type(match[0].type) if match else None
    return [f.encode_name for f in msgspec.structs.fields(cls)] if cls else []


def _validation_message(text: str) -> str:
    """msgspec's 'Expected `int`, got `str` - at `$.a.b`' as 'a.b: expected `int`, got `str`'."""
    m = re.match(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", text)
    what, path = (m.group("what"), (m.group("path") or "").lstrip(".")) if m else (text, "")
    unknown = re.match(r"Object contains unknown field `(?P<key>[^`]*)`", what)
    if unknown:
        known = _keys_at(path)
        key = f"{path}.{unknown.group('key')}" if path else unknown.group("key")
        return f"{key}: unknown key (known here: {', '.join(known)})"
    what = what[0].lower() + what[1:] if what else what
    what = re.sub(r"`([^`]*?) \| null`", r"`\1`", what)
    what = what.replace("`object`", "a mapping")
    what = what.replace("`array`", "a list")
    return f"{path or 'top level'}: {what}"


def _duplicate_keys(text: str) -> str | None:
    """PyYAML keeps the last of two equal keys without a word; a typo'd copy
    would silently win. Report the first duplicate with its line."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    root = yaml.compose(text, Loader=loader)
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, prefix = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                name = str(k.value)
                if name in seen:
                    return f"{prefix}{name}: duplicate key (line {k.start_mark.line + 1})"
                seen.add(name)
                stack.append((v, f"{prefix}{name}."))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, prefix) for item in node.value)
    return None


def _syntax_message(exc: BaseException) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"YAML syntax error at {where}{problem}"


def _flatten(obj: _Section, out: dict[str, Any]) -> None:
    for f in msgspec.structs.fields(type(obj)):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if isinstance(value, _Section):
            _flatten(value, out)
        elif f.name in ("jitter", "parallel_workers"):
            continue
        else:
            out[f.name] = value


def _check(name: str, value: Any, where: str) -> Any:
    """The same per-setting check `load_settings` makes, reported with the key path."""
    from eventlog.config.settings import convert as _convert  # the one validator of every setting

    path = FILE_PATHS[name]
    shown = "(hidden)" if name in SECRET_FIELDS else repr(value)
    if name in FIELDS:
        try:
            return _convert(name, value, "config file")
        except ConfigError:
            raise ConfigError(f"{where}: {path}: expected {FIELDS[name][1]}, got {shown}") from None
    allowed, ok = _LOCAL_CHECKS.get(name, ("", lambda v: True))
    if not ok(value):
        raise ConfigError(f"{where}: {path}: expected {allowed}, got {shown}")
    return value


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config file into `{settings field: value}` for `load_settings`.

    Only keys present in the file appear. Each value has passed the same check
    as an environment variable would; cross-setting checks (initial delay <=
    max delay) are left to `load_settings`, because the environment may still
    override one side.
    """
    where = f"config file {path}"
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror})") from None
    try:
        parsed = msgspec.yaml.decode(raw, type=ConfigFile | None)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {_validation_message(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{where}: {_syntax_message(exc.__context__ or exc)}") from None
    duplicate = _duplicate_keys(raw.decode("utf-8", errors="replace"))
    if duplicate:
        raise ConfigError(f"{where}: {duplicate}")
    flat: dict[str, Any] = {}
    if parsed is not None:
        _flatten(parsed, flat)
    out = {}
    for name, value in flat.items():
        if isinstance(value, list):
            value = ",".join(value) if name == "streaming_api_url" else tuple(value)
        out[name] = _check(name, value, where)
    held = [FILE_PATHS[n] for n in SECRET_FIELDS if out.get(n)]
    if held:
        readable = os.stat(path).st_mode & 0o004
        log.warning(
            "%s holds %s; prefer the environment (COMPANIES_HOUSE_API_KEY, SNOV_CLIENT_SECRET)%s",
            where, " and ".join(held), " and the file is world-readable" if readable else "",
        )
    return out


def sources(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Where each setting came from, by the precedence `load_settings` applies."""
    env = os.environ if env is None else env
    out = {}
    for name in msgspec.structs.fields(Settings):
        field = name.name
        var = FIELDS.get(field, (field.upper(),))[0]
        if flags and flags.get(field) is not None:
            out[field] = "flag"
        elif var in env and env[var] != "":
            out[field] = "environment"
        elif file_values and file_values.get(field) is not None:
            out[field] = f"{config_path or 'config file'}: {FILE_PATHS.get(field, field)}"
        else:
            out[field] = "default"
    return out


def _show(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def render_effective(
    settings: Settings,
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
    config_path: str | os.PathLike[str] | None = None,
) -> str:
    """One `NAME = value (source)` line per setting, keys masked, for `cli.py config`.

    NAME is the environment variable, the name a deployment sets.
    """
    src = sources(flags, env, file_values, config_path)
    masked = settings.masked()
    lines = []
    for name, value in masked.items():
        var = FIELDS.get(name, (name.upper(),))[0]
        shown = _show(value)
        if name == "stream_key" and value is None:
            # The two keys differ: the REST key is never used for the stream.
            shown = "(not set: the stream needs its own key; COMPANIES_HOUSE_API_KEY is not accepted there)"
        lines.append(f"{var} = {shown} ({src.get(name, 'default')})")
    return "\n".join(lines) + "\n"
