"""render.yaml against the fields Render's Blueprint spec documents (render.com/docs/blueprint-spec).

Render validates a Blueprint only when it is synced; these checks catch the
mistakes that would surface there (or worse, at 3 a.m. on the disk), offline.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import PurePosixPath, Path

import pytest
import yaml

from eventlog.config.settings import FIELDS, SECRET_FIELDS, load_settings

REPO = Path(__file__).resolve().parents[1]

ROOT_FIELDS = {"services", "databases", "envVarGroups", "projects", "ungrouped", "previews", "version"}
SERVICE_TYPES = {"web", "pserv", "worker", "cron", "keyvalue", "redis"}
RUNTIMES = {"docker", "elixir", "go", "image", "node", "python", "ruby", "rust", "static"}
# Fields a `worker` may carry (healthCheckPath, domains and schedule belong to other types).
WORKER_FIELDS = {
    "type", "name", "runtime", "plan", "region", "repo", "branch", "rootDir", "buildCommand",
    "startCommand", "preDeployCommand", "numInstances", "scaling", "maxShutdownDelaySeconds", "disk",
    "envVars", "autoDeploy", "autoDeployTrigger", "buildFilter", "dockerCommand", "dockerfilePath",
    "dockerContext", "image", "registryCredential",
}
PAID_PLANS = {"starter", "standard", "pro", "pro plus", "pro max", "pro ultra"}  # disks need one of these
REGIONS = {"oregon", "ohio", "virginia", "frankfurt", "singapore"}
DISK_FIELDS = {"name", "mountPath", "sizeGB"}
ENV_FIELDS = {"key", "value", "sync", "generateValue", "fromDatabase", "fromService", "fromGroup"}
SECRET_ENV = {FIELDS[name][0] for name in SECRET_FIELDS}


@pytest.fixture(scope="module")
def blueprint() -> dict:
    return yaml.safe_load((REPO / "render.yaml").read_text())


@pytest.fixture(scope="module")
def worker(blueprint) -> dict:
    [service] = blueprint["services"]
    return service


@pytest.fixture(scope="module")
def env(worker) -> dict[str, dict]:
    keys = [e["key"] for e in worker["envVars"]]
    assert len(keys) == len(set(keys)), "an environment variable is listed twice"
    return {e["key"]: e for e in worker["envVars"]}


def test_root_and_service_fields_are_documented(blueprint, worker):
    assert set(blueprint) <= ROOT_FIELDS
    assert worker["type"] in SERVICE_TYPES and worker["type"] == "worker"
    assert worker["runtime"] in RUNTIMES and worker["runtime"] == "python"
    assert set(worker) <= WORKER_FIELDS, f"undocumented worker fields: {set(worker) - WORKER_FIELDS}"
    assert isinstance(worker["name"], str) and worker["name"]
    assert worker.get("plan") in PAID_PLANS, "a persistent disk needs a paid instance type"
    assert worker.get("region", "oregon") in REGIONS
    assert worker.get("numInstances", 1) == 1, "one writer per ledger"
    assert "scaling" not in worker


def test_build_and_start_commands(worker):
    from cli import cli

    assert isinstance(worker["buildCommand"], str) and worker["buildCommand"].startswith("pip install ")
    start = shlex.split(worker["startCommand"])
    assert start[:2] == ["python", "cli.py"] and start[2] in cli.commands
    assert start[2] == "ingest"
    assert "&&" not in worker["startCommand"], "a shell in front of python would swallow SIGTERM"


def test_build_installs_an_extra_the_project_declares(worker):
    spec = shlex.split(worker["buildCommand"])[-1]  # .[ops]
    assert spec.startswith(".[") and spec.endswith("]")
    extras = {e.strip() for e in spec[2:-1].split(",")}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    assert extras <= set(declared), f"pyproject.toml does not declare {sorted(extras - set(declared))}"
    wanted = {"pyyaml", "holidays", "prometheus-client", "aiohttp-sse", "psutil"}
    named = {d.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower()
             for extra in extras for d in declared[extra]}
    assert wanted <= named, f"the [ops] extra misses {wanted - named}"


def test_shutdown_delay_within_renders_range(worker):
    delay = worker["maxShutdownDelaySeconds"]
    assert isinstance(delay, int) and not isinstance(delay, bool)
    assert 1 <= delay <= 300


def test_disk_holds_the_database(worker, env):
    disk = worker["disk"]
    assert set(disk) <= DISK_FIELDS and {"name", "mountPath"} <= set(disk)
    assert isinstance(disk["name"], str) and disk["name"]
    mount = PurePosixPath(disk["mountPath"])
    assert mount.is_absolute() and mount != PurePosixPath("/")
    assert isinstance(disk.get("sizeGB", 10), int) and disk.get("sizeGB", 10) >= 1
    db = PurePosixPath(env["DATABASE_PATH"]["value"])
    assert db.is_absolute() and db.is_relative_to(mount) and db != mount, \
        "DATABASE_PATH must lie on the disk, or every deploy starts from an empty ledger"


def test_keys_are_prompted_for_never_given(env):
    for key in SECRET_ENV:
        assert key in env, f"{key} is not declared"
        assert env[key] == {"key": key, "sync": False}, f"{key} must be `sync: false` with no value"
    for var in env.values():
        assert set(var) <= ENV_FIELDS
        if var.get("sync") is False:
            assert "value" not in var and "generateValue" not in var


def test_values_are_strings_and_known_settings(env):
    known = {env_name for env_name, _, _ in FIELDS.values()} | {"PYTHON_VERSION"}
    for key, var in env.items():
        assert key in known, f"{key} is not a setting chledger reads"
        if "value" in var:
            assert isinstance(var["value"], str), f"{key}: quote it, YAML would make it a {type(var['value'])}"


def test_the_environment_makes_valid_settings(env, worker):
    values = {k: v["value"] for k, v in env.items() if "value" in v and k != "PYTHON_VERSION"}
    s = load_settings(flags={}, env=values)
    assert s.business_hours is True
    assert s.database_path == env["DATABASE_PATH"]["value"]
    assert s.health_host == "127.0.0.1", "a worker has no inbound traffic; keep the server on loopback"
    assert env["PYTHON_VERSION"]["value"].startswith("3.11")
