"""Settings: flags beat the environment, which beats the config file, which beats defaults.

`load_settings(flags, env, file_values)` takes the environment as an argument,
so these tests never touch the real one; the CLI checks run a real subprocess.
"""

from __future__ import annotations

import pytest

from eventlog.ledger.entries import Interest
from eventlog.errors import ConfigError
from eventlog.config.settings import FIELDS, SECRET_FIELDS, Settings, load_settings

KEY = "0123abcd-4567-ef89-0123-456789abcdef"


def test_defaults_when_nothing_is_set():
    assert load_settings({}, env={}) == Settings()
    s = Settings()
    assert (s.rate_limit_requests, s.rate_limit_window, s.database_path) == (600, 300.0, "companies.db")
    assert s.api_key is None and s.stream_credential is None


def test_every_setting_has_an_environment_name_and_a_description():
    assert set(FIELDS) == set(Settings.__struct_fields__)
    names = [env for env, _, _ in FIELDS.values()]
    assert len(names) == len(set(names))
    # The original environment names keep their meaning.
    for var in ("COMPANIES_HOUSE_API_KEY", "STREAMING_API_URL", "DATABASE_PATH", "RATE_LIMIT_REQUESTS",
                "RATE_LIMIT_WINDOW", "MAX_RETRIES", "READ_TIMEOUT", "COMPANIES_HOUSE_API_URL",
                "COMPANIES_HOUSE_STREAM_KEY"):
        assert var in names


@pytest.mark.parametrize("name, var, file_value, env_value, flag_value, expected", [
    ("rate_limit_requests", "RATE_LIMIT_REQUESTS", 100, "200", 300, (300, 200, 100, 600)),
    ("rate_limit_window", "RATE_LIMIT_WINDOW", 60, "120.5", 30.0, (30.0, 120.5, 60.0, 300.0)),
    ("database_path", "DATABASE_PATH", "file.db", "env.db", "flag.db", ("flag.db", "env.db", "file.db", "companies.db")),
    ("metrics_enabled", "METRICS_ENABLED", False, "yes", False, (False, True, False, True)),
    ("log_level", "LOG_LEVEL", "debug", "warning", "error", ("ERROR", "WARNING", "DEBUG", "INFO")),
    ("interest_values", "INTEREST_VALUES", ["dissolved"], "liquidation, administration", ("a", "b"),
     (("a", "b"), ("liquidation", "administration"), ("dissolved",), ("active-proposal-to-strike-off",))),
])
def test_precedence_flags_then_env_then_file_then_default(name, var, file_value, env_value, flag_value, expected):
    flags, env, file_values = {name: flag_value}, {var: env_value}, {name: file_value}
    results = (
        load_settings(flags, env=env, file_values=file_values),
        load_settings({}, env=env, file_values=file_values),
        load_settings({}, env={}, file_values=file_values),
        load_settings({}, env={}, file_values={}),
    )
    assert tuple(getattr(s, name) for s in results) == expected


def test_a_flag_left_unset_or_an_empty_variable_falls_through():
    s = load_settings({"rate_limit_requests": None}, env={"RATE_LIMIT_REQUESTS": ""},
                      file_values={"rate_limit_requests": 42})
    assert s.rate_limit_requests == 42


@pytest.mark.parametrize("var, value, allowed", [
    ("RATE_LIMIT_REQUESTS", "abc", "a whole number >= 1"),
    ("RATE_LIMIT_REQUESTS", "0", "a whole number >= 1"),
    ("RATE_LIMIT_REQUESTS", "1.5", "a whole number >= 1"),
    ("RATE_LIMIT_WINDOW", "-5", "seconds > 0"),
    ("RATE_LIMIT_WINDOW", "nan", "seconds > 0"),
    ("READ_TIMEOUT", "inf", "seconds > 0"),
    ("MAX_RETRIES", "-1", "a whole number >= 0"),
    ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("METRICS_ENABLED", "maybe", "true or false"),
    ("HEALTH_PORT", "70000", "a port 0-65535"),
    ("STREAMING_API_URL", "ftp://stream.example", "an http(s) URL"),
])
def test_a_bad_environment_value_names_the_variable_the_value_and_what_is_allowed(var, value, allowed):
    with pytest.raises(ConfigError) as info:
        load_settings({}, env={var: value})
    message = str(info.value)
    assert "\n" not in message
    assert f"{var}={value!r}" in message, message
    assert allowed in message, message


