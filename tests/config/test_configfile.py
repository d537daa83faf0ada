"""The YAML config file: its documented shape, bad files named precisely, keys never echoed."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from eventlog.config.file import FILE_PATHS, read_config_file, render_effective, sources
from eventlog.errors import ConfigError
from eventlog.config.settings import FIELDS, SECRET_FIELDS, Settings, load_settings
from support import REPO

SEED_003 = """\
streaming:
  api:
    url: "https://stream.companieshouse.gov.uk/companies"
    timeout:
      connection: 30
      read: 90

  retry:
    max_attempts: 10
    initial_delay: 1
    max_delay: 300
    jitter: true

  processing:
    buffer_size: 1000
    batch_size: 100
    parallel_workers: 4

  monitoring:
    health_check_interval: 60
    metrics_enabled: true
    alert_threshold: 10

  logging:
    level: INFO
    format: json
    sample_rate: 0.1  # Log 10% of successful events
"""

FULL = """\
streaming:
  api:
    url: [http://127.0.0.1:1/companies, http://127.0.0.1:1/officers]
    timeout: {connection: 5, read: 45}
  retry: {max_attempts: 3, initial_delay: 0.5, max_delay: 60}
  processing: {buffer_size: 10, batch_size: 5, flush_interval: 0.25}
  monitoring: {health_check_interval: 15, metrics_enabled: false, alert_threshold: 4}
  logging: {level: debug, format: text, sample_rate: 0.5}
companies_house:
  api_url: http://127.0.0.1:2
  request_timeout: 12
  officers_max_age_days: 7
rate_limit: {requests: 500, window: 300, slack: 3, emergency_threshold: 2}
database: {path: /var/data/companies.db}
interest:
  field: company_status
  values: [liquidation, active-proposal-to-strike-off]
health: {host: 0.0.0.0, port: 9100}
schedule: {business_hours: true}
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    assert str(path) in message, "errors name the file"
    return message


def test_seed_003_file_reads_into_settings_names(tmp_path):
    values = read_config_file(write(tmp_path, SEED_003))
    assert values == {
        "streaming_api_url": "https://stream.companieshouse.gov.uk/companies",
        "connection_timeout": 30.0,
        "read_timeout": 90.0,
        "max_retries": 10,
        "initial_retry_delay": 1.0,
        "max_retry_delay": 300.0,
        "buffer_size": 1000,
        "batch_size": 100,
        "health_check_interval": 60.0,
        "metrics_enabled": True,
        "error_alert_threshold": 10,
        "log_level": "INFO",
        "log_format": "json",
        "log_sample_rate": 0.1,
    }
    # ...and every one of them is a name load_settings knows or one the lead is adding.
    assert set(values) - set(FIELDS) <= {"log_format", "log_sample_rate"}


def test_every_section_reaches_load_settings(tmp_path):
    values = read_config_file(write(tmp_path, FULL))
    s = load_settings(flags={}, env={}, file_values=values)
    assert s.stream_urls == ["http://127.0.0.1:1/companies", "http://127.0.0.1:1/officers"]
    assert (s.connection_timeout, s.read_timeout) == (5.0, 45.0)
    assert (s.max_retries, s.initial_retry_delay, s.max_retry_delay) == (3, 0.5, 60.0)
    assert (s.buffer_size, s.batch_size, s.flush_interval) == (10, 5, 0.25)
    assert (s.health_check_interval, s.metrics_enabled, s.error_alert_threshold) == (15.0, False, 4)
    assert s.log_level == "DEBUG"
    assert (s.api_url, s.request_timeout, s.officers_max_age_days) == ("http://127.0.0.1:2", 12.0, 7.0)
    assert (s.rate_limit_requests, s.rate_limit_window, s.rate_limit_slack) == (500, 300.0, 3.0)
    assert s.emergency_429_threshold == 2
    assert s.database_path == "/var/data/companies.db"
    assert s.interest_field == "company_status"
    assert s.interest_values == ("liquidation", "active-proposal-to-strike-off")
    assert (s.health_host, s.health_port, s.business_hours) == ("0.0.0.0", 9100, True)


def test_every_settings_field_but_none_can_come_from_the_file():
    # The file covers all settings; a new setting without a file key shows up here.
    assert set(FIELDS) - set(FILE_PATHS) == set()


def test_file_sits_between_environment_and_defaults(tmp_path):
    values = read_config_file(write(tmp_path, "rate_limit: {requests: 500}\ndatabase: {path: f.db}\n"))
    s = load_settings(flags={"database_path": "flag.db"}, env={"RATE_LIMIT_REQUESTS": "400"}, file_values=values)
    assert s.rate_limit_requests == 400  # environment beats file
    assert s.database_path == "flag.db"  # flag beats file
    s = load_settings(flags={}, env={}, file_values=values)
    assert (s.rate_limit_requests, s.database_path) == (500, "f.db")
    assert s.rate_limit_window == Settings().rate_limit_window  # default where the file is silent


def test_empty_file_and_empty_sections_mean_nothing_set(tmp_path):
    assert read_config_file(write(tmp_path, "")) == {}
    assert read_config_file(write(tmp_path, "# only a comment\n")) == {}
    assert read_config_file(write(tmp_path, "streaming:\n  retry:\n")) == {}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("streaming:\n  retry:\n    max_delay: soon\n",
         r"streaming\.retry\.max_delay: expected `float`, got `str`"),
        ("streaming:\n  retry:\n    maxdelay: 3\n",
         r"streaming\.retry\.maxdelay: unknown key \(known here: max_attempts, initial_delay, max_delay, connect_spacing, jitter\)"),
        ("stream:\n  url: x\n", r"stream: unknown key \(known here: streaming, companies_house,"),
        ("streaming: 3\n", r"streaming: expected a mapping, got `int`"),
        ("- a\n- b\n", r"top level: expected a mapping, got a list"),
        ("rate_limit:\n  requests: 2.5\n", r"rate_limit\.requests: expected `int`, got `float`"),
        ("rate_limit:\n  requests: 0\n", r"rate_limit\.requests: expected a whole number >= 1, got 0"),
        ("health:\n  port: 70000\n", r"health\.port: expected a port 0-65535 \(0 = off\), got 70000"),
        ("streaming:\n  api:\n    url: ftp://x\n", r"streaming\.api\.url: expected an http\(s\) URL"),
        ("streaming:\n  logging:\n    level: LOUD\n", r"streaming\.logging\.level: expected one of DEBUG"),
        ("streaming:\n  logging:\n    sample_rate: 2\n", r"streaming\.logging\.sample_rate: expected a fraction"),
        ("schedule:\n  business_hours: sometimes\n", r"schedule\.business_hours: expected `bool`, got `str`"),
        ("streaming:\n  retry: {max_delay: 3}\n  retry: {max_delay: 4}\n",
         r"streaming\.retry: duplicate key \(line 3\)"),
        ("database:\n  path: [\n", r"YAML syntax error at line 3, column 1: did not find expected node content"),
        ("database:\n\tpath: x\n", r"YAML syntax error at line 2, column 1: found character that cannot start any token"),
    ],
)
def test_bad_files_are_named_by_key_path(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    assert re.search(expected, message), message
    assert message.startswith(f"config file {tmp_path / 'config.yaml'}: ")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope\.yaml: not found"):
        read_config_file(tmp_path / "nope.yaml")


def test_cross_setting_check_waits_for_the_environment(tmp_path):
    # initial > max only in the file: fine if the environment raises the max...
    values = read_config_file(write(tmp_path, "streaming:\n  retry: {initial_delay: 500}\n"))
    assert load_settings(flags={}, env={"MAX_RETRY_DELAY": "600"}, file_values=values).initial_retry_delay == 500
    # ...and refused when nothing does.
    with pytest.raises(ConfigError, match="INITIAL_RETRY_DELAY"):
        load_settings(flags={}, env={}, file_values=values)


SECRET = "f3c9d2aa-5e1b-4c77-9d10-abcdef123456"


def test_keys_in_the_file_work_but_are_never_echoed(tmp_path, caplog):
    path = write(tmp_path, f"companies_house:\n  api_key: {SECRET}\nstreaming:\n  api:\n    key: {SECRET}x\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="eventlog.config.file"):
        values = read_config_file(path)
    assert values["api_key"] == SECRET and values["stream_key"] == SECRET + "x"
    assert "companies_house.api_key and streaming.api.key" in caplog.text
    assert "prefer the environment" in caplog.text and "world-readable" in caplog.text
    assert SECRET not in caplog.text

    s = load_settings(flags={}, env={}, file_values=values)
    text = render_effective(s, env={}, file_values=values, config_path=path)
    assert SECRET not in text
    assert f"COMPANIES_HOUSE_API_KEY = ****56 ({path}: companies_house.api_key)" in text


def test_errors_about_key_entries_do_not_echo_them(tmp_path):
    message = error_of(tmp_path, f"companies_house:\n  api_key: [{SECRET}]\n")
    assert "companies_house.api_key" in message and SECRET not in message
    message = error_of(tmp_path, f"companies_house:\n  api_key: {SECRET}\n  api_kye: {SECRET}\n")
    assert "companies_house.api_kye: unknown key" in message and SECRET not in message


def test_render_effective_names_each_source(tmp_path):
    path = write(tmp_path, "rate_limit: {requests: 500, window: 120}\n")
    values = read_config_file(path)
    flags = {"database_path": "flag.db"}
    env = {"RATE_LIMIT_WINDOW": "60", "COMPANIES_HOUSE_API_KEY": SECRET}
    s = load_settings(flags=flags, env=env, file_values=values)
    lines = render_effective(s, flags=flags, env=env, file_values=values, config_path=path).splitlines()
    assert "DATABASE_PATH = flag.db (flag)" in lines
    assert "RATE_LIMIT_WINDOW = 60.0 (environment)" in lines
    assert f"RATE_LIMIT_REQUESTS = 500 ({path}: rate_limit.requests)" in lines
    assert "MAX_RETRIES = 10 (default)" in lines
    assert "COMPANIES_HOUSE_API_KEY = ****56 (environment)" in lines
    # the stream never falls back to the REST key: say the two keys differ
    assert ("COMPANIES_HOUSE_STREAM_KEY = (not set: the stream needs its own key; "
            "COMPANIES_HOUSE_API_KEY is not accepted there) (default)") in lines
    assert "INTEREST_VALUES = active-proposal-to-strike-off (default)" in lines
    assert "BUSINESS_HOURS = false (default)" in lines
    assert len(lines) == len(Settings.__struct_fields__)
    assert all(SECRET not in line for line in lines)


def test_sources_matches_load_settings_precedence():
    flags = {"max_retries": 3}
    env = {"MAX_RETRIES": "4", "READ_TIMEOUT": "", "BATCH_SIZE": "7"}
    file_values = {"max_retries": 5, "read_timeout": 6.0, "batch_size": 8}
    src = sources(flags, env, file_values, "c.yaml")
    assert src["max_retries"] == "flag"
    assert src["read_timeout"] == "c.yaml: streaming.api.timeout.read"  # empty env var = unset
    assert src["batch_size"] == "environment"
    s = load_settings(flags, env, file_values)
    assert (s.max_retries, s.read_timeout, s.batch_size) == (3, 6.0, 7)


def test_the_documented_example_and_table_match_the_code(tmp_path):
    doc = (REPO / "docs" / "operations.md").read_text()
    example = re.search(r"### The config file.*?```yaml\n(.*?)```", doc, re.S).group(1)
    values = read_config_file(write(tmp_path, example))
    s = load_settings(flags={}, env={}, file_values=values)
    assert s.business_hours is True and s.database_path == "/var/data/companies.db"
    assert set(values) == set(FILE_PATHS) - set(SECRET_FIELDS)  # every key but the secrets
    for name, path in FILE_PATHS.items():
        env_name = FIELDS[name][0] if name in FIELDS else name.upper()
        assert f"| `{path}` | `{env_name}` |" in doc, f"{path} is missing from the table in docs/operations.md"
