"""The command line's surface: every command documented, `--help` works everywhere.

In-process through click's runner for every command, and once each as a real
`python cli.py ... --help` subprocess, which is how the README runs it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import tomllib

import click
import pytest
from click.testing import CliRunner

import cli as cli_module
from cli import cli

from support import REPO as REPO_ROOT

COMMANDS = sorted(cli.commands)


def test_the_commands_the_issue_asks_for_exist():
    assert {"ingest", "replay", "audit", "migrate"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_text_and_an_example(name):
    command = cli.commands[name]
    assert command.help and command.help.strip(), f"{name} has no docstring"
    assert command.get_short_help_str(limit=200).strip()
    assert "Example:" in command.help, f"{name}'s docstring should end in an Example: block"
    assert f"cli.py {name}" in command.help.split("Example:")[1]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_text(name):
    missing = [p.opts[-1] for p in cli.commands[name].params
               if isinstance(p, click.Option) and not p.hidden and not p.help]
    assert missing == [], f"{name}: options without help: {missing}"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_exits_0_in_process(name):
    result = CliRunner().invoke(cli, [name, "--help"], prog_name="chledger")
    assert result.exit_code == 0, result.output
    assert f"Usage: chledger {name}" in result.output
    assert "Example:" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_help_exits_0_as_a_real_process(run_cli, name):
    result = run_cli(name, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: cli.py {name}" in result.stdout
    assert result.stderr == ""


def test_the_group_help_lists_every_command(run_cli):
    for args in (["--help"], ["-h"]):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        listed = result.stdout.split("Commands:")[1]
        for name in COMMANDS:
            assert f"  {name}" in listed


def test_an_unknown_command_is_a_usage_error(run_cli):
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr


def test_the_console_script_runs_the_same_group():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    module_name, func_name = project["project"]["scripts"]["chledger"].split(":")
    target = getattr(importlib.import_module(module_name), func_name)
    assert target is cli_module.main
    with pytest.raises(SystemExit) as info:
        sys_argv, sys.argv = sys.argv, ["chledger", "--help"]
        try:
            target()
        finally:
            sys.argv = sys_argv
    assert info.value.code == 0


def _installed() -> bool:
    try:
        importlib.metadata.version("chledger")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_version_works_from_a_checkout(run_cli):
    from eventlog import __version__

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"chledger, version {__version__}"


def test_simulate_on_a_port_in_use_is_one_line_and_sigterm_is_a_clean_exit(run_cli, tmp_path):
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        ran = run_cli("simulate", "--port", port, timeout=20)
    finally:
        taken.close()
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip().startswith(f"chledger: the simulator cannot listen on 127.0.0.1:{port}: ")
    assert len(ran.stderr.strip().splitlines()) == 1
    root = REPO_ROOT
    proc = subprocess.Popen([sys.executable, str(root / "cli.py"), "simulate", "--port", "0"], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline().startswith("simulator listening on http://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_while_ingest_starts_up_is_a_clean_stop(tmp_path, sig):
    """Start-up (config, migrate, catch-up) can take a while: a deploy's SIGTERM then is exit 0, not death."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)  # reading the config blocks here until a writer comes: a start-up caught in the act
    root = REPO_ROOT
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "DATABASE"))}
    proc = subprocess.Popen([sys.executable, str(root / "cli.py"), "--config", str(fifo), "ingest", "--simulate",
                             "--db", str(tmp_path / "c.db")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wchan = Path(f"/proc/{proc.pid}/wchan")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if wchan.read_text() == "wait_for_partner":  # blocked opening the FIFO
                    break
            except OSError:
                pytest.skip("needs /proc/<pid>/wchan (Linux) to see the process blocked in start-up")
            time.sleep(0.02)
        else:
            pytest.fail(f"ingest never blocked on the config FIFO: {proc.communicate()}")
        if wchan.read_text() != "wait_for_partner":
            pytest.skip("this kernel doesn't name the wait in /proc/<pid>/wchan")
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.strip() == f"chledger: {sig} before the worker started: stopped without appending anything"
    assert not (tmp_path / "c.db").exists()