def test_bad_flag_and_file_values_say_where_they_came_from():
    with pytest.raises(ConfigError, match=r"rate_limit_requests='lots' \(flag\): expected a whole number"):
        load_settings({"rate_limit_requests": "lots"}, env={})
    with pytest.raises(ConfigError, match=r"rate_limit_window=0 \(config file\): expected seconds > 0"):
        load_settings({}, env={}, file_values={"rate_limit_window": 0})
    with pytest.raises(ConfigError, match="max_retries=True"):
        load_settings({"max_retries": True}, env={})  # a bool is not a count


def test_settings_that_contradict_each_other_are_refused():
    with pytest.raises(ConfigError, match=r"INITIAL_RETRY_DELAY \(60.0\) is greater than MAX_RETRY_DELAY \(5.0\)"):
        load_settings({}, env={"INITIAL_RETRY_DELAY": "60", "MAX_RETRY_DELAY": "5"})


def test_secrets_are_masked():
    s = load_settings({}, env={"COMPANIES_HOUSE_API_KEY": KEY, "COMPANIES_HOUSE_STREAM_KEY": "short"})
    masked = s.masked()
    assert masked["api_key"] == "****ef" and masked["stream_key"] == "****"
    assert KEY not in str(masked) and "short" not in str(masked)
    assert masked["rate_limit_requests"] == 600  # the rest is shown as it is
    assert set(SECRET_FIELDS) == {"api_key", "stream_key", "snov_client_secret"}
    assert Settings().masked()["api_key"] is None


def test_the_snov_secret_is_masked_and_enrichment_needs_both_credentials():
    secret = "snov-secret-0123456789"
    s = load_settings({}, env={"SNOV_CLIENT_ID": "client-7", "SNOV_CLIENT_SECRET": secret})
    assert s.snov_enabled and s.masked()["snov_client_secret"] == "****89"
    assert secret not in repr(s) and secret not in str(s.masked())
    assert s.masked()["snov_client_id"] == "client-7"  # an id is not a secret
    assert not load_settings({}, env={"SNOV_CLIENT_ID": "client-7"}).snov_enabled
    assert not load_settings({}, env={"SNOV_CLIENT_SECRET": secret}).snov_enabled
    assert not Settings().snov_enabled


def test_the_stream_key_never_falls_back_to_the_api_key():
    # no fallback: the stream and REST keys are different keys
    assert load_settings({}, env={"COMPANIES_HOUSE_API_KEY": KEY}).stream_credential is None
    both = load_settings({}, env={"COMPANIES_HOUSE_API_KEY": KEY, "COMPANIES_HOUSE_STREAM_KEY": "stream"})
    assert both.stream_credential == "stream"


def test_derived_values():
    s = load_settings({}, env={"STREAMING_API_URL": "http://a/companies, http://a/officers ,",
                               "INTEREST_FIELD": "company_status", "INTEREST_VALUES": "dissolved"})
    assert s.stream_urls == ["http://a/companies", "http://a/officers"]
    assert s.interest == Interest(field="company_status", values=("dissolved",))


def test_a_bad_value_never_echoes_a_key():
    with pytest.raises(ConfigError) as info:
        load_settings({}, env={"COMPANIES_HOUSE_API_KEY": KEY, "RATE_LIMIT_WINDOW": "soon"})
    assert KEY not in str(info.value)


def test_the_repr_of_settings_does_not_show_the_key():
    s = load_settings({}, env={"COMPANIES_HOUSE_API_KEY": KEY})
    assert KEY not in repr(s)


# --- through the CLI -----------------------------------------------------------------


def test_the_cli_reports_a_bad_variable_in_one_line_and_exits_2(run_cli, tmp_path):
    db = tmp_path / "never.db"
    result = run_cli("migrate", "--db", db, env={"RATE_LIMIT_REQUESTS": "abc", "COMPANIES_HOUSE_API_KEY": KEY})
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "RATE_LIMIT_REQUESTS='abc'" in lines[0] and "a whole number >= 1" in lines[0]
    assert KEY not in result.stderr + result.stdout
    assert not db.exists()


def test_the_cli_takes_the_database_from_the_flag_over_the_environment(run_cli, tmp_path):
    from_env, from_flag = tmp_path / "env.db", tmp_path / "flag.db"
    assert run_cli("migrate", env={"DATABASE_PATH": str(from_env)}).returncode == 0
    assert from_env.exists()
    assert run_cli("migrate", "--db", from_flag, env={"DATABASE_PATH": str(tmp_path / "x.db")}).returncode == 0
    assert from_flag.exists() and not (tmp_path / "x.db").exists()
    assert run_cli("migrate").returncode == 0  # neither: the default, in the working folder
    assert (tmp_path / "companies.db").exists()
